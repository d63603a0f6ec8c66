import type { TraceSpan } from "../telemetry/tracer.ts";

/**
 * How one call back to epilot (resume, write-back) went, in the terms the delivery engine acts on.
 * Every `reason` is safe to log and to keep in the dead letters: it never holds the
 * x-epilot-token, the resume token or a full URL, at most a host and a path.
 */
export type EpilotCallOutcome =
  /** epilot answered 2xx. */
  | { kind: "ok"; status: number }
  /** Worth another attempt later: network failure, timeout, 408, 429, 5xx. */
  | { kind: "retry"; reason: string; status?: number; retryAfterMs?: number }
  /** Another attempt would fail the same way: other 4xx, an expired token, a patch that is no object. */
  | { kind: "fatal"; reason: string; status?: number }
  /** Not sent at all: the callback URL is not one actiongate may call (`epilot.callback_hosts`). */
  | { kind: "refused"; reason: string };

/**
 * The two calls back to epilot, injectable so that tests and other stores can stand in. `trace` is
 * the attempt's span: each call is a client span inside it.
 */
export interface EpilotCallbacks {
  resume(callbackUrl: string, resumeToken: string, trace?: TraceSpan): Promise<EpilotCallOutcome>;
  writeBack(
    entity: { schema: string; id: string },
    patch: Record<string, unknown>,
    token: string,
    trace?: TraceSpan,
  ): Promise<EpilotCallOutcome>;
  /** Closes the connections to epilot (a reload replaced the config); optional for stand-ins. */
  close?(): Promise<void>;
}
