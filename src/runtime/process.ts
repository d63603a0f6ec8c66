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
