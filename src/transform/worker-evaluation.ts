/**
 * What an expression worker does with one task (expression-worker.ts is the thread's entry, the
 * pool in expression-pool.ts the other side). Kept apart from the entry so that it can be tested
 * in the calling thread.
 *
 * Both directions carry JSON text: the task is one string (Bun posts a string without structured
 * cloning), and the result comes back as JSON text whose size and depth are checked here, in the
 * worker, so that the gateway's thread only ever parses a bounded, shallow value.
 */
import jsonata from "jsonata";
import { exceedsJsonDepth } from "../kit/json-depth.ts";
import { EVALUATION_LIMITS, EvaluationFailure, toEvaluationError } from "./evaluation-error.ts";

/** The worker's entry module, as a path under `src/` (see runtime/worker-thread.ts). */
export const EXPRESSION_WORKER_ENTRY = "transform/expression-worker.ts";

/** One evaluation; sent as JSON text. `input` and `bindings` are absent when undefined. */
export interface EvaluationTask {
  readonly id: number;
  readonly source: string;
  readonly input?: unknown;
  readonly bindings?: Record<string, unknown>;
}

/** The answer to one task; `json` is absent when the expression gave no value. */
export type EvaluationReply =
  | { readonly id: number; readonly ok: true; readonly json?: string }
  | {
      readonly id: number;
      readonly ok: false;
      readonly message: string;
      readonly code?: string;
      readonly position?: number;
    };

/**
 * A result larger than this (as JSON text) fails: the gateway's thread would spend long parsing
 * it, and no target takes such a body (`max_response_size` defaults to 10 MB).
 */
export const MAX_RESULT_JSON_LENGTH = 16 * 1024 * 1024;

/**
 * A result nested deeper fails: the gateway walks results recursively (JSON.stringify, the SOAP
 * envelope). Far above what a payload may hold (`server.max_json_depth`, at most 1000).
 */
export const MAX_RESULT_DEPTH = 1_000;

/** Expressions compiled in this worker, by source; a reload brings new ones, so the oldest go. */
const MAX_COMPILED = 500;
const compiled = new Map<string, jsonata.Expression>();

function compiledExpression(source: string): jsonata.Expression {
  let expression = compiled.get(source);
  if (expression) {
    // Most recently used last: the first key is the one to drop.
    compiled.delete(source);
  } else {
    expression = jsonata(source, EVALUATION_LIMITS);
    if (compiled.size >= MAX_COMPILED) compiled.delete(compiled.keys().next().value!);
  }
  compiled.set(source, expression);
  return expression;
}

/**
 * Evaluates one task and never throws: every failure is a reply, its message stripped of payload
 * values as in the gateway's thread.
 *
 * @example
 * await evaluateTask({ id: 1, source: "$uppercase(a)", input: { a: "x" } }); // { id: 1, ok: true, json: '"X"' }
 */
export async function evaluateTask(task: EvaluationTask): Promise<EvaluationReply> {
  let result: unknown;
  try {
    result = await compiledExpression(task.source).evaluate(task.input, task.bindings);
  } catch (error) {
    const failure = toEvaluationError(error);
    return {
      id: task.id,
      ok: false,
      message: failure.message,
      ...(failure.code !== undefined ? { code: failure.code } : {}),
      ...(failure.position !== undefined ? { position: failure.position } : {}),
    };
  }
  let json: string | undefined;
  try {
    json = JSON.stringify(result);
  } catch {
    // Nested past the engine's stack (a `$reduce` builds that without recursion), or past the
    // longest string the engine can make.
    return tooLarge(task.id, "the result cannot be turned into JSON (too large, nested too deep, or not data)");
  }
  if (json === undefined) return { id: task.id, ok: true };
  if (json.length > MAX_RESULT_JSON_LENGTH)
    return tooLarge(task.id, `the result is larger than ${MAX_RESULT_JSON_LENGTH / 1024 / 1024} MB as JSON`);
  if (exceedsJsonDepth(json, MAX_RESULT_DEPTH))
    return tooLarge(task.id, `the result is nested deeper than ${MAX_RESULT_DEPTH} levels`);
  return { id: task.id, ok: true, json };
}

function tooLarge(id: number, message: string): EvaluationReply {
  return { id, ok: false, message, code: EvaluationFailure.resultTooLarge };
}
