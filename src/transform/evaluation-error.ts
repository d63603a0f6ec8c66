/**
 * What an expression's failure looks like once it leaves JSONata, in the gateway's own thread or in
 * an expression worker (see expression-pool.ts): a message without payload values, JSONata's code,
 * or one of actiongate's codes below.
 */

/** How long one evaluation may run; the worker running it is stopped at this limit. */
export const EXPRESSION_TIME_LIMIT_MS = 2_000;

/**
 * JSONata's own guards, checked between its evaluation steps: the time limit (a worker also gets
 * stopped from outside, which this cannot do: a native call such as a regex is one step) and the
 * depth of recursion (`$f := function($n){ $n + $f($n) }` fails with D1011 long before it could run long).
 */
export const EVALUATION_LIMITS = { timeout: EXPRESSION_TIME_LIMIT_MS, stack: 500 } as const;

/** actiongate's codes for a failed evaluation, beside JSONata's own (`D3030`, `T2009`, ...). */
export const EvaluationFailure = {
  /** Ran longer than {@link EXPRESSION_TIME_LIMIT_MS} and was stopped (JSONata's D1012 included). */
  timeout: "timeout",
  /** No expression worker became free within the time limit, or too many evaluations were waiting. */
  busy: "busy",
  /** The result is larger than an answer may be, or nested too deep to be handled safely. */
  resultTooLarge: "result_too_large",
  /** The expression worker could not start or broke down. */
  workerFailed: "worker_failed",
  /** The gateway is shutting down. */
  closed: "closed",
} as const;

/** A JSONata error raised while evaluating, stripped of payload values so it can be logged and answered. */
export class ExpressionEvaluationError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
    readonly position: number | undefined,
  ) {
    super(message);
    this.name = "ExpressionEvaluationError";
  }
}

interface JsonataErrorShape {
  code?: string;
  position?: number;
  message?: string;
  value?: unknown;
  value2?: unknown;
}

/** The error for an evaluation stopped at the time limit, wherever it was stopped. */
export function timeoutError(limitMs: number = EXPRESSION_TIME_LIMIT_MS): ExpressionEvaluationError {
  return new ExpressionEvaluationError(
    `the expression ran longer than ${limitMs} ms and was stopped`,
    EvaluationFailure.timeout,
    undefined,
  );
}

/**
 * JSONata puts the offending values (`value`, and `value2` for comparisons) into its message,
 * JSON-encoded; either may be a secret from the payload.
 *
 * @example
 * toEvaluationError({ code: "D3030", message: 'Unable to cast value to a number: "s3cr3t"', value: "s3cr3t" });
 * // ExpressionEvaluationError("Unable to cast value to a number: <value>", "D3030")
 */
export function toEvaluationError(error: unknown): ExpressionEvaluationError {
  const shape = (error ?? {}) as JsonataErrorShape;
  // JSONata's own time limit (checked between its steps) is the same limit: one code for both.
  if (shape.code === "D1012") return timeoutError(typeof shape.value === "number" ? shape.value : undefined);
  let message = shape.message ?? "evaluation failed";
  for (const value of [shape.value, shape.value2]) {
    if (value === undefined || value === null) continue;
    // The JSON form when the message has it (a string's raw form would miss escaped quotes and
    // backslashes); the raw form otherwise.
    const json = safeJson(value);
    const text = json && message.includes(json) ? json : typeof value === "string" ? value : json;
    if (text) message = message.split(text).join("<value>");
  }
  return new ExpressionEvaluationError(message, shape.code, shape.position);
}

function safeJson(value: unknown): string | undefined {
  try {
    return JSON.stringify(value);
  } catch {
    return undefined;
  }
}
