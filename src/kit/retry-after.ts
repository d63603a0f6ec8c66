/**
 * Reads `Retry-After` (seconds or an HTTP date) into milliseconds from `now`; undefined when it is neither.
 *
 * @example
 * parseRetryAfter("3"); // 3000
 */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
