import type { Logger } from "../log/logger.ts";
import type { ParsedCall } from "../payload/parse.ts";
import type { OutboxStore } from "../store/types.ts";
import { noopSpan, type TraceSpan } from "../telemetry/tracer.ts";
import { type CallAnswer, failure } from "./answer.ts";
import { orderKeyOf } from "./order-key.ts";
import { buildOutboxEvent, firstFollowUp } from "./outbox-event.ts";
import { prepareMessage } from "./prepare.ts";
import type { Route } from "./route.ts";
import { type DeliveryObserver, deliverSync } from "./sync.ts";

/** What delivering a call needs besides its route. */
export interface DispatchContext {
  readonly outbox: OutboxStore;
  /** Tells the delivery engine that an event was added, so it goes out without waiting for a poll. */
  readonly onEnqueued: () => void;
  readonly logger: Logger;
  readonly observer?: DeliveryObserver | undefined;
}

/**
 * The deliver stage of the request path: a sync route delivers now and answers with the target's
 * outcome (its follow-ups, write-back and resume, go to the outbox after a success); an async route
 * prepares the message now (so epilot hears of a bad payload at once), stores it and answers 202.
 * What is stored remembers `trace` (the call's span), so later attempts are spans of the call's trace.
 *
 * @example
 * const answer = await dispatchCall(parsed, route, { outbox, onEnqueued: () => engine.wake(), logger });
 */
export function dispatchCall(
  parsed: ParsedCall,
  route: Route,
  context: DispatchContext,
  trace: TraceSpan = noopSpan,
): Promise<CallAnswer> {
  return route.delivery.mode === "async"
    ? acceptAsync(parsed, route, context, trace)
    : deliverNow(parsed, route, context, trace);
}

async function acceptAsync(
  parsed: ParsedCall,
  route: Route,
  context: DispatchContext,
  trace: TraceSpan,
): Promise<CallAnswer> {
  const prepared = await prepareMessage(parsed, route, context.logger, trace);
  if (!prepared.ok) return prepared.answer;
  // Rendered now as well (URL and header placeholders, the SOAP envelope), so a payload that cannot
  // be sent is a 400 at once, not a dead letter later. Delivery renders again with the config in force.
  const rendered = await route.target.render(prepared.message);
  if (!rendered.ok) {
    return failure(400, "bad_request", `Route ${route.name} cannot send this payload: ${rendered.reason}`, {
      route: route.name,
    });
  }
  const ordered = await orderKeyOf(parsed, route, prepared.message.payload, context.logger);
  if (!ordered.ok) return ordered.answer;
  try {
    await context.outbox.add(
      buildOutboxEvent(parsed, route, prepared.message, "deliver", Date.now(), undefined, {
        orderKey: ordered.key,
        trace: trace.traceHeaders(),
      }),
    );
  } catch (error) {
    context.logger.error("outbox write failed", {
      route: route.name,
      webhook_id: parsed.id,
      error: (error as Error).message,
    });
    return failure(503, "store_unavailable", "actiongate could not store the call; please retry", {
      route: route.name,
    });
  }
  context.onEnqueued();
  return { status: 202, outcome: "accepted", body: {} };
}

async function deliverNow(
  parsed: ParsedCall,
  route: Route,
  context: DispatchContext,
  trace: TraceSpan,
): Promise<CallAnswer> {
  const { delivered, ...answer } = await deliverSync(parsed, route, context, trace);
  if (!delivered) return answer;
  const stage = firstFollowUp(parsed, route);
  if (!stage) return answer;
  try {
    await context.outbox.add(
      buildOutboxEvent(parsed, route, delivered.message, stage, Date.now(), delivered.response, {
        trace: trace.traceHeaders(),
      }),
    );
    context.onEnqueued();
  } catch (error) {
    // The delivery happened; epilot gets its 200 and the operator a loud log line about the lost follow-up.
    context.logger.error("follow-up could not be stored", {
      route: route.name,
      webhook_id: parsed.id,
      stage,
      error: (error as Error).message,
    });
  }
  return answer;
}
