import type { ReplayGuard } from "../verify/replay-guard.ts";

/**
 * The durable side of async delivery. Delivery and routing see only these interfaces, never which
 * store is behind them (memory, SQLite, PostgreSQL); test/support/store-contract.ts is the behaviour
 * every store owes them.
 *
 * Rules every store keeps:
 * - At rest, `data`, `secret` and `stageData` are sealed (AES-256-GCM with the store's key and the
 *   event id as associated data, see secret-box.ts); the interfaces pass and return `data` and
 *   `stageData` in clear and `secret` sealed (`secretOf` opens it). An event whose sealed data does
 *   not open is moved to the dead letters by `claim` instead of being handed out.
 * - Replay-guard `release` never rejects: when the store cannot forget the id (database down, disk
 *   full, file locked), the id is kept, released again in the background every second and before any
 *   `claim` of that id, and a warning is logged (pending-releases.ts). epilot's retry of the failed
 *   call is then processed, or answered 503 while the store is still down, never refused with 409.
 * - The lease of a claimed event is the column `lease_until` in both durable stores.
 */

/** Which step of an event's life is next: first the target, then epilot's resume call, then the entity write-back. */
export type OutboxStage = "deliver" | "resume" | "write_back";

/** One attempt at one stage, kept for the dead-letter report. */
export interface AttemptRecord {
  /** ms since epoch */
  readonly at: number;
  readonly stage: OutboxStage;
  /** `delivered`, `target_failed`, `target_unreachable`, `target_timeout`, `resume_failed`, ... */
  readonly outcome: string;
  /** HTTP status of the answer, when there was one. */
  readonly status?: number;
  /** Short, safe text (no secrets, no tokens). */
  readonly error?: string;
  /**
   * The URL the request went to, placeholders filled and credentials hidden (deliver stage). Sealed
   * at rest with the event's key, like the answer: a URL may hold values of the payload.
   */
  readonly url?: string;
  /** The first KB of the target's answer, redacted (see delivery/attempt-answer.ts). Sealed at rest. */
  readonly answer?: string;
  /** The size in bytes of the whole answer as recorded, when `answer` is only its first KB. */
  readonly answerBytes?: number;
}

/** How many attempts a history keeps: the oldest are dropped beyond it (`attempts` still counts them all). */
export const MAX_HISTORY = 100;

/** What the gateway stores when it accepts an async call (before answering 202). */
export interface NewOutboxEvent {
  /** The webhook-id: unique, the idempotency key towards the target. */
  readonly id: string;
  readonly route: string;
  /** The first stage to run: `deliver` for async routes, `resume` for a sync route whose delivery already succeeded. */
  readonly stage: OutboxStage;
  /**
   * JSON of what the stages need, secrets already stripped by the route: the transformed body and the
   * stripped payload, the callback URL, the entity reference. Opaque to the store, which keeps it
   * encrypted at rest.
   */
  readonly data: string;
  /**
   * JSON of the secrets (x-epilot-token, resume token, forwarded headers); encrypted at rest. As
   * given to `add` it is in clear; as returned by the store it is sealed: open it with `secretOf`.
   */
  readonly secret?: string;
  readonly createdAt: number;
  /** JSON an earlier step left for `stage` (a sync call's target answer, for write-back); encrypted at rest. */
  readonly stageData?: string;
  /**
   * Events of one route with the same order key are handed out one at a time, in the order they were
   * added (see {@link OutboxStore.claim}). Kept as a keyed hash at rest (it is read from the payload);
   * not returned by `claim`.
   */
  readonly orderKey?: string;
}

/** An event claimed by a worker. */
export interface OutboxEvent extends NewOutboxEvent {
  /** Attempts made in the current stage. */
  readonly attempts: number;
  readonly nextAttemptAt: number;
  readonly history: readonly AttemptRecord[];
}

/** An event that ran out of attempts or failed for good. */
export interface DeadLetter extends OutboxEvent {
  readonly deadAt: number;
  readonly reason: string;
}

/** What listings show of an event: where it is and how it went, never its data, secret or stage data. */
export interface EventSummary {
  readonly id: string;
  readonly route: string;
  readonly stage: OutboxStage;
  /** Attempts made in the current stage (for a dead letter: when it died). */
  readonly attempts: number;
  readonly createdAt: number;
  readonly nextAttemptAt: number;
  /** The last attempt, without its URL and answer (`get` of a dead letter has those). */
  readonly lastAttempt?: AttemptRecord;
}

