import jsonata from "jsonata";
import { compileDirectEvaluator, NOT_DIRECT } from "./direct-evaluation.ts";

/**
 * Guards against a transform that never ends (`$f := function(){ $f() }`): JSONata checks these
 * between steps, so one bad expression fails its own call instead of freezing the gateway.
 */
const EVALUATION_LIMITS = { timeout: 2_000, stack: 500 } as const;

/** A JSONata expression compiled once at config load and evaluated per call. */
export interface CompiledExpression {
  readonly source: string;
  evaluate(input: unknown, bindings?: Record<string, unknown>): Promise<unknown>;
}

/** A JSONata syntax error, with the character offset inside the expression. */
export class ExpressionSyntaxError extends Error {
  constructor(
    message: string,
    readonly position: number | undefined,
  ) {
    super(message);
    this.name = "ExpressionSyntaxError";
  }
}

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

/**
 * Compiles a JSONata expression; throws {@link ExpressionSyntaxError} for a syntax error.
 *
 * @example
 * const expr = compileExpression('{ "contract": data.entity.contract_number }');
 * await expr.evaluate(payload); // { contract: "2026-0042" }
 */
export function compileExpression(source: string): CompiledExpression {
  let compiled: jsonata.Expression;
  try {
    compiled = jsonata(source, EVALUATION_LIMITS);
  } catch (error) {
    const shape = error as JsonataErrorShape;
    throw new ExpressionSyntaxError(shape.message ?? String(error), shape.position);
  }
  // Plain field picks skip JSONata's evaluator; the result is the same (see direct-evaluation.ts).
  const direct = compileDirectEvaluator(compiled.ast());
  return {
    source,
    async evaluate(input, bindings) {
      if (direct) {
        const value = direct(input);
        if (value !== NOT_DIRECT) return value;
      }
      try {
        return await compiled.evaluate(input, bindings);
      } catch (error) {
        throw toEvaluationError(error);
      }
    },
  };
}

/**
 * JSONata puts the offending values (`value`, and `value2` for comparisons) into its message,
 * JSON-encoded; either may be a secret from the payload.
 */
function toEvaluationError(error: unknown): ExpressionEvaluationError {
  const shape = (error ?? {}) as JsonataErrorShape;
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
