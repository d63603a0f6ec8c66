import { randomBytes } from "node:crypto";
import { MemoryReplayGuard } from "../verify/replay-guard.ts";
import { openSecret, seal } from "./secret-box.ts";
import type { AttemptRecord, DeadLetter, NewOutboxEvent, OutboxEvent, OutboxStage, Store } from "./types.ts";

interface Row extends OutboxEvent {
  leaseUntil: number;
  /** The order the row was added in (a replayed dead letter gets a new one: the end of its key's line). */
  seq: number;
  orderKey?: string;
}

export interface MemoryStoreOptions {
  /** How long a webhook-id is remembered by the replay guard (up to a second more, see MemoryReplayGuard). */
  readonly replayWindowMs: number;
  /** Told when the replay guard is full and forgets an id early. */
  readonly onEvict?: () => void;
  /** The clock for what the interfaces do not pass a time to (advance, bury, replay guard default). */
  readonly now?: () => number;
}

/**
 * The store used without `store.path`: the replay guard and the follow-ups of sync calls (resume,
 * write-back) live in memory. Nothing survives a restart; async routes therefore require a real store.
 * Otherwise it keeps the same contract as the durable stores (test/support/store-contract.ts),
 * secrets included: an event's `secret` is sealed with a key made at open, so that an event that
 * ends up in a log line or a heap dump shows no token.
 */
