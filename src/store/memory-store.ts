import { MemoryReplayGuard } from "../verify/replay-guard.ts";
import type { AttemptRecord, DeadLetter, NewOutboxEvent, OutboxEvent, OutboxStage, Store } from "./types.ts";

interface Row extends OutboxEvent {
  leaseUntil: number;
}

/**
 * The store used without `store.path`: the replay guard and the follow-ups of sync calls (resume,
 * write-back) live in memory. Nothing survives a restart; async routes therefore require a real store.
 */
export function openMemoryStore(options: { replayWindowMs: number; onEvict?: () => void }): Store {
  const rows = new Map<string, Row>();
  const dead = new Map<string, DeadLetter>();
  const take = (id: string): Row => {
    const row = rows.get(id);
    if (!row) throw new Error(`outbox event ${id} is not in the outbox`);
    return row;
  };
  const put = (row: Row) => rows.set(row.id, row);

  return {
    replayGuard: new MemoryReplayGuard({
      windowMs: options.replayWindowMs,
      ...(options.onEvict ? { onEvict: options.onEvict } : {}),
    }),
    outbox: {
      async add(event: NewOutboxEvent) {
        if (rows.has(event.id) || dead.has(event.id)) return;
        put({ ...event, attempts: 0, nextAttemptAt: event.createdAt, history: [], leaseUntil: 0 });
      },
      async claim(route, limit, now, leaseMs) {
        const claimed: OutboxEvent[] = [];
        for (const row of rows.values()) {
          if (claimed.length >= limit) break;
          if (row.route !== route || row.nextAttemptAt > now || row.leaseUntil > now) continue;
          row.leaseUntil = now + leaseMs;
          claimed.push({ ...row });
        }
        return claimed;
      },
      async retryLater(id, attempt, nextAttemptAt) {
        const row = take(id);
        put({ ...row, attempts: row.attempts + 1, nextAttemptAt, history: [...row.history, attempt], leaseUntil: 0 });
      },
      async advance(id, attempt: AttemptRecord, stage: OutboxStage, stageData?: string) {
        const row = take(id);
        put({
          ...row,
          stage,
          attempts: 0,
          nextAttemptAt: 0,
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
        const { leaseUntil: _, ...event } = row;
        dead.set(id, {
          ...event,
          attempts: row.attempts + 1,
          history: [...row.history, attempt],
          deadAt: attempt.at,
          reason,
        });
      },
      async depth() {
        const out: Record<string, number> = {};
        for (const row of rows.values()) out[row.route] = (out[row.route] ?? 0) + 1;
        return out;
      },
      secretOf: (event) => event.secret,
    },
    deadLetters: {
      list: async () => [...dead.values()].reverse(),
      get: async (id) => dead.get(id),
      async replay(id, now) {
        const letter = dead.get(id);
        if (!letter) return false;
        dead.delete(id);
        const { deadAt: _, reason: __, ...event } = letter;
        put({ ...event, attempts: 0, nextAttemptAt: now, leaseUntil: 0 });
        return true;
      },
      async replayAll(now) {
        let count = 0;
        for (const id of [...dead.keys()]) if (await this.replay(id, now)) count++;
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
    status: async () => ({ kind: "memory", writable: true }),
    close: async () => {},
  };
}
