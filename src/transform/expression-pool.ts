/**
 * Evaluates JSONata expressions in worker threads, where a hard deadline really stops them.
 *
 * JSONata checks its time limit only between its own steps; a native call inside one step (a
 * catastrophic regex, `$distinct` over 100,000 items, a `$sort`) ran on in the gateway's thread for
 * seconds and froze every call, `/healthz` included. Here such an expression runs in a worker
 * thread; the gateway's thread only waits on a timer. At the limit the evaluation fails with code
 * `timeout`, the thread is stopped and a fresh one takes its place on the next evaluation.
 *
 * Expressions that a static check proves cheap never come here (see bounded-expression.ts and
 * expression.ts): a round trip costs tens of microseconds, an in-process field pick a few.
 *
 * Bounds: at most `threads` threads at once (a thread being stopped still counts, so a runaway
 * task under Deno, whose threads cannot be stopped mid-task, never adds threads); at most
 * `maxQueued` evaluations wait for a thread, each at most the time limit, then fail with `busy`.
 * Waiting evaluations hold only a reference to their input; it is turned into JSON when a thread
 * takes it.
 */
import { availableParallelism } from "node:os";
import { startWorkerThread, type WorkerThread } from "../runtime/worker-thread.ts";
import {
  EvaluationFailure,
  EXPRESSION_TIME_LIMIT_MS,
  ExpressionEvaluationError,
  timeoutError,
} from "./evaluation-error.ts";
import { type EvaluationReply, EXPRESSION_WORKER_ENTRY } from "./worker-evaluation.ts";

export interface ExpressionPoolOptions {
  /** Worker threads at most (started on demand). */
  readonly threads: number;
  /** How long one evaluation may run. */
  readonly timeLimitMs: number;
  /** How long an evaluation may wait for a thread (default: `timeLimitMs`). */
  readonly maxWaitMs?: number;
  /** Evaluations that may wait for a thread; one more fails at once with `busy`. */
  readonly maxQueued: number;
  /** The thread's entry module under `src/` (tests start others). */
  readonly entry?: string;
}

/**
 * Two threads even on one core: a thread stuck until its deadline must not stop every other
 * expression; at most four, since each holds its own heap (measured: about 5 MB of RSS each).
 */
export const DEFAULT_POOL_OPTIONS: ExpressionPoolOptions = {
  threads: Math.min(4, Math.max(2, availableParallelism())),
  timeLimitMs: EXPRESSION_TIME_LIMIT_MS,
  maxQueued: 1_000,
};

interface Job {
  readonly source: string;
  readonly input: unknown;
  readonly bindings: Record<string, unknown> | undefined;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: ExpressionEvaluationError) => void;
  waitTimer?: ReturnType<typeof setTimeout>;
}

interface Running {
  readonly id: number;
  readonly job: Job;
  /** The deadline. */
  readonly timer: ReturnType<typeof setTimeout>;
}

interface Slot {
  thread: WorkerThread | undefined;
  /** empty: no thread; stopping: a thread is being ended and still counts against the limit. */
  state: "empty" | "idle" | "busy" | "stopping";
  running: Running | undefined;
}

export class ExpressionPool {
  private readonly slots: Slot[];
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closed = false;
  private readonly stopping = new Set<Promise<void>>();

  constructor(private readonly options: ExpressionPoolOptions = DEFAULT_POOL_OPTIONS) {
    this.slots = Array.from(
      { length: options.threads },
      (): Slot => ({ thread: undefined, state: "empty", running: undefined }),
    );
  }

