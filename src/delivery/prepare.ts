import type { Logger } from "../log/logger.ts";
import type { ParsedInput } from "../payload/parse.ts";
import { OutboundMessage } from "../targets/message.ts";
import { noopSpan, type TraceSpan } from "../telemetry/tracer.ts";
import { ExpressionEvaluationError } from "../transform/expression.ts";
import { type ShapeResult, shapePayload } from "../transform/shaping.ts";
import { type CallAnswer, failure } from "./answer.ts";
import type { Route } from "./route.ts";

/** The message for the target, or the answer to give epilot instead; `shaped` says what the shaping did (for explain). */
export type PreparedMessage =
  | { ok: true; message: OutboundMessage; shaped: ShapeResult }
  | { ok: false; answer: CallAnswer; shaped: ShapeResult };

/**
 * Everything a route does before its target is called, the same for sync and async delivery and for
 * calls and polled messages: strip, `skip_when`, `transform`, and the headers the route forwards (a
 * call's only: a polled message has none). Failures and skips come back as the answer to give epilot
 * (the poll source reads its outcome and reason instead). With tracing on, it is the `transform` span
 * inside `trace`.
 *
 * @example
 * const prepared = await prepareMessage(parsed, route, logger);
 * if (!prepared.ok) return prepared.answer;
 * await route.target.deliver(prepared.message);
 */
export async function prepareMessage(
  parsed: ParsedInput,
  route: Route,
  logger: Logger,
  trace: TraceSpan = noopSpan,
): Promise<PreparedMessage> {
  const span = trace.child("transform", "internal");
  const prepared = await shapeMessage(parsed, route, logger);
  if (span.recording) {
    const { shaped } = prepared;
    span.setAttributes({ "actiongate.transform.result": shaped.kind });
    if (shaped.kind === "failed") span.fail(`the ${shaped.stage} expression failed (JSONata ${shaped.error.code})`);
    if (shaped.kind === "empty") span.fail("the transform produced no value");
  }
  span.end();
  return prepared;
}

async function shapeMessage(parsed: ParsedInput, route: Route, logger: Logger): Promise<PreparedMessage> {
  const shaped = await shapePayload(parsed.document, route.shaping);
  switch (shaped.kind) {
    case "skipped":
      return {
        ok: false,
        shaped,
        answer: {
          status: 200,
          outcome: "skipped",
          body: { skip_reason: shaped.reason ?? `skipped by route ${route.name}` },
        },
      };
    case "failed":
      return { ok: false, shaped, answer: expressionFailure(shaped.error, route, shaped.stage, logger) };
    case "empty":
      return {
        ok: false,
        shaped,
        answer: failure(400, "bad_request", `The transform of route ${route.name} produced no value for this payload`, {
          route: route.name,
        }),
      };
    case "shaped":
      return {
        ok: true,
        shaped,
        message: OutboundMessage.fromCall(parsed, {
          body: shaped.body,
          payload: shaped.stripped,
          forwardedHeaders: parsed.kind === "call" ? pickHeaders(parsed.call.headers, route.forwardHeaders) : {},
        }),
      };
  }
}

/**
 * A JSONata error at run time: 500 to epilot naming the route and the expression that failed (the
 * config key: `transform`, `skip_when`, `response.transform`, ...), the details (without payload
 * values) in the log.
 */
export function expressionFailure(
  error: unknown,
  route: Pick<Route, "name">,
  stage: string,
  logger: Logger,
  log?: Record<string, unknown>,
): CallAnswer {
  logExpressionError(logger, route, stage, error);
  const code = error instanceof ExpressionEvaluationError ? error.code : undefined;
  const outcome = stage === "skip_when" || stage === "skip_reason" ? "skip_when_failed" : "transform_failed";
  return failure(
    500,
    outcome,
    `The ${stage} expression of route ${route.name} failed${code ? ` (JSONata ${code})` : ""}`,
    { route: route.name, expression: stage },
    log,
  );
}

export function logExpressionError(logger: Logger, route: Pick<Route, "name">, stage: string, error: unknown): void {
  if (!(error instanceof ExpressionEvaluationError)) throw error;
  logger.error("expression failed", {
    route: route.name,
    stage,
    jsonata_code: error.code,
    position: error.position,
    error: error.message,
  });
}

function pickHeaders(headers: Headers, names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of names) {
    const value = headers.get(name);
    if (value !== null) out[name] = value;
  }
  return out;
}
