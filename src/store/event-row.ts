import { Buffer } from "node:buffer";
import { isRecord } from "../kit/records.ts";
import { openData, seal } from "./secret-box.ts";
import {
  type AttemptRecord,
  type DeadLetter,
  type DeadLetterSummary,
  type EventSummary,
  InvalidCursorError,
  type OutboxEvent,
  type OutboxStage,
  type PendingEventSummary,
} from "./types.ts";

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
    history: openHistory(key, id, typeof row.history === "string" ? JSON.parse(row.history) : row.history),
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

/**
 * An attempt as both stores keep it in `history`: its URL and the target's answer sealed together in
 * `sealed` (with the event id as associated data, like the event's data), the rest in clear so that
 * listings read status, outcome and error without a key.
 *
 * @example
 * const stored = JSON.stringify(storedAttempt(key, "msg_1", { at, stage: "deliver", outcome: "target_failed", status: 400, answer: "..." }));
 */
export function storedAttempt(key: Uint8Array, id: string, attempt: AttemptRecord): Record<string, unknown> {
  const { url, answer, answerBytes, ...clear } = attempt;
  if (url === undefined && answer === undefined) return clear;
  const sealed = {
    ...(url !== undefined ? { url } : {}),
    ...(answer !== undefined ? { answer } : {}),
    ...(answerBytes !== undefined ? { answerBytes } : {}),
  };
  return { ...clear, sealed: seal(key, id, JSON.stringify(sealed)) };
}

/** A stored history as attempts: sealed parts opened (left out when they do not open). */
export function openHistory(key: Uint8Array, id: string, stored: unknown): AttemptRecord[] {
  if (!Array.isArray(stored)) return [];
  return stored.map((entry: unknown) => openAttempt(key, id, entry));
}

function openAttempt(key: Uint8Array, id: string, entry: unknown): AttemptRecord {
  const stored = isRecord(entry) ? entry : {};
  if (typeof stored.sealed !== "string") return attemptFrom(stored);
  const opened = openData(key, id, stored.sealed);
  let parts: unknown;
  try {
    parts = opened === undefined ? {} : JSON.parse(opened);
  } catch {
    parts = {};
  }
  // The clear fields win: the sealed part holds only url, answer and answerBytes.
  return attemptFrom({ ...(isRecord(parts) ? parts : {}), ...stored });
}

/** An attempt of a listing: the clear part only (no key needed, nothing of the answer). */
function clearAttempt(stored: unknown): AttemptRecord | undefined {
  const value: unknown = typeof stored === "string" ? JSON.parse(stored) : stored;
  return isRecord(value) ? attemptFrom({ ...value, sealed: undefined }) : undefined;
}

/** The fields of an attempt as stored (a row is data: each field is checked, not assumed). */
function attemptFrom(value: Readonly<Record<string, unknown>>): AttemptRecord {
  return {
    at: Number(value.at),
    stage: String(value.stage) as OutboxStage,
    outcome: String(value.outcome),
    ...(typeof value.status === "number" ? { status: value.status } : {}),
    ...(typeof value.error === "string" ? { error: value.error } : {}),
    ...(typeof value.url === "string" ? { url: value.url } : {}),
    ...(typeof value.answer === "string" ? { answer: value.answer } : {}),
    ...(typeof value.answerBytes === "number" ? { answerBytes: value.answerBytes } : {}),
  };
}

/** The columns a listing reads; `last_attempt` is the last element of `history`. */
function summaryOf(row: EventRow): EventSummary {
  const lastAttempt =
    row.last_attempt === null || row.last_attempt === undefined ? undefined : clearAttempt(row.last_attempt);
  return {
    id: String(row.id),
    route: String(row.route),
    stage: String(row.stage) as OutboxStage,
    attempts: Number(row.attempts),
    createdAt: Number(row.created_at),
    nextAttemptAt: Number(row.next_attempt_at),
    ...(lastAttempt ? { lastAttempt } : {}),
  };
}

/** An outbox row of a listing (`lease_until` decides `leased` at `now`). */
export function pendingSummaryFromRow(row: EventRow, now: number): PendingEventSummary {
  const leaseUntil = row.lease_until === null || row.lease_until === undefined ? undefined : Number(row.lease_until);
  return { ...summaryOf(row), leased: leaseUntil !== undefined && leaseUntil > now };
}

/** A dead-letter row of a listing. */
export function deadLetterSummaryFromRow(row: EventRow): DeadLetterSummary {
  return { ...summaryOf(row), deadAt: Number(row.dead_at), reason: String(row.reason) };
}

/**
 * The `next` of a page: where the next page starts, as the sort value and id of the last row shown
 * (keyset paging: rows added or removed meanwhile never shift a page).
 *
 * @example
 * const next = pageCursor(last.deadAt, last.id); // pass as `after`; readCursor(next) gives them back
 */
export function pageCursor(sortValue: number, id: string): string {
  return Buffer.from(JSON.stringify([sortValue, id]), "utf8").toString("base64url");
}

/** Reads a {@link pageCursor}; throws {@link InvalidCursorError} for anything else. */
export function readCursor(cursor: string): { readonly sortValue: number; readonly id: string } {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    throw new InvalidCursorError("not a cursor of this listing");
  }
  if (!Array.isArray(value) || value.length !== 2 || !Number.isSafeInteger(value[0]) || typeof value[1] !== "string") {
    throw new InvalidCursorError("not a cursor of this listing");
  }
  return { sortValue: value[0] as number, id: value[1] };
}

/** The page of `rows` (fetched with `limit + 1` to see whether more follow) and its `next`. */
export function pageOf<T extends { readonly id: string }>(
  rows: readonly T[],
  limit: number,
  sortValue: (item: T) => number,
): { items: T[]; next?: string } {
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return rows.length > limit && last ? { items, next: pageCursor(sortValue(last), last.id) } : { items };
}

/** The store_meta row name of a delivery loop's mark. */
export const DELIVERING_PREFIX = "delivering:";
