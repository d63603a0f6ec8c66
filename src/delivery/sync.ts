import type { Logger } from "../log/logger.ts";
import type { ParsedCall } from "../payload/parse.ts";
import type { OutboundMessage } from "../targets/message.ts";
import type { TargetResponse } from "../targets/types.ts";
import { noopSpan, type TraceSpan } from "../telemetry/tracer.ts";
import { type CallAnswer, failure } from "./answer.ts";
import { prepareMessage } from "./prepare.ts";
import { interpretOutcome } from "./response-rules.ts";
import { recordOutcome } from "./retry-policy.ts";
import type { Route } from "./route.ts";

/** Told how long each delivery attempt took at the target (metrics, traces). */
export interface DeliveryObserver {
  targetAttempt(route: string, seconds: number): void;
}

/** The answer of a sync delivery, and the target's response when it succeeded (for follow-ups). */
export type SyncResult = CallAnswer & { delivered?: { message: OutboundMessage; response: TargetResponse } };

/**
 * Delivers one parsed call through its route and waits for the target: prepare (strip, skip_when,
 * transform), the circuit breaker, deliver (which waits for the target's rate limit up to its
 * `max_wait`: 503 `rate_limited` beyond), then read the answer (`fail_when`, `error_reason`,
 * `response.transform`). With tracing on, the transform and each request to the target are spans
 * inside `trace` (the call's server span).
 *
 * @example
 * const answer = await deliverSync(parsed, route, { logger });
 * // { status: 200, body: {}, outcome: "delivered" }
 */
export async function deliverSync(
  parsed: ParsedCall,
  route: Route,
  context: { readonly logger: Logger; readonly observer?: DeliveryObserver | undefined },
  trace: TraceSpan = noopSpan,
): Promise<SyncResult> {
  const { logger } = context;
  const prepared = await prepareMessage(parsed, route, logger, trace);
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
  const outcome = await route.target.deliver(prepared.message, trace);
  const elapsedMs = performance.now() - started;
  // A call held back by the rate limit never reached the target: no target time to observe.
  if (outcome.kind !== "held_back") context.observer?.targetAttempt(route.name, elapsedMs / 1000);
  recordOutcome(route.breaker, outcome);
  const answer = await interpretOutcome(outcome, route, { target_ms: Math.round(elapsedMs) }, logger);
  if (answer.outcome === "delivered" && outcome.kind === "delivered")
    return { ...answer, delivered: { message: prepared.message, response: outcome.response } };
  return answer;
}
