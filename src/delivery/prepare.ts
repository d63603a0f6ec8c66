import type { Logger } from "../log/logger.ts";
import type { ParsedCall } from "../payload/parse.ts";
import type { CompiledRoute } from "../routing/route.ts";
import type { OutboundMessage } from "../targets/types.ts";
import { ExpressionEvaluationError } from "../transform/expression.ts";
import { stripPaths } from "../transform/strip.ts";
import { type CallAnswer, failure } from "./answer.ts";

export type PreparedMessage = { ok: true; message: OutboundMessage } | { ok: false; answer: CallAnswer };

/**
 * Everything a route does before its target is called, the same for sync and async delivery:
 * strip, `skip_when`, `transform`, and the headers the route forwards. Failures and skips come back
 * as the answer to give epilot.
 */
export async function prepareMessage(
  parsed: ParsedCall,
  route: CompiledRoute,
  logger: Logger,
): Promise<PreparedMessage> {
  const stripped = stripPaths(parsed.payload, route.strip);
  let body: unknown = stripped;
  try {
    if (route.skipWhen && (await route.skipWhen.evaluate(stripped)) === true) {
      const reason = route.skipReason ? await route.skipReason.evaluate(stripped) : undefined;
      const text = typeof reason === "string" && reason ? reason : `skipped by route ${route.name}`;
      return { ok: false, answer: { status: 200, outcome: "skipped", body: { skip_reason: text } } };
    }
    if (route.transform) body = await route.transform.evaluate(stripped);
  } catch (error) {
    return { ok: false, answer: expressionFailure(error, route, "transform", logger) };
  }
  if (body === undefined) {
    return {
      ok: false,
      answer: failure(400, "bad_request", `The transform of route ${route.name} produced no value for this payload`, {
        route: route.name,
      }),
    };
  }
  return {
    ok: true,
    message: {
      body,
      payload: stripped,
      webhookId: parsed.call.webhookId,
      forwardedHeaders: pickHeaders(parsed.call.headers, route.forwardHeaders),
    },
  };
}

/** A JSONata error at run time: 500 to epilot, the details (without payload values) in the log. */
export function expressionFailure(
  error: unknown,
  route: CompiledRoute,
  stage: string,
  logger: Logger,
  log?: Record<string, unknown>,
): CallAnswer {
  logExpressionError(logger, route, stage, error);
  const code = error instanceof ExpressionEvaluationError ? error.code : undefined;
  return failure(
    500,
    "transform_failed",
    `The ${stage} expression of route ${route.name} failed${code ? ` (JSONata ${code})` : ""}`,
    { route: route.name },
    log,
  );
}

export function logExpressionError(logger: Logger, route: CompiledRoute, stage: string, error: unknown): void {
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
