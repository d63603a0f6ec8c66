/** Process-level hooks (signals), kept here so that the rest of the code stays runtime-neutral. */

export type ShutdownSignal = "SIGTERM" | "SIGINT";

/** Calls `handler` once on the first SIGTERM or SIGINT; a second signal exits at once. */
export function onShutdownSignal(handler: (signal: ShutdownSignal) => void): void {
  let received = false;
  const listener = (signal: ShutdownSignal) => {
    if (received) process.exit(130);
    received = true;
    handler(signal);
  };
  process.on("SIGTERM", () => listener("SIGTERM"));
  process.on("SIGINT", () => listener("SIGINT"));
}

/**
 * The signal a worker process sends its supervisor, and the supervisor the delivering worker, when an
 * event was added to the shared outbox: "look at the outbox now" (see gateway/workers.ts).
 */
export const WAKE_SIGNAL = "SIGUSR2";

/**
 * Calls `handler` on every {@link WAKE_SIGNAL}; returns a function that stops listening.
 *
 * @example
 * const stop = onWakeSignal(() => engine.wake());
 */
export function onWakeSignal(handler: () => void): () => void {
  const listener = () => handler();
  process.on(WAKE_SIGNAL, listener);
  return () => process.off(WAKE_SIGNAL, listener);
}

/** Sends {@link WAKE_SIGNAL} to `pid`; false when it could not be sent (the process is gone). */
export function sendWakeSignal(pid: number): boolean {
  try {
    process.kill(pid, WAKE_SIGNAL);
    return true;
  } catch {
    return false;
  }
}

/**
 * Calls `handler` on every SIGHUP (reload the config); returns a function that stops listening.
 *
 * @example
 * const stop = onReloadSignal(() => void reloader.reload("SIGHUP"));
 */
export function onReloadSignal(handler: () => void): () => void {
  const listener = () => handler();
  process.on("SIGHUP", listener);
  return () => process.off("SIGHUP", listener);
}
