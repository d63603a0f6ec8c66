/**
 * What a call ends in: the HTTP answer to epilot plus what the call log needs. Every stage returns
 * one of these; only the server turns it into a Response.
 */
export interface CallAnswer {
  readonly status: number;
  readonly body: unknown;
  /** One word for logs and metrics: `delivered`, `skipped`, `target_failed`, ... */
  readonly outcome: CallOutcome;
  /** Extra log fields (target status and time, error details safe for logs). */
  readonly log?: Readonly<Record<string, unknown>>;
}

export type CallOutcome =
  | "delivered"
  | "accepted"
  | "skipped"
  | "unauthorized"
  | "key_unavailable"
  | "replayed"
  | "too_large"
  | "forbidden"
  | "headers_too_large"
  | "body_timeout"
  | "overloaded"
  | "bad_request"
  | "unknown_route"
  | "transform_failed"
  | "skip_when_failed"
  | "target_failed"
  | "target_unreachable"
  | "target_timeout"
  | "circuit_open"
  | "rate_limited"
  | "store_unavailable"
  | "internal_error";

/** epilot shows `error_reason` in the workflow; keep it short, human and free of hosts and secrets. */
export const EPILOT_ERROR_CODE = "CUSTOM_ACTION_ERROR";

/**
 * Builds a failure answer in epilot's error shape:
 * `{"error_output": {"error_code": "CUSTOM_ACTION_ERROR", "error_reason": "...", "error_info": {...}}}`.
 *
 * @example
 * failure(504, "target_timeout", "ERP did not answer within 10s", { route: "erp" });
 */
export function failure(
  status: number,
  outcome: CallOutcome,
  reason: string,
  info: Record<string, unknown> = {},
  log?: Record<string, unknown>,
): CallAnswer {
  return {
    status,
    outcome,
    body: { error_output: { error_code: EPILOT_ERROR_CODE, error_reason: reason, error_info: { ...info, outcome } } },
    ...(log ? { log } : {}),
  };
}
