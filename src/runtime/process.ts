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
