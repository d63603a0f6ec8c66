import { randomBytes } from "node:crypto";
import { MemoryReplayGuard } from "../verify/replay-guard.ts";
import { pageOf, readCursor } from "./event-row.ts";
import { openSecret, seal } from "./secret-box.ts";
import {
  type AttemptRecord,
  type DeadLetter,
  type DeadLetterFilter,
  type DeadLetterSummary,
  type EventSummary,
  MAX_HISTORY,
  type NewOutboxEvent,
  type OutboxEvent,
  type OutboxStage,
  type Store,
} from "./types.ts";

interface Row extends OutboxEvent {
  leaseUntil: number;
  /** The order the row was added in (a replayed dead letter gets a new one: the end of its key's line). */
  seq: number;
  orderKey?: string;
}

/** `history` with `attempt` appended, the oldest dropped beyond MAX_HISTORY (as the durable stores do). */
function appended(history: readonly AttemptRecord[], attempt: AttemptRecord): AttemptRecord[] {
  return [...history.slice(Math.max(0, history.length - MAX_HISTORY + 1)), attempt];
}

/** What a listing shows of an event: its last attempt without URL and answer, never data or secret. */
function summaryOf(event: OutboxEvent): EventSummary {
  const last = event.history.at(-1);
  const { url: _, answer: __, answerBytes: ___, ...lastAttempt } = last ?? ({} as Partial<AttemptRecord>);
  return {
    id: event.id,
    route: event.route,
    stage: event.stage,
    attempts: event.attempts,
    createdAt: event.createdAt,
    nextAttemptAt: event.nextAttemptAt,
    ...(last ? { lastAttempt: lastAttempt as AttemptRecord } : {}),
  };
}

function selects(filter: DeadLetterFilter, letter: DeadLetter): boolean {
  return (
    (filter.route === undefined || letter.route === filter.route) &&
    (filter.routes === undefined || filter.routes.includes(letter.route)) &&
    (filter.reasonContains === undefined || letter.reason.includes(filter.reasonContains)) &&
    (filter.diedBefore === undefined || letter.deadAt < filter.diedBefore)
  );
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
  /** When each delivery loop last polled. */
  const delivering = new Map<string, number>();
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
        put({
          ...row,
          attempts: row.attempts + 1,
          nextAttemptAt,
          history: appended(row.history, attempt),
          leaseUntil: 0,
        });
      },
      async advance(id, attempt: AttemptRecord, stage: OutboxStage, stageData?: string) {
        const { stageData: _, ...row } = take(id);
        put({
          ...row,
          stage,
          attempts: 0,
          nextAttemptAt: now(),
          history: appended(row.history, attempt),
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
          history: appended(row.history, attempt),
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
      async list(query, listNow) {
        const cursor = query.after === undefined ? undefined : readCursor(query.after);
        const selected = [...rows.values()]
          .filter((row) => query.route === undefined || row.route === query.route)
          .filter(
            (row) =>
              !cursor ||
              row.nextAttemptAt > cursor.sortValue ||
              (row.nextAttemptAt === cursor.sortValue && row.id > cursor.id),
          )
          .sort((a, b) => a.nextAttemptAt - b.nextAttemptAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
          .slice(0, query.limit + 1)
          .map((row) => ({ ...summaryOf(row), leased: row.leaseUntil > listNow }));
        return pageOf(selected, query.limit, (item) => item.nextAttemptAt);
      },
      async moveToDeadLetters(route, reason, moveNow, limit) {
        const picked = [...rows.values()]
          .filter((row) => row.route === route && row.leaseUntil <= moveNow)
          .sort((a, b) => a.nextAttemptAt - b.nextAttemptAt || (a.id < b.id ? -1 : 1))
          .slice(0, Math.max(0, limit));
        for (const row of picked) {
          rows.delete(row.id);
          const { leaseUntil: _, ...event } = row;
          dead.set(row.id, { ...event, deadAt: moveNow, reason });
        }
        return picked.length;
      },
      async markDelivering(owner, at) {
        delivering.set(owner, at);
      },
      async stopDelivering(owner) {
        delivering.delete(owner);
      },
      async lastDelivering() {
        return delivering.size === 0 ? undefined : Math.max(...delivering.values());
      },
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
      async countByRoute(filter) {
        const out: Record<string, number> = {};
        for (const letter of dead.values()) {
          if (!filter || selects(filter, letter)) out[letter.route] = (out[letter.route] ?? 0) + 1;
        }
        return out;
      },
      async query(query) {
        const cursor = query.after === undefined ? undefined : readCursor(query.after);
        const selected: DeadLetterSummary[] = [...dead.values()]
          .filter((letter) => selects(query, letter))
          .filter(
            (letter) =>
              !cursor ||
              letter.deadAt < cursor.sortValue ||
              (letter.deadAt === cursor.sortValue && letter.id < cursor.id),
          )
          .sort((a, b) => b.deadAt - a.deadAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
          .slice(0, query.limit + 1)
          .map((letter) => ({ ...summaryOf(letter), deadAt: letter.deadAt, reason: letter.reason }));
        return pageOf(selected, query.limit, (item) => item.deadAt);
      },
      async replayBatch(filter, replayNow, limit) {
        const picked = [...dead.values()]
          .filter((letter) => selects(filter, letter))
          .sort((a, b) => a.deadAt - b.deadAt || (a.id < b.id ? -1 : 1))
          .slice(0, Math.max(0, limit));
        let count = 0;
        for (const letter of picked) if (await this.replay(letter.id, replayNow)) count++;
        return count;
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
