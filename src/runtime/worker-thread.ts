/**
 * Worker threads (web-standard `Worker`) on whichever runtime runs us. Two things differ between
 * Bun and Deno and stay in here:
 *
 * - where the thread's entry module is: from source (Bun or Deno), next to this folder; in a
 *   binary of `bun build --compile`, at its path under `src/` inside the binary's own file system
 *   (`/$bunfs/root/transform/expression-worker.ts`), because bundled modules share the bundle's
 *   `import.meta.url` (scripts/build.ts makes the entry an extra entrypoint);
 * - what stopping means: Bun's `terminate()` stops a thread even in the middle of a native call (a
 *   regex, a sort; measured at most 200 ms, and its `close` event says when). Deno 2.9's
 *   `terminate()` returns, but a busy thread runs on, burning a core, until its current task ends
 *   (denoland/deno#35657). There a busy thread is therefore left to finish its task and ended
 *   right after, and {@link WorkerThread.stop} resolves only then: the caller keeps counting it, so
 *   a runaway task never adds threads beyond the caller's limit.
 *
 * The protocol this assumes: every message posted to the thread is answered by exactly one message.
 */
import { pathToFileURL } from "node:url";

declare const Deno: unknown;

export interface WorkerThreadHandlers {
  /** Each answer the thread posts, while it is not being stopped. */
  readonly onMessage: (data: unknown) => void;
  /** The thread failed to start or threw outside a task; it is of no further use. */
  readonly onError: (message: string) => void;
}

export interface WorkerThread {
  /** Sends one task; the thread answers it with one message. */
  post(message: string): void;
  /**
   * Ends the thread and resolves once it no longer runs. Answers that arrive meanwhile are dropped.
   * An idle thread never keeps the process alive; one with a task in flight does.
   */
  stop(): Promise<void>;
}

/** Bun's additions to the web Worker (DOM's type does not have them). */
interface BunWorker extends Worker {
  ref(): void;
  unref(): void;
}

const onBun = typeof Bun !== "undefined";
const onDeno = typeof Deno !== "undefined";

/**
 * Starts a worker thread running `entry`, a module path under `src/`.
 *
 * @example
 * const thread = startWorkerThread("transform/expression-worker.ts", {
 *   onMessage: (reply) => settle(reply),
 *   onError: (message) => fail(message),
 * });
 * thread.post(JSON.stringify(task));
 * await thread.stop();
 */
export function startWorkerThread(entry: string, handlers: WorkerThreadHandlers): WorkerThread {
  const worker = new Worker(entryUrl(entry), { type: "module" });
  const bunWorker = onBun ? (worker as BunWorker) : undefined;
  bunWorker?.unref();
  let inFlight = 0;
  let stopping = false;
  /** Failed to start or crashed: no answer will come, so nothing is worth waiting for. */
  let broken = false;
  let closed = false;
  let finishStop: (() => void) | undefined;
  let stopped: Promise<void> | undefined;
  const closedEvent = new Promise<void>((resolve) => {
    worker.addEventListener("close", () => {
      closed = true;
      resolve();
    });
  });

  const end = (): Promise<void> => {
    worker.terminate();
    bunWorker?.unref();
    // Bun reports the end with `close`; Deno has no such event, and its terminate() of an idle
    // thread takes effect at once, as it does of a thread that never started.
    return onBun && !closed && !broken ? closedEvent : Promise.resolve();
  };

  worker.addEventListener("message", (event) => {
    inFlight = Math.max(0, inFlight - 1);
    if (inFlight === 0) bunWorker?.unref();
    if (!stopping) handlers.onMessage(event.data);
    else if (inFlight === 0 && finishStop) finishStop();
  });
  worker.addEventListener("error", (event) => {
    event.preventDefault();
    broken = true;
    if (stopping) finishStop?.();
    else handlers.onError(event.message || "the worker thread failed");
  });

  return {
    post(message) {
      if (stopping) return;
      if (inFlight++ === 0) bunWorker?.ref();
      worker.postMessage(message);
    },
    stop() {
      if (stopped) return stopped;
      stopping = true;
      if (onDeno && inFlight > 0 && !broken) {
        // terminate() would not stop the task; let it finish, then end the thread.
        stopped = new Promise<void>((resolve) => {
          finishStop = () => void end().then(resolve);
        });
      } else {
        stopped = end();
      }
      return stopped;
    },
  };
}

function entryUrl(entry: string): URL {
  const main = onBun ? Bun.main : "";
  if (main.startsWith("/$bunfs/") || main.startsWith("B:/~BUN/") || main.startsWith("B:\\~BUN\\"))
    return new URL(entry, pathToFileURL(main));
  return new URL(`../${entry}`, import.meta.url);
}