export function openMemoryStore(options: MemoryStoreOptions): Store {
  const letterOf = (letter: DeadLetter & { orderKey?: string }): DeadLetter => {
    const { orderKey: _, ...rest } = letter;
    return rest;
  };
  const now = options.now ?? Date.now;
  const key = randomBytes(32);
  const rows = new Map<string, Row>();
  const dead = new Map<string, DeadLetter & { orderKey?: string }>();
  let lastSeq = 0;
  const seen = new Map<string, { source: string; at: number }>();
  const pollLocks = new Map<string, { owner: string; until: number }>();
  const take = (id: string): Row => {
    const row = rows.get(id);
    if (!row) throw new Error(`outbox event ${id} is not in the outbox`);
    return row;
  };
  const put = (row: Row) => rows.set(row.id, row);
  /** The event's public shape: no lease, no order. */
  const eventOf = (row: Row): OutboxEvent => {
    const { leaseUntil: _, seq: __, orderKey: ___, ...event } = row;
    return event;
  };
  const addEvent = (event: NewOutboxEvent): boolean => {
    if (rows.has(event.id) || dead.has(event.id)) return false;
    const { secret, orderKey, ...rest } = event;
    put({
      ...rest,
      ...(secret !== undefined ? { secret: seal(key, event.id, secret) } : {}),
      ...(orderKey !== undefined ? { orderKey } : {}),
      attempts: 0,
      nextAttemptAt: event.createdAt,
      history: [],
      leaseUntil: 0,
      seq: ++lastSeq,
    });
    return true;
  };
  const guard = new MemoryReplayGuard({
    windowMs: options.replayWindowMs,
    ...(options.onEvict ? { onEvict: options.onEvict } : {}),
  });

  return {
    replayGuard: {
      claim: (webhookId, nowMs = now()) => guard.claim(webhookId, nowMs),
      release: (webhookId) => guard.release(webhookId),
    },
    outbox: {
      async add(event: NewOutboxEvent) {
        addEvent(event);
      },
      async claim(route, limit, claimNow, leaseMs) {
        if (limit <= 0) return [];
        // The head of each key's line: only it may go out.
        const heads = new Map<string, number>();
        for (const row of rows.values()) {
          if (row.route !== route || row.orderKey === undefined) continue;
          const head = heads.get(row.orderKey);
          if (head === undefined || row.seq < head) heads.set(row.orderKey, row.seq);
        }
        const due = [...rows.values()]
          .filter(
            (row) =>
              row.route === route &&
              row.nextAttemptAt <= claimNow &&
              row.leaseUntil <= claimNow &&
              (row.orderKey === undefined || heads.get(row.orderKey) === row.seq),
          )
          .sort((a, b) => a.nextAttemptAt - b.nextAttemptAt || a.createdAt - b.createdAt || a.seq - b.seq)
          .slice(0, limit);
        return due.map((row) => {
          row.leaseUntil = claimNow + leaseMs;
          return eventOf(row);
        });
      },
      async retryLater(id, attempt, nextAttemptAt) {
        const row = take(id);
        put({ ...row, attempts: row.attempts + 1, nextAttemptAt, history: [...row.history, attempt], leaseUntil: 0 });
      },
      async advance(id, attempt: AttemptRecord, stage: OutboxStage, stageData?: string) {
        const { stageData: _, ...row } = take(id);
        put({
          ...row,
          stage,
          attempts: 0,
          nextAttemptAt: now(),
          history: [...row.history, attempt],
          leaseUntil: 0,
          ...(stageData !== undefined ? { stageData } : {}),
        });
      },
      async postpone(id, nextAttemptAt) {
        const row = take(id);
        put({ ...row, nextAttemptAt, leaseUntil: 0 });
      },
      async complete(id) {
        rows.delete(id);
      },
      async bury(id, attempt, reason) {
        const row = take(id);
        rows.delete(id);
        const event = eventOf(row);
        dead.set(id, {
          ...event,
          ...(row.orderKey !== undefined ? { orderKey: row.orderKey } : {}),
          attempts: row.attempts + 1,
          history: [...row.history, attempt],
          deadAt: now(),
          reason,
        });
      },
      async depth() {
        const out: Record<string, number> = {};
        for (const row of rows.values()) out[row.route] = (out[row.route] ?? 0) + 1;
        return out;
      },
      secretOf: (event) => (event.secret === undefined ? undefined : openSecret(key, event.id, event.secret)),
    },
    deadLetters: {
      list: async () => [...dead.values()].map(letterOf).sort((a, b) => b.deadAt - a.deadAt || (a.id < b.id ? -1 : 1)),
      get: async (id) => {
        const letter = dead.get(id);
        return letter ? letterOf(letter) : undefined;
      },
      async replay(id, replayNow) {
        const letter = dead.get(id);
        if (!letter) return false;
        dead.delete(id);
        const { deadAt: _, reason: __, ...event } = letter;
        // Should the id somehow be pending already, that pending event is the one that runs. A new
        // seq: the replayed event joins the end of its key's line.
        if (!rows.has(id)) put({ ...event, attempts: 0, nextAttemptAt: replayNow, leaseUntil: 0, seq: ++lastSeq });
        return true;
      },
      async replayAll(replayNow) {
        let count = 0;
        for (const id of [...dead.keys()]) if (await this.replay(id, replayNow)) count++;
        return count;
      },
      purge: async (id) => dead.delete(id),
      async purgeOlderThan(cutoff) {
        let count = 0;
        for (const [id, letter] of dead) if (letter.deadAt < cutoff && dead.delete(id)) count++;
        return count;
      },
      async countByRoute() {
        const out: Record<string, number> = {};
        for (const letter of dead.values()) out[letter.route] = (out[letter.route] ?? 0) + 1;
        return out;
      },
    },
    inbox: {
      async commit(source, entries, commitNow) {
        return entries.map((entry) => {
          const seenKey = `${entry.useCaseId}\u0000${entry.eventId}`;
          if (seen.has(seenKey)) return false;
          seen.set(seenKey, { source, at: commitNow });
          return addEvent(entry.event);
        });
      },
      async prune(source, cutoff) {
        let count = 0;
        for (const [seenKey, entry] of seen) {
          if (entry.source === source && entry.at < cutoff && seen.delete(seenKey)) count++;
        }
        return count;
      },
      async acquirePollLock(source, owner, lockNow, ttlMs) {
        const held = pollLocks.get(source);
        if (held && held.owner !== owner && held.until > lockNow) return false;
        pollLocks.set(source, { owner, until: lockNow + ttlMs });
        return true;
      },
      async releasePollLock(source, owner) {
        if (pollLocks.get(source)?.owner === owner) pollLocks.delete(source);
      },
    },
    status: async () => ({ kind: "memory", writable: true }),
    close: async () => {},
  };
}
