import type { Logger } from "../log/logger.ts";
import type { ParsedCall } from "../payload/parse.ts";
import type { CompiledRoute } from "../routing/route.ts";
import type { OutboundMessage, TargetOutcome, TargetResponse } from "../targets/types.ts";
import { ExpressionEvaluationError } from "../transform/expression.ts";
import { stripPaths } from "../transform/strip.ts";
import { formatDuration } from "../config/units.ts";
import { failure, type CallAnswer } from "./answer.ts";

/**
 * Delivers one parsed call through its route and waits for the target: strip, skip_when,
 * transform, deliver, then read the answer (`fail_when`, `error_reason`, `response.transform`).
 *
 * @example
 * const answer = await deliverSync(parsed, route, logger);
 * // { status: 200, body: {}, outcome: "delivered" }
 */
export async function deliverSync(parsed: ParsedCall, route: CompiledRoute, logger: Logger): Promise<CallAnswer> {
  const info = { route: route.name };
  const stripped = stripPaths(parsed.payload, route.strip);

  let body: unknown = stripped;
  try {
    if (route.skipWhen && isTrue(await route.skipWhen.evaluate(stripped))) {
      const reason = route.skipReason ? await route.skipReason.evaluate(stripped) : undefined;
      return { status: 200, outcome: "skipped", body: { skip_reason: typeof reason === "string" && reason ? reason : `skipped by route ${route.name}` } };
    }
    if (route.transform) body = await route.transform.evaluate(stripped);
  } catch (error) {
    return transformFailure(error, route, "transform", logger);
  }
  if (body === undefined) {
    return failure(400, "bad_request", `The transform of route ${route.name} produced no value for this payload`, info);
  }

  const message: OutboundMessage = {
    body,
    payload: stripped,
    webhookId: parsed.call.webhookId,
    forwardedHeaders: pickHeaders(parsed.call.headers, route.forwardHeaders),
  };
  const started = performance.now();
  const outcome = await route.target.deliver(message);
  const targetMs = Math.round(performance.now() - started);
  return interpretOutcome(outcome, route, { ...info, target_ms: targetMs }, logger);
}

/** Turns a target's outcome into epilot's answer, applying the route's `response` expressions. */
export async function interpretOutcome(
  outcome: TargetOutcome,
  route: CompiledRoute,
  log: Record<string, unknown>,
  logger: Logger,
): Promise<CallAnswer> {
  const info = { route: route.name };
  switch (outcome.kind) {
    case "invalid_message":
      return failure(400, "bad_request", `Route ${route.name} cannot send this payload: ${outcome.reason}`, info, log);
    case "timeout":
      return failure(504, "target_timeout", `The target of route ${route.name} did not answer within ${formatDuration(outcome.timeoutMs)}`, info, log);
    case "unreachable":
      return failure(502, "target_unreachable", `The target of route ${route.name} could not be reached: ${outcome.reason}`, info, {
        ...log,
        target_error: outcome.code ?? outcome.reason,
      });
    case "rejected": {
      const reason = await customErrorReason(route, outcome.response, logger);
      return failure(502, "target_failed", reason ?? `The target of route ${route.name} failed: ${outcome.reason}`, { ...info, ...outcome.info }, {
        ...log,
        target_status: outcome.response.status,
      });
    }
    case "delivered": {
      const answerLog = { ...log, target_status: outcome.response.status };
      const response = outcome.response;
      try {
        if (route.response.failWhen && isTrue(await route.response.failWhen.evaluate(response))) {
          const reason = await customErrorReason(route, response, logger);
          return failure(502, "target_failed", reason ?? `The target of route ${route.name} reported a failure`, {
            ...info,
            target_status: response.status,
          }, answerLog);
        }
        const body = route.response.transform ? await route.response.transform.evaluate(response) : {};
        return { status: 200, outcome: "delivered", body: body ?? {}, log: answerLog };
      } catch (error) {
        return transformFailure(error, route, "response", logger, answerLog);
      }
    }
  }
}

async function customErrorReason(route: CompiledRoute, response: TargetResponse, logger: Logger): Promise<string | undefined> {
  if (!route.response.errorReason) return undefined;
  try {
    const reason = await route.response.errorReason.evaluate(response);
    if (reason === undefined || reason === null || reason === "") return undefined;
    return (typeof reason === "string" ? reason : JSON.stringify(reason)).slice(0, 1000);
  } catch (error) {
    logExpressionError(logger, route, "response.error_reason", error);
    return undefined;
  }
}

function transformFailure(error: unknown, route: CompiledRoute, stage: string, logger: Logger, log?: Record<string, unknown>): CallAnswer {
  logExpressionError(logger, route, stage, error);
  const code = error instanceof ExpressionEvaluationError ? error.code : undefined;
  return failure(500, "transform_failed", `The ${stage} expression of route ${route.name} failed${code ? ` (JSONata ${code})` : ""}`, { route: route.name }, log);
}

function logExpressionError(logger: Logger, route: CompiledRoute, stage: string, error: unknown): void {
  if (!(error instanceof ExpressionEvaluationError)) throw error;
  logger.error("expression failed", { route: route.name, stage, jsonata_code: error.code, position: error.position, error: error.message });
}

function isTrue(value: unknown): boolean {
  return value === true;
}

function pickHeaders(headers: Headers, names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of names) {
    const value = headers.get(name);
    if (value !== null) out[name] = value;
  }
  return out;
}
