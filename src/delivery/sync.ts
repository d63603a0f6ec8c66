import { formatDuration } from "../config/units.ts";
import type { Logger } from "../log/logger.ts";
import type { ParsedCall } from "../payload/parse.ts";
import type { CompiledRoute } from "../routing/route.ts";
import type { OutboundMessage, TargetOutcome, TargetResponse } from "../targets/types.ts";
import { type CallAnswer, failure } from "./answer.ts";
import { expressionFailure, logExpressionError, prepareMessage } from "./prepare.ts";
import { recordOutcome } from "./retry-policy.ts";

/** The answer of a sync delivery, and the target's response when it succeeded (for follow-ups). */
export type SyncResult = CallAnswer & { delivered?: { message: OutboundMessage; response: TargetResponse } };

/**
 * Delivers one parsed call through its route and waits for the target: prepare (strip, skip_when,
 * transform), the circuit breaker, deliver, then read the answer (`fail_when`, `error_reason`,
 * `response.transform`).
 *
 * @example
 * const answer = await deliverSync(parsed, route, logger);
 * // { status: 200, body: {}, outcome: "delivered" }
 */
export async function deliverSync(parsed: ParsedCall, route: CompiledRoute, logger: Logger): Promise<SyncResult> {
  const prepared = await prepareMessage(parsed, route, logger);
  if (!prepared.ok) return prepared.answer;
  if (!route.breaker.tryPass()) {
    const seconds = Math.max(1, Math.ceil((route.breaker.retryAt - Date.now()) / 1000));
    return failure(
      503,
      "circuit_open",
      `The target of route ${route.name} keeps failing; calls are paused for ${seconds}s (circuit breaker open)`,
      {
        route: route.name,
        retry_after_s: seconds,
      },
    );
  }
  const started = performance.now();
  const outcome = await route.target.deliver(prepared.message);
  const log = { target_ms: Math.round(performance.now() - started) };
  recordOutcome(route.breaker, outcome);
  const answer = await interpretOutcome(outcome, route, log, logger);
  if (answer.outcome === "delivered" && outcome.kind === "delivered")
    return { ...answer, delivered: { message: prepared.message, response: outcome.response } };
  return answer;
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
      return failure(
        504,
        "target_timeout",
        `The target of route ${route.name} did not answer within ${formatDuration(outcome.timeoutMs)}`,
        info,
        log,
      );
    case "unreachable":
      return failure(
        502,
        "target_unreachable",
        `The target of route ${route.name} could not be reached: ${outcome.reason}`,
        info,
        {
          ...log,
          target_error: outcome.code ?? outcome.reason,
        },
      );
    case "rejected": {
      const reason = await customErrorReason(route, outcome.response, logger);
      return failure(
        502,
        "target_failed",
        reason ?? `The target of route ${route.name} failed: ${outcome.reason}`,
        { ...info, ...outcome.info },
        {
          ...log,
          target_status: outcome.response.status,
        },
      );
    }
    case "delivered": {
      const answerLog = { ...log, target_status: outcome.response.status };
      const response = outcome.response;
      try {
        const failed = await reportsFailure(route, response, logger);
        if (failed) {
          return failure(502, "target_failed", failed, { ...info, target_status: response.status }, answerLog);
        }
        const body = route.response.transform ? await route.response.transform.evaluate(response) : {};
        return { status: 200, outcome: "delivered", body: body ?? {}, log: answerLog };
      } catch (error) {
        return expressionFailure(error, route, "response", logger, answerLog);
      }
    }
  }
}

/**
 * `response.fail_when` over a 2xx answer: the reason text when the legacy system meant it as a
 * failure, undefined otherwise. Shared by sync answers and async workers.
 */
export async function reportsFailure(
  route: CompiledRoute,
  response: TargetResponse,
  logger?: Logger,
): Promise<string | undefined> {
  if (!route.response.failWhen || (await route.response.failWhen.evaluate(response)) !== true) return undefined;
  return (await customErrorReason(route, response, logger)) ?? `The target of route ${route.name} reported a failure`;
}

async function customErrorReason(
  route: CompiledRoute,
  response: TargetResponse,
  logger?: Logger,
): Promise<string | undefined> {
  if (!route.response.errorReason) return undefined;
  try {
    const reason = await route.response.errorReason.evaluate(response);
    if (reason === undefined || reason === null || reason === "") return undefined;
    return (typeof reason === "string" ? reason : JSON.stringify(reason)).slice(0, 1000);
  } catch (error) {
    if (logger) logExpressionError(logger, route, "response.error_reason", error);
    return undefined;
  }
}
