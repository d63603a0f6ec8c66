import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import { setImmediate } from "node:timers";
import type { Logger } from "../log/logger.ts";
import { onWakeSignal, sendWakeSignal } from "../runtime/process.ts";
import { type SelfCommand, selfCommand } from "../runtime/self-command.ts";

/**
 * `server.workers: N`: one supervisor process starts N copies of this same program (same binary, same
 * arguments), each serving the public port with SO_REUSEPORT so that the kernel spreads connections
 * over them. They share the SQLite store, so the replay guard holds across workers; only worker 0
 * delivers from the outbox. The others accept async calls into it and wake worker 0 at once: a signal
 * to the supervisor ({@link wakeDeliveringWorker}), which passes it on to worker 0; its poll interval
 * is only the fallback.
 */

/** Set by the supervisor in each child: which worker it is (0..N-1). */
export const WORKER_INDEX_ENV = "ACTIONGATE_WORKER_INDEX";
/** Set by the supervisor in each child: the public port all workers share (resolved when the config says 0). */
export const WORKER_PORT_ENV = "ACTIONGATE_WORKER_PORT";

/** What a worker process is told by its supervisor. */
export interface WorkerRole {
  readonly index: number;
  readonly port: number;
}

/**
 * The worker role this process was started with, or undefined when it is the supervisor or the only
 * process.
 *
 * @example
 * const role = workerRoleFromEnv(process.env); // { index: 1, port: 8080 } in the second worker
 */
export function workerRoleFromEnv(env: Readonly<Record<string, string | undefined>>): WorkerRole | undefined {
  const index = env[WORKER_INDEX_ENV];
  const port = env[WORKER_PORT_ENV];
  if (index === undefined || port === undefined || !/^\d+$/.test(index) || !/^\d+$/.test(port)) return undefined;
  return { index: Number(index), port: Number(port) };
}

export interface RestartPolicy {
  /** The wait before the first restart of a crashed worker; doubles with each quick crash in a row. */
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  /** A worker that ran at least this long counts as healthy: its crash count starts again. */
  readonly healthyAfterMs: number;
  /** After this many quick crashes in a row, the supervisor gives up, stops all workers and exits 1. */
  readonly maxQuickCrashes: number;
}

const DEFAULT_RESTART_POLICY: RestartPolicy = {
  initialDelayMs: 250,
  maxDelayMs: 30_000,
  healthyAfterMs: 10_000,
  maxQuickCrashes: 5,
};

/** Past `server.shutdown_timeout`, the time a worker still gets to close its store before SIGKILL. */
const SHUTDOWN_GRACE_MS = 5_000;

export interface SuperviseWorkersOptions {
  readonly workers: number;
  readonly host: string;
  /** The configured public port; 0 picks a free one that every worker then shares. */
  readonly port: number;
  readonly shutdownTimeoutMs: number;
  readonly logger: Logger;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** What to start; this same program with the same arguments by default. */
  readonly command?: SelfCommand;
  readonly restart?: RestartPolicy;
}

interface WorkerSlot {
  readonly index: number;
  child: ChildProcess | undefined;
  startedAt: number;
  quickCrashes: number;
  restartTimer: ReturnType<typeof setTimeout> | undefined;
}

type ForwardedSignal = "SIGTERM" | "SIGINT" | "SIGHUP";

/**
 * Runs as the supervisor of `workers` child processes until SIGTERM/SIGINT: forwards SIGTERM, SIGINT
 * and SIGHUP to every child, restarts a crashed child with a doubling delay (logged), and on shutdown
 * waits for all children. Resolves with the exit code: 0 after a clean shutdown, 1 when a worker kept
 * crashing right after its start (a port in use, a store that cannot be opened).
 *
 * The children run in their own process group, so that a terminal's Ctrl-C reaches them once (from
 * here) and not twice; each child stops on its own when this supervisor disappears ({@link exitWhenOrphaned}).
 *
 * @example
 * if (config.server.workers > 1 && !workerRoleFromEnv(process.env)) {
 *   return superviseWorkers({ workers: 2, host: "0.0.0.0", port: 8080, shutdownTimeoutMs: 10_000, logger, env: process.env });
 * }
 */