  /**
   * Evaluates `source` over `input` in a worker thread. Rejects with an
   * {@link ExpressionEvaluationError}: JSONata's code, or `timeout`, `busy`, `result_too_large`,
   * `worker_failed`, `closed`.
   *
   * @example
   * const pool = new ExpressionPool();
   * await pool.evaluate("$sort(items)", { items: [3, 1, 2] }); // [1, 2, 3]
   */
  evaluate(source: string, input: unknown, bindings?: Record<string, unknown>): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) => {
      if (this.closed) {
        reject(failure(EvaluationFailure.closed, "the gateway is shutting down"));
        return;
      }
      const job: Job = { source, input, bindings, resolve, reject };
      const slot = this.freeSlot();
      if (slot) {
        this.dispatch(slot, job);
        return;
      }
      if (this.queue.length >= this.options.maxQueued) {
        reject(failure(EvaluationFailure.busy, `${this.queue.length} evaluations are already waiting for a worker`));
        return;
      }
      const maxWaitMs = this.options.maxWaitMs ?? this.options.timeLimitMs;
      job.waitTimer = setTimeout(() => {
        const index = this.queue.indexOf(job);
        if (index !== -1) this.queue.splice(index, 1);
        reject(failure(EvaluationFailure.busy, `no expression worker was free within ${maxWaitMs} ms`));
      }, maxWaitMs);
      unref(job.waitTimer);
      this.queue.push(job);
    });
  }

  /** Threads now running or being stopped, and evaluations waiting (for tests and metrics). */
  stats(): { threads: number; busy: number; stopping: number; queued: number } {
    const count = (state: Slot["state"]) => this.slots.filter((slot) => slot.state === state).length;
    return {
      threads: this.slots.length - count("empty"),
      busy: count("busy"),
      stopping: count("stopping"),
      queued: this.queue.length,
    };
  }

  /**
   * Fails what waits or runs with `closed` and stops every thread. Resolves once they stopped, or
   * after a second at most (a Deno thread stuck in a native call ends with the process).
   */
  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) {
      clearTimeout(job.waitTimer);
      job.reject(failure(EvaluationFailure.closed, "the gateway is shutting down"));
    }
    for (const slot of this.slots) {
      if (slot.running) {
        clearTimeout(slot.running.timer);
        slot.running.job.reject(failure(EvaluationFailure.closed, "the gateway is shutting down"));
        slot.running = undefined;
      }
      if (slot.thread && slot.state !== "stopping") this.retire(slot);
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all(this.stopping),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, 1_000);
        unref(timer);
      }),
    ]);
    clearTimeout(timer);
  }

  /** An idle thread first; else a slot without one, whose thread starts now. */
  private freeSlot(): Slot | undefined {
    return this.slots.find((slot) => slot.state === "idle") ?? this.slots.find((slot) => slot.state === "empty");
  }

  private dispatch(slot: Slot, job: Job): void {
    const id = this.nextId++;
    let message: string;
    try {
      const task = {
        id,
        source: job.source,
        ...(job.input !== undefined ? { input: job.input } : {}),
        ...(job.bindings !== undefined ? { bindings: job.bindings } : {}),
      };
      message = JSON.stringify(task);
    } catch (error) {
      // The slot stays as it was, free for the next evaluation.
      job.reject(failure(EvaluationFailure.workerFailed, `the input cannot be sent: ${(error as Error).message}`));
      return;
    }
    if (!slot.thread) {
      try {
        slot.thread = startWorkerThread(this.options.entry ?? EXPRESSION_WORKER_ENTRY, {
          onMessage: (data) => this.settle(slot, data as EvaluationReply),
          onError: (reason) => this.threadFailed(slot, reason),
        });
      } catch (error) {
        job.reject(
          failure(EvaluationFailure.workerFailed, `the expression worker could not start: ${(error as Error).message}`),
        );
        return;
      }
    }
    const timer = setTimeout(() => this.expire(slot, id), this.options.timeLimitMs);
    unref(timer);
    slot.state = "busy";
    slot.running = { id, job, timer };
    slot.thread.post(message);
  }

  private settle(slot: Slot, reply: EvaluationReply): void {
    const running = slot.running;
    if (!running || running.id !== reply.id) return;
    clearTimeout(running.timer);
    slot.running = undefined;
    slot.state = "idle";
    if (reply.ok) {
      let value: unknown;
      try {
        value = reply.json === undefined ? undefined : JSON.parse(reply.json);
      } catch {
        running.job.reject(failure(EvaluationFailure.workerFailed, "the expression worker sent an unreadable result"));
        this.pump();
        return;
      }
      running.job.resolve(value);
    } else {
      running.job.reject(new ExpressionEvaluationError(reply.message, reply.code, reply.position));
    }
    this.pump();
  }

  private expire(slot: Slot, id: number): void {
    const running = slot.running;
    if (!running || running.id !== id) return;
    slot.running = undefined;
    running.job.reject(timeoutError(this.options.timeLimitMs));
    this.retire(slot);
  }

  private threadFailed(slot: Slot, reason: string): void {
    const running = slot.running;
    if (running) {
      clearTimeout(running.timer);
      slot.running = undefined;
      running.job.reject(failure(EvaluationFailure.workerFailed, `the expression worker failed: ${reason}`));
    }
    this.retire(slot);
  }

  /** Stops the slot's thread; the slot takes a new thread only once the old one no longer runs. */
  private retire(slot: Slot): void {
    const thread = slot.thread;
    slot.state = "stopping";
    if (!thread) {
      slot.state = "empty";
      return;
    }
    const stopped = thread.stop().then(() => {
      this.stopping.delete(stopped);
      slot.thread = undefined;
      slot.state = "empty";
      this.pump();
    });
    this.stopping.add(stopped);
  }

  /** Hands waiting evaluations to free threads. */
  private pump(): void {
    while (this.queue.length > 0 && !this.closed) {
      const slot = this.freeSlot();
      if (!slot) return;
      const job = this.queue.shift()!;
      clearTimeout(job.waitTimer);
      this.dispatch(slot, job);
    }
  }
}

function failure(code: string, message: string): ExpressionEvaluationError {
  return new ExpressionEvaluationError(message, code, undefined);
}

function unref(timer: ReturnType<typeof setTimeout>): void {
  // Bun and Node return a Timeout with unref(); under Deno a number, whose timers stop nothing at exit anyway.
  (timer as { unref?: () => void }).unref?.();
}

let shared: ExpressionPool | undefined;

/** The gateway's pool, made on first use; its threads start only when an expression needs one. */
export function sharedExpressionPool(): ExpressionPool {
  shared ??= new ExpressionPool();
  return shared;
}

/**
 * Closes the gateway's pool (at shutdown). An evaluation after this starts a new pool, so a
 * process that runs several gateways one after another (tests) keeps working.
 */
export async function closeSharedExpressionPool(): Promise<void> {
  const pool = shared;
  shared = undefined;
  await pool?.close();
}
