import { parseRetryAfter } from "../kit/retry-after.ts";
import { describeNetworkError } from "../runtime/network-errors.ts";
import type { TraceSpan } from "../telemetry/tracer.ts";
import type { EpilotCallOutcome } from "./types.ts";

/**
 * Classifies epilot's answer to a callback: 2xx ok; 408, 429 and 5xx worth a retry (429 and 503
 * with their `Retry-After`); anything else (other 4xx, a redirect, which is never followed) fatal.
 * `what` names the call by host and path only, e.g. `resume call to automation.sls.epilot.io/v1/...`.
 *
 * @example
 * classifyAnswer(429, "3", "resume call to automation.sls.epilot.io/v1/automation/public/executions:resume");
 * // { kind: "retry", reason: "... answered HTTP 429", status: 429, retryAfterMs: 3000 }
 */
export function classifyAnswer(status: number, retryAfter: string | undefined, what: string): EpilotCallOutcome {
  if (status >= 200 && status < 300) return { kind: "ok", status };
  const reason = `${what} answered HTTP ${status}`;
  if (status === 408 || status === 429 || status >= 500) {
    const retryAfterMs = parseRetryAfter(retryAfter);
    return { kind: "retry", reason, status, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
  }
  if (status >= 300 && status < 400) return { kind: "fatal", reason: `${reason} (redirects are not followed)`, status };
  return { kind: "fatal", reason, status };
}

/**
 * A call that got no answer: the deadline passed or the network failed. Both are worth a retry.
 * The reason names the kind of failure only (`connection refused`), never the error's message,
 * which may quote headers or the URL.
 */
export function classifyNoAnswer(
  error: unknown,
  deadlinePassed: boolean,
  timeoutMs: number,
  what: string,
): EpilotCallOutcome {
  const failure = describeNetworkError(error);
  if (deadlinePassed || failure.isTimeout) return { kind: "retry", reason: `${what} timed out after ${timeoutMs}ms` };
  return { kind: "retry", reason: `${what} failed: ${failure.reason}${failure.code ? ` (${failure.code})` : ""}` };
}

/** `host/path` of a URL, for reasons: no scheme credentials, no query string, no fragment. */
export function describeEndpoint(url: URL): string {
  return `${url.host}${url.pathname}`;
}

/**
 * Ends the client span of a call to epilot with its outcome: epilot's status, and the reason when
 * the call did not succeed (the same text the dead letters keep: host and path, no token).
 *
 * @example
 * const span = trace.child("POST", "client", { "server.address": url.hostname, "actiongate.epilot.call": "resume" });
 * const outcome = classifyAnswer(response.status, response.headers["retry-after"], what);
 * endCallSpan(span, outcome);
 */
export function endCallSpan(span: TraceSpan, outcome: EpilotCallOutcome): void {
  if (span.recording) {
    const status = "status" in outcome ? outcome.status : undefined;
    span.setAttributes({
      "http.response.status_code": status,
      "error.type": outcome.kind === "ok" ? undefined : status !== undefined ? String(status) : outcome.kind,
    });
    if (outcome.kind !== "ok") span.fail(outcome.reason);
  }
  span.end();
}
