import { setImmediate } from "node:timers";
import type { SqliteDatabase } from "../runtime/sqlite.ts";

export interface GroupCommitOptions {
  /**
   * The longest a write waits for others to share its commit while the store is busy (the last
   * commit held more than one write). A quiet store commits at the next turn of the event loop.
   */
  readonly maxWaitMs: number;
  /** A batch this large commits at once, without waiting for the rest of maxWaitMs. */
  readonly maxBatch?: number;
}

interface QueuedWrite {
  readonly write: () => unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

const DEFAULT_MAX_BATCH = 512;

/**
 * Group commit for one SQLite connection: writes queued while a batch is open run in one
 * transaction, each in its own savepoint, and every promise resolves only after that COMMIT
 * returned, so `synchronous: full` keeps its meaning per write (one fsync per batch instead of one
 * per write). A write that throws is rolled back alone and rejects alone; a failed BEGIN or COMMIT
 * (disk full, lock held past busy_timeout) rejects the whole batch, of which nothing was committed.
 *
 * Writes run in the order they were queued. What reads the database directly sees a queued write
 * only once its promise resolved, as it would with one transaction per write.
 *
 * @example
 * const commits = new GroupCommit(db, { maxWaitMs: 2 });
 * const added = await commits.run(() => db.prepare("INSERT OR IGNORE INTO t (id) VALUES (?)").run(id).changes > 0);
 */
export class GroupCommit {
  private queue: QueuedWrite[] = [];
  private scheduled: "immediate" | "timer" | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** How many writes the last batch held: more than one means callers are queueing up. */
  private lastBatchSize = 0;
  private closed = false;
  private readonly maxBatch: number;
  /** Batches committed and the writes they held (tests). */
  batches = 0;
  writes = 0;

  constructor(
    private readonly db: SqliteDatabase,
    private readonly options: GroupCommitOptions,
  ) {
    this.maxBatch = options.maxBatch ?? DEFAULT_MAX_BATCH;
  }

  /** Queues `write` (synchronous SQLite work) into the next batch; resolves with its result once committed. */
  run<T>(write: () => T): Promise<T> {
    if (this.closed) return Promise.reject(new Error("the store is closed"));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ write, resolve: resolve as (value: unknown) => void, reject });
      this.schedule();
    });
  }

  /** Commits what is queued now (close, and tests that need a write on disk before they go on). */
  flush(): void {
    this.cancelSchedule();
    while (this.queue.length > 0) this.commitBatch();
  }

  /** Commits what is queued, then refuses further writes. */
  close(): void {
    this.flush();
    this.closed = true;
  }

  private schedule(): void {
    if (this.queue.length >= this.maxBatch) {
      // Full: commit at the next turn rather than after the timer (never inside the caller's stack).
      if (this.scheduled !== "immediate") {
        this.cancelSchedule();
        this.scheduled = "immediate";
        setImmediate(() => this.fire());
      }
      return;
    }
    if (this.scheduled !== undefined) return;
    if (this.lastBatchSize > 1 && this.options.maxWaitMs > 0) {
      this.scheduled = "timer";
      this.timer = setTimeout(() => this.fire(), this.options.maxWaitMs);
    } else {
      this.scheduled = "immediate";
      setImmediate(() => this.fire());
    }
  }

  private cancelSchedule(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.scheduled = undefined;
  }

  private fire(): void {
    // A stale immediate (replaced by a flush or a full batch) finds nothing to do or the new batch.
    this.cancelSchedule();
    if (this.queue.length === 0) return;
    this.commitBatch();
    // What is left over from a full batch has waited already: it goes at the next turn.
    if (this.queue.length > 0) {
      this.scheduled = "immediate";
      setImmediate(() => this.fire());
    }
  }

  private commitBatch(): void {
    const batch = this.queue.splice(0, this.maxBatch);
    this.lastBatchSize = batch.length;
    const outcomes: ({ ok: true; value: unknown } | { ok: false; error: unknown })[] = [];
    try {
      this.db.transaction(() => {
        for (const queued of batch) {
          try {
            // Nested: a savepoint, rolled back alone when this write throws.
            outcomes.push({ ok: true, value: this.db.transaction(queued.write) });
          } catch (error) {
            outcomes.push({ ok: false, error });
          }
        }
      });
    } catch (error) {
      // BEGIN or COMMIT failed: nothing of the batch is on disk.
      for (const queued of batch) queued.reject(error);
      return;
    }
    this.batches++;
    this.writes += batch.length;
    batch.forEach((queued, index) => {
      const outcome = outcomes[index]!;
      if (outcome.ok) queued.resolve(outcome.value);
      else queued.reject(outcome.error);
    });
  }
}