/** An event waiting in the outbox. */
export interface PendingEventSummary extends EventSummary {
  /** Claimed by a worker right now (an attempt is in flight, or its worker died and the lease has not run out). */
  readonly leased: boolean;
}

/** A dead letter in a listing. */
export interface DeadLetterSummary extends EventSummary {
  readonly deadAt: number;
  readonly reason: string;
}

/** One page of a listing; `next` (absent on the last page) is passed as `after` to get the next one. */
export interface Page<T> {
  readonly items: readonly T[];
  readonly next?: string;
}

export interface OutboxQuery {
  readonly route?: string;
  readonly limit: number;
  /** The `next` of the previous page. */
  readonly after?: string;
}

/** Which dead letters a listing, a count or a bulk replay selects; every given key must hold. */
export interface DeadLetterFilter {
  readonly route?: string;
  /** Only those of these routes (a bulk replay passes the configured ones). */
  readonly routes?: readonly string[];
  /** Only those whose reason contains this text (case-sensitive). */
  readonly reasonContains?: string;
  /** Only those that died before this time (ms since epoch). */
  readonly diedBefore?: number;
}

export interface DeadLetterQuery extends DeadLetterFilter {
  readonly limit: number;
  /** The `next` of the previous page. */
  readonly after?: string;
}

/** A listing's `after` that no page of this store handed out. */
export class InvalidCursorError extends Error {
  override name = "InvalidCursorError";
}

export interface OutboxStore {
  /** Resolves only once the event is durably committed (the 202 to epilot waits for this). */
  add(event: NewOutboxEvent): Promise<void>;
  /**
   * Claims up to `limit` events of `route` that are due (`nextAttemptAt <= now`) and not leased,
   * leasing them until `now + leaseMs`. An event whose lease ran out (its worker died) is due again.
   *
   * Ordered events: an event with an order key is handed out only while no event of the same route
   * and key that was added before it is still in the outbox (leased, waiting for a retry, or at a
   * later stage), on every connection and replica. So the events of one key go out one at a time
   * in the order they were added; one that goes to the dead letters lets the next go, and a dead
   * letter replayed joins the end of its key's line. Other keys are independent.
   */
  claim(route: string, limit: number, now: number, leaseMs: number): Promise<OutboxEvent[]>;
  /** Records a failed attempt and schedules the next one; releases the lease. */
  retryLater(id: string, attempt: AttemptRecord, nextAttemptAt: number): Promise<void>;
  /** Moves a claimed event to its next stage with fresh attempts, due at once; releases the lease. */
  advance(id: string, attempt: AttemptRecord, stage: OutboxStage, stageData?: string): Promise<void>;
  /** Releases the lease without counting an attempt (circuit breaker open, shutdown). */
  postpone(id: string, nextAttemptAt: number): Promise<void>;
  /** The event is done: removed from the outbox. */
  complete(id: string, attempt: AttemptRecord): Promise<void>;
  /** The event failed for good: moved to the dead letters with its history and reason. */
  bury(id: string, attempt: AttemptRecord, reason: string): Promise<void>;
  /** Pending events per route (metrics, readiness, shutdown report). */
  depth(): Promise<Record<string, number>>;
  /** The event's `secret`, decrypted; undefined when there is none or it does not open. */
  secretOf(event: OutboxEvent): string | undefined;
  /**
   * Events waiting, in the order they are due (`nextAttemptAt`, then id); `now` decides `leased`.
   * Throws {@link InvalidCursorError} for an `after` it did not hand out.
   */
  list(query: OutboxQuery, now: number): Promise<Page<PendingEventSummary>>;
  /**
   * Moves up to `limit` events of `route` that are not leased to the dead letters with `reason`, in
   * one transaction; returns how many. For events whose route is no longer configured.
   */
  moveToDeadLetters(route: string, reason: string, now: number, limit: number): Promise<number>;
  /** Records that the delivery loop `owner` polled at `at` (a row of store_meta per loop). */
  markDelivering(owner: string, at: number): Promise<void>;
  /** Removes `owner`'s mark (its loop stopped). */
  stopDelivering(owner: string): Promise<void>;
  /** When a delivery loop last polled (the newest mark), or undefined when none ever did. */
  lastDelivering(): Promise<number | undefined>;
}

