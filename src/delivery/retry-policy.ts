import { parseRetryAfter } from "../kit/retry-after.ts";
import type { TargetOutcome } from "../targets/types.ts";
import type { CircuitBreaker } from "./circuit-breaker.ts";

export interface BackoffPolicy {
  readonly initialMs: number;
  readonly maxMs: number;
}

/** A Retry-After longer than this is not waited for as such; the backoff maximum still applies after. */
const MAX_RETRY_AFTER_MS = 60 * 60_000;

/**
 * Delay before attempt number `attempt + 1`, exponential with full jitter (a random delay between 0
 * and `initial * 2^(attempt-1)`, capped at `max`): retries of many events spread out instead of
 * hitting a recovering legacy system all at once. A `Retry-After` from the target is honoured.
 *
 * @example
 * nextDelayMs(3, { initialMs: 1_000, maxMs: 300_000 }); // somewhere in [0, 4000)
 */
export function nextDelayMs(
  attempt: number,
  policy: BackoffPolicy,
  retryAfterMs?: number,
  random: () => number = Math.random,
): number {
  const ceiling = delayCeilingMs(attempt, policy);
  const jittered = Math.floor(random() * ceiling);
  if (retryAfterMs !== undefined) return Math.min(Math.max(retryAfterMs, jittered), MAX_RETRY_AFTER_MS);
  return jittered;
}

/**
 * The longest delay {@link nextDelayMs} can choose after attempt number `attempt` failed (without a
 * Retry-After): `initial * 2^(attempt-1)`, capped at `max`. `explain` shows these as the schedule.
 *
 * @example
 * delayCeilingMs(3, { initialMs: 1_000, maxMs: 300_000 }); // 4000
 */
export function delayCeilingMs(attempt: number, policy: BackoffPolicy): number {
  return Math.min(policy.maxMs, policy.initialMs * 2 ** Math.max(0, attempt - 1));
}

export type FailureClass =
  /** Try again later: the target may recover (network, timeout, 408, 429, 5xx). */
  | { retry: true; reason: string; status?: number; retryAfterMs?: number }
  /** Trying again cannot help (other 4xx, a payload the route cannot send): dead letters at once. */
  | { retry: false; reason: string; status?: number };

/**
 * Decides what a failed delivery means for an async event.
 *
 * @example
 * classifyFailure({ kind: "rejected", response: { status: 503, ... }, ... }); // { retry: true, ... }
 */
export function classifyFailure(outcome: Exclude<TargetOutcome, { kind: "delivered" | "held_back" }>): FailureClass {
  switch (outcome.kind) {
    case "timeout":
      return { retry: true, reason: `no answer within ${outcome.timeoutMs}ms` };
    case "unreachable":
      return { retry: true, reason: outcome.reason };
    case "invalid_message":
      return { retry: false, reason: outcome.reason };
    case "rejected": {
      const status = outcome.response.status;
      const retryable = outcome.retryable ?? (status === 408 || status === 429 || status >= 500);
      if (!retryable) return { retry: false, reason: outcome.reason, status };
      const retryAfterMs = parseRetryAfter(outcome.response.headers["retry-after"]);
      return { retry: true, reason: outcome.reason, status, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
    }
  }
}

/**
 * Whether an outcome counts against the target's circuit breaker: the target is failing, not the
 * payload. A token endpoint that fails (`unreachable`, code TOKEN_UNAVAILABLE) counts: the target
 * cannot be called without its token.
 */
export function isTargetFailure(outcome: TargetOutcome): boolean {
  if (outcome.kind === "timeout" || outcome.kind === "unreachable") return true;
  // A target that says a failure is not worth retrying (a SOAP Client fault, sent with HTTP 500) is healthy.
  if (outcome.kind === "rejected")
    return (
      outcome.retryable ??
      (outcome.response.status >= 500 || outcome.response.status === 429 || outcome.response.status === 408)
    );
  return false;
}

/** Tells the target's breaker how a call went; the same for sync calls and async workers. */
export function recordOutcome(breaker: CircuitBreaker, outcome: TargetOutcome): void {
  if (outcome.kind === "held_back") breaker.releasePass();
  else if (isTargetFailure(outcome)) breaker.recordFailure();
  else if (outcome.kind === "delivered") breaker.recordSuccess();
  else breaker.recordNeutral();
}