export async function superviseWorkers(options: SuperviseWorkersOptions): Promise<number> {
  const { logger } = options;
  const policy = options.restart ?? DEFAULT_RESTART_POLICY;
  const self = options.command ?? selfCommand();
  const port = options.port === 0 ? await findFreePort(options.host) : options.port;
  const slots: WorkerSlot[] = Array.from({ length: options.workers }, (_, index) => ({
    index,
    child: undefined,
    startedAt: 0,
    quickCrashes: 0,
    restartTimer: undefined,
  }));
  let stopping = false;
  let exitCode = 0;
  let killTimer: ReturnType<typeof setTimeout> | undefined;
  let finish: (code: number) => void = () => {};
  const finished = new Promise<number>((resolve) => (finish = resolve));

  const liveChildren = () => slots.flatMap((slot) => (slot.child ? [slot.child] : []));
  const finishIfAllStopped = () => {
    if (stopping && liveChildren().length === 0 && slots.every((slot) => !slot.restartTimer)) {
      if (killTimer) clearTimeout(killTimer);
      finish(exitCode);
    }
  };

  const startWorker = (slot: WorkerSlot): void => {
    slot.restartTimer = undefined;
    slot.startedAt = Date.now();
    const child = spawn(self.command, [...self.args], {
      env: { ...options.env, [WORKER_INDEX_ENV]: String(slot.index), [WORKER_PORT_ENV]: String(port) },
      stdio: ["ignore", "inherit", "inherit"],
      detached: true,
    });
    slot.child = child;
    logger.info("worker started", { worker: slot.index, pid: child.pid });
    let exited = false;
    const onExit = (code: number | null, signal: NodeJS.Signals | null, error?: Error) => {
      if (exited) return;
      exited = true;
      slot.child = undefined;
      onWorkerExit(slot, child.pid, code, signal, error);
    };
    child.once("exit", (code, signal) => onExit(code, signal));
    child.once("error", (error) => onExit(null, null, error));
  };

  const onWorkerExit = (
    slot: WorkerSlot,
    pid: number | undefined,
    code: number | null,
    signal: NodeJS.Signals | null,
    error?: Error,
  ): void => {
    const fields = { worker: slot.index, pid, code, signal, ...(error ? { error: error.message } : {}) };
    if (stopping) {
      logger.info("worker stopped", fields);
      if (code !== 0) exitCode = 1;
      finishIfAllStopped();
      return;
    }
    const ranMs = Date.now() - slot.startedAt;
    slot.quickCrashes = ranMs >= policy.healthyAfterMs ? 1 : slot.quickCrashes + 1;
    if (slot.quickCrashes > policy.maxQuickCrashes) {
      logger.error("worker keeps crashing right after its start; stopping all workers", {
        ...fields,
        crashes: slot.quickCrashes - 1,
      });
      exitCode = 1;
      shutdown("SIGTERM");
      return;
    }
    const delayMs = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** (slot.quickCrashes - 1));
    logger.warn("worker exited; restarting it", { ...fields, ran_ms: ranMs, restart_in_ms: delayMs });
    slot.restartTimer = setTimeout(() => startWorker(slot), delayMs);
  };

  const shutdown = (signal: ForwardedSignal): void => {
    if (!stopping) {
      stopping = true;
      for (const slot of slots) {
        if (slot.restartTimer) clearTimeout(slot.restartTimer);
        slot.restartTimer = undefined;
      }
      killTimer = setTimeout(() => {
        for (const child of liveChildren()) {
          logger.warn("worker did not stop in time; killing it", { pid: child.pid });
          child.kill("SIGKILL");
        }
      }, options.shutdownTimeoutMs + SHUTDOWN_GRACE_MS);
    }
    // A second signal is forwarded too: the workers then stop at once, as a single process would.
    for (const child of liveChildren()) child.kill(signal);
    finishIfAllStopped();
  };

  const onSignal = (signal: ForwardedSignal) => () => {
    if (signal === "SIGHUP") {
      if (stopping) return;
      logger.info("forwarding signal to workers", { signal });
      for (const child of liveChildren()) child.kill(signal);
      return;
    }
    logger.info("shutting down workers", { signal });
    shutdown(signal);
  };
  const handlers = (["SIGTERM", "SIGINT", "SIGHUP"] as const).map((signal) => [signal, onSignal(signal)] as const);
  for (const [signal, handler] of handlers) process.on(signal, handler);
  // A worker added an event to the outbox: worker 0, the one delivering, looks at it now.
  const stopWaking = onWakeSignal(() => {
    const pid = slots[0]?.child?.pid;
    if (pid !== undefined && !stopping) sendWakeSignal(pid);
  });

  logger.info("starting workers", { workers: options.workers, host: options.host, port });
  for (const slot of slots) startWorker(slot);

  const code = await finished;
  for (const [signal, handler] of handlers) process.off(signal, handler);
  stopWaking();
  logger.info("stopped", { exit_code: code });
  return code;
}

/**
 * In a worker other than 0: tells the delivering worker (through the supervisor) that the outbox has
 * something new. At most one signal per turn of the event loop, however many calls were accepted in
 * it; none once the supervisor is gone (the parent is then another process, which must not get it).
 *
 * @example
 * const wake = wakeDeliveringWorker();
 * wake(); // after each outbox add
 */
export function wakeDeliveringWorker(): () => void {
  const supervisorPid = process.ppid;
  let pending = false;
  return () => {
    if (pending) return;
    pending = true;
    setImmediate(() => {
      pending = false;
      if (process.ppid === supervisorPid) sendWakeSignal(supervisorPid);
    });
  };
}

/**
 * In a worker: stops the process (through `stop`) once its supervisor is gone, so that a killed
 * supervisor never leaves workers holding the port. Checks the parent pid once a second.
 *
 * @example
 * exitWhenOrphaned(() => process.kill(process.pid, "SIGTERM"));
 */
export function exitWhenOrphaned(stop: () => void, intervalMs = 1_000): void {
  const supervisorPid = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === supervisorPid) return;
    clearInterval(timer);
    stop();
  }, intervalMs);
  // The check alone must not keep a stopping worker alive.
  timer.unref?.();
}

/** A port that is free right now on `host`, for workers that must all bind the same one. */
async function findFreePort(host: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, host, () => {
      const address = probe.address();
      const port = typeof address === "object" && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}
