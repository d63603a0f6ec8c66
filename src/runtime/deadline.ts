/**
 * A deadline to race work against. The timer never keeps the process alive by itself, and `clear()`
 * stops it once the race is decided, so that finished work leaves no timer behind.
 *
 * @example
 * const deadline = startDeadline(10_000);
 * try {
 *   const result = await Promise.race([work(), deadline.expired]);
 *   if (result === "timeout") return tooSlow();
 * } finally {
 *   deadline.clear();
 * }
 */
export interface Deadline {
  /** Resolves with "timeout" when the time is up; never rejects. */
  readonly expired: Promise<"timeout">;
  clear(): void;
}

export function startDeadline(ms: number): Deadline {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), ms);
    // Bun and Node return a Timeout with unref(); under Deno a number, whose timers stop nothing at exit anyway.
    (timer as { unref?: () => void }).unref?.();
  });
  return { expired, clear: () => clearTimeout(timer) };
}
