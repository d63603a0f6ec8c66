import { formatDuration } from "../kit/units.ts";
import { redactUrl } from "../kit/urls.ts";
import type { Logger } from "../log/logger.ts";
import type { TargetOutcome, TargetResponse } from "../targets/types.ts";
import { type CallAnswer, failure } from "./answer.ts";
import { expressionFailure, logExpressionError } from "./prepare.ts";
import type { Route } from "./route.ts";

/** Turns a target's outcome into epilot's answer, applying the route's `response` expressions. */
export async function interpretOutcome(
  outcome: TargetOutcome,
  route: Route,
  log: Record<string, unknown>,
  logger: Logger,
): Promise<CallAnswer> {
  const info = { route: route.name };
  // A failure's log line names where the request went (credentials hidden); epilot's answer never does.
  // (Not for deliveries: the success path stays as lean as it was.)
  if ("url" in outcome && outcome.kind !== "delivered" && outcome.url) {
    log = { ...log, target_url: redactUrl(outcome.url.href) };
  }
  switch (outcome.kind) {
    case "held_back": {
      const seconds = Math.max(1, Math.ceil((outcome.retryAt - Date.now()) / 1000));
      return failure(
        503,
        "rate_limited",
        `The target's rate limit is reached for route ${route.name}; try again in ${seconds}s`,
        { ...info, retry_after_s: seconds },
        log,
      );
    }
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
  route: Route,
  response: TargetResponse,
  logger?: Logger,
): Promise<string | undefined> {
  if (!route.response.failWhen || (await route.response.failWhen.evaluate(response)) !== true) return undefined;
  return (await customErrorReason(route, response, logger)) ?? `The target of route ${route.name} reported a failure`;
}

async function customErrorReason(route: Route, response: TargetResponse, logger?: Logger): Promise<string | undefined> {
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
