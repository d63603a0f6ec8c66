import type { AttemptRecord, DeadLetter, OutboxEvent, OutboxStage } from "./types.ts";

/** A row of the outbox or dead-letter table as either store's driver returns it (snake_case columns). */
export type EventRow = Readonly<Record<string, unknown>>;

/**
 * An outbox row as an event; both stores keep the same columns. `history` is text in SQLite and
 * jsonb (already parsed by the driver) in PostgreSQL.
 */
export function eventFromRow(row: EventRow): OutboxEvent {
  return {
    id: String(row.id),
    route: String(row.route),
    stage: String(row.stage) as OutboxStage,
    data: String(row.data),
    ...(row.secret === null || row.secret === undefined ? {} : { secret: String(row.secret) }),
    createdAt: Number(row.created_at),
    attempts: Number(row.attempts),
    nextAttemptAt: Number(row.next_attempt_at),
    history: (typeof row.history === "string" ? JSON.parse(row.history) : row.history) as AttemptRecord[],
    ...(row.stage_data === null || row.stage_data === undefined ? {} : { stageData: String(row.stage_data) }),
  };
}

/** A dead-letter row: the event, when it died and why. */
export function deadLetterFromRow(row: EventRow): DeadLetter {
  return { ...eventFromRow(row), deadAt: Number(row.dead_at), reason: String(row.reason) };
}

/** `SELECT route, COUNT(*) AS n ... GROUP BY route` rows as counts per route (outbox depth, dead letters). */
export function countsPerRoute(rows: readonly EventRow[]): Record<string, number> {
  return Object.fromEntries(rows.map((row) => [String(row.route), Number(row.n)]));
}