/** One polled message as the poll source commits it (see {@link PollInbox.commit}). */
export interface InboxEntry {
  /** The duplicate key epilot's at-least-once delivery calls for: one event is stored once per use case. */
  readonly useCaseId: string;
  readonly eventId: string;
  /** The outbox event to add when the message was not seen before. */
  readonly event: NewOutboxEvent;
}

/**
 * What the poll sources keep: which events were stored already (for the duplicate check across
 * restarts and replicas), and which replica polls a source now.
 */
export interface PollInbox {
  /**
   * In one transaction, for each entry in order: when `(useCaseId, eventId)` is new, remembers it
   * (with `source` and `now`) and adds its outbox event; a key seen before adds nothing. Resolves
   * once committed, with `true` for each entry that was new, so that the caller acknowledges only
   * what is durable. Adding an event whose id is in the outbox or the dead letters adds nothing
   * either (the key was pruned while the event waited).
   */
  commit(source: string, entries: readonly InboxEntry[], now: number): Promise<boolean[]>;
  /** Forgets the keys `source` stored before `cutoff` (ms since epoch); returns how many. */
  prune(source: string, cutoff: number): Promise<number>;
  /**
   * Takes or renews the right to poll `source` until `now + ttlMs`, for `owner`: true when `owner`
   * holds it now. Another owner gets it once it ran out, so that one replica polls a source at a
   * time (epilot hands out one batch per stream anyway; this saves the others' empty polls).
   */
  acquirePollLock(source: string, owner: string, now: number, ttlMs: number): Promise<boolean>;
  /** Gives the right up (shutdown), if `owner` holds it. */
  releasePollLock(source: string, owner: string): Promise<void>;
}

export interface DeadLetterStore {
  list(): Promise<DeadLetter[]>;
  get(id: string): Promise<DeadLetter | undefined>;
  /** Puts the event back in the outbox at its stage with fresh attempts; false when there is no such dead letter. */
  replay(id: string, now: number): Promise<boolean>;
  /** Replays all; returns how many. */
  replayAll(now: number): Promise<number>;
  purge(id: string): Promise<boolean>;
  /** Removes dead letters that died before `cutoff` (ms since epoch); returns how many. */
  purgeOlderThan(cutoff: number): Promise<number>;
  /** Dead letters per route (of those `filter` selects), counted by the store (metrics scrape this; no rows are read). */
  countByRoute(filter?: DeadLetterFilter): Promise<Record<string, number>>;
  /**
   * Dead letters the query selects, newest first (`deadAt`, then id, descending). Throws
   * {@link InvalidCursorError} for an `after` it did not hand out.
   */
  query(query: DeadLetterQuery): Promise<Page<DeadLetterSummary>>;
  /**
   * Puts up to `limit` of the dead letters `filter` selects (oldest first) back in the outbox, due
   * at `now`, in one transaction; returns how many. A bulk replay calls it until it returns less
   * than `limit`: a process that stops between two batches leaves the rest as dead letters.
   */
  replayBatch(filter: DeadLetterFilter, now: number, limit: number): Promise<number>;
}

/** What `/readyz` and the metrics report about a store. */
export interface StoreStatus {
  readonly kind: "memory" | "sqlite" | "postgres";
  /** True when a write succeeded just now (`status()` writes and deletes a probe row). */
  readonly writable: boolean;
  /** The schema version the store is at (none for memory). */
  readonly schemaVersion?: number;
  /** Why it is not writable; safe to show (no credentials). */
  readonly error?: string;
}

/** A store as the gateway opens it. */
export interface Store {
  readonly outbox: OutboxStore;
  readonly deadLetters: DeadLetterStore;
  readonly replayGuard: ReplayGuard;
  readonly inbox: PollInbox;
  /**
   * Checks that the store answers and accepts writes (readiness): commits a small real write (a probe
   * row in `store_meta`, written and deleted in one transaction), so a full or read-only disk, a
   * standby database or a held lock shows as not writable. Waits at most 1.5 s for a lock.
   */
  status(): Promise<StoreStatus>;
  close(): Promise<void>;
}
