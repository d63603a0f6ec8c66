import type { ReplayGuard } from "../verify/replay-guard.ts";

/**
 * The durable side of async delivery. Delivery and routing see only these interfaces, never which
 * store is behind them (SQLite now; a shared PostgreSQL store can implement the same later).
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
}

/** What the gateway stores when it accepts an async call (before answering 202). */
export interface NewOutboxEvent {
  /** The webhook-id: unique, the idempotency key towards the target. */
  readonly id: string;
  readonly route: string;
  /** The first stage to run: `deliver` for async routes, `resume` for a sync route whose delivery already succeeded. */
  readonly stage: OutboxStage;
  /**
   * JSON of what the stages need, secrets already stripped by the route: the outbound message (body,
   * stripped payload, forwarded headers), the resume callback (token, URL), the entity reference.
   * Opaque to the store.
   */
  readonly data: string;
  /** epilot's short-lived x-epilot-token for write-back; the store keeps it encrypted at rest. */
  readonly secret?: string;
  readonly createdAt: number;
  /** JSON an earlier step left for `stage` (a sync call's target answer, for write-back). */
  readonly stageData?: string;
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

export interface OutboxStore {
  /** Resolves only once the event is durably committed (the 202 to epilot waits for this). */
  add(event: NewOutboxEvent): Promise<void>;
  /**
   * Claims up to `limit` events of `route` that are due (`nextAttemptAt <= now`) and not leased,
   * leasing them until `now + leaseMs`. An event whose lease ran out (its worker died) is due again.
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
  /** The x-epilot-token of an event, decrypted; undefined when there is none. */
  secretOf(event: OutboxEvent): string | undefined;
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
  /** Dead letters per route, counted by the store (metrics scrape this; no rows are read). */
  countByRoute(): Promise<Record<string, number>>;
}

/** What `/readyz` and the metrics report about a store. */
export interface StoreStatus {
  readonly kind: "memory" | "sqlite" | "postgres";
  /** True when a write would succeed now. */
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
  /** Checks that the store answers and accepts writes (readiness). */
  status(): Promise<StoreStatus>;
  close(): Promise<void>;
}
