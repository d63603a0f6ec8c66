import jsonata from "jsonata";
import { checkBounded, LINEAR_FUNCTIONS } from "./bounded-expression.ts";
import { compileDirectEvaluator, NOT_DIRECT } from "./direct-evaluation.ts";
import { EVALUATION_LIMITS, toEvaluationError } from "./evaluation-error.ts";
import { sharedExpressionPool } from "./expression-pool.ts";

export { ExpressionEvaluationError } from "./evaluation-error.ts";

/** A JSONata expression compiled once at config load and evaluated per call. */
export interface CompiledExpression {
  readonly source: string;
  /**
   * Where an evaluation runs: `process` when the expression is proven cheap (bounded-expression.ts),
   * `worker` when it runs in a worker thread that is stopped at the time limit (expression-pool.ts).
   */
  readonly runsIn: "process" | "worker";
  /**
   * Rejects with an `ExpressionEvaluationError`: JSONata's code, or actiongate's (`timeout` after
   * two seconds, `busy`, ...; see evaluation-error.ts).
   */
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

interface JsonataSyntaxErrorShape {
  position?: number;
  message?: string;
}

/**
 * Compiles a JSONata expression; throws {@link ExpressionSyntaxError} for a syntax error.
 *
 * Three ways to evaluate, the cheapest that fits: plain field picks directly (direct-evaluation.ts,
 * about 1 µs), expressions proven linear in their input with JSONata in this thread (about 10 µs),
 * everything else in a worker thread with a hard deadline (a round trip of tens of µs).
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
    const shape = error as JsonataSyntaxErrorShape;
    throw new ExpressionSyntaxError(shape.message ?? String(error), shape.position);
  }
  const ast = compiled.ast();
  // Plain field picks skip JSONata's evaluator; the result is the same (see direct-evaluation.ts).
  const direct = compileDirectEvaluator(ast);
  const bounds = checkBounded(ast);
  const inProcess = (input: unknown, bindings: Record<string, unknown> | undefined): boolean =>
    bounds.bounded && !(bounds.needsObjectInput && Array.isArray(input)) && !shadowsBuiltIn(bindings);
  return {
    source,
    runsIn: bounds.bounded ? "process" : "worker",
    async evaluate(input, bindings) {
      if (direct) {
        const value = direct(input);
        if (value !== NOT_DIRECT) return value;
      }
      if (!inProcess(input, bindings)) return sharedExpressionPool().evaluate(source, input, bindings);
      try {
        return await compiled.evaluate(input, bindings);
      } catch (error) {
        throw toEvaluationError(error);
      }
    },
  };
}

/** A binding named like a built-in replaces it; the check only knows the built-ins. */
function shadowsBuiltIn(bindings: Record<string, unknown> | undefined): boolean {
  if (bindings === undefined) return false;
  for (const name in bindings) if (LINEAR_FUNCTIONS.has(name)) return true;
  return false;
}
