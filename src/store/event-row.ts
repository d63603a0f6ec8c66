import { openData } from "./secret-box.ts";
import type { AttemptRecord, DeadLetter, OutboxEvent, OutboxStage } from "./types.ts";

/** A row of the outbox or dead-letter table as either store's driver returns it (snake_case columns). */
export type EventRow = Readonly<Record<string, unknown>>;

/** An event as read from its row, and whether its sealed columns could be opened. */
export interface ReadEvent {
  readonly event: OutboxEvent;
  /**
   * False when `data` or `stageData` is sealed but does not open (the row was damaged or copied from
   * another event): the event cannot be delivered, and `data` is then "" (and `stageData` missing).
   */
  readonly readable: boolean;
}

/**
 * An outbox row as an event; both stores keep the same columns. `data` and `stage_data` are opened
 * with `key` (sealed, or plain JSON from the first version); `secret` stays sealed (`secretOf` opens
 * it when a stage needs it). `history` is text in SQLite and jsonb (already parsed) in PostgreSQL.
 */
export function readEventRow(row: EventRow, key: Uint8Array): ReadEvent {
  const id = String(row.id);
  const data = openData(key, id, String(row.data));
  const storedStageData = row.stage_data === null || row.stage_data === undefined ? undefined : String(row.stage_data);
  const stageData = storedStageData === undefined ? undefined : openData(key, id, storedStageData);
  const event: OutboxEvent = {
    id,
    route: String(row.route),
    stage: String(row.stage) as OutboxStage,
    data: data ?? "",
    ...(row.secret === null || row.secret === undefined ? {} : { secret: String(row.secret) }),
    createdAt: Number(row.created_at),
    attempts: Number(row.attempts),
    nextAttemptAt: Number(row.next_attempt_at),
    history: (typeof row.history === "string" ? JSON.parse(row.history) : row.history) as AttemptRecord[],
    ...(stageData === undefined ? {} : { stageData }),
  };
  return { event, readable: data !== undefined && (storedStageData === undefined || stageData !== undefined) };
}

/** A dead-letter row: the event, when it died and why. */
export function deadLetterFromRow(row: EventRow, key: Uint8Array): DeadLetter {
  return { ...readEventRow(row, key).event, deadAt: Number(row.dead_at), reason: String(row.reason) };
}

/** `SELECT route, COUNT(*) AS n ... GROUP BY route` rows as counts per route (outbox depth, dead letters). */
export function countsPerRoute(rows: readonly EventRow[]): Record<string, number> {
  return Object.fromEntries(rows.map((row) => [String(row.route), Number(row.n)]));
}

/** The attempt recorded for an event whose stored data does not open; it goes to the dead letters at once. */
export function unreadableAttempt(event: OutboxEvent, at: number): AttemptRecord {
  return {
    at,
    stage: event.stage,
    outcome: "unreadable",
    error: "the stored event does not decrypt (damaged, or copied from another row)",
  };
}

/** The dead-letter reason for such an event. */
export const UNREADABLE_REASON =
  "the stored event does not decrypt with the store's key (damaged, or copied from another row); it cannot be delivered";
