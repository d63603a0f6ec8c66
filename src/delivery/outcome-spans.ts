import type { MonitoringSpan } from "../epilot/monitoring.ts";
import { type ParsedMessage, POLLED_EVENT_ID_PREFIX } from "../payload/message.ts";
import type { OutboxEvent, OutboxStage } from "../store/types.ts";
import type { CallOutcome } from "./answer.ts";
import { type PolledOrigin, readEventData } from "./outbox-event.ts";
import type { StepResult } from "./stages.ts";

/**
 * The monitoring spans (epilot's External Monitoring Events) of what actiongate did with a call or a
 * polled message. Each span holds fixed words, the route, the stage, the attempt and statuses, never
 * payload content, the target's answer or a host name: it leaves for epilot.
 */

const STAGE_WORDS: Record<OutboxStage, string> = {
  deliver: "delivery to the target",
  write_back: "write-back to the entity",
  resume: "resuming the workflow",
};

/**
 * The span for one attempt the delivery engine recorded: `success` when the stage succeeded,
 * `warning` when it failed and is tried again, `error` when the event went to the dead letters. A
 * postponed attempt (breaker open) was not made and has none.
 *
 * @example
 * const span = spanOfAttempt("erp", result, false, event, "erp_sync");
 * if (span) reporter.report(span);
 */
export function spanOfAttempt(
  route: string,
  result: StepResult,
  deadLettered: boolean,
  event: OutboxEvent,
  useCaseSlug: string,
): MonitoringSpan | undefined {
  if (result.kind === "postpone") return undefined;
  const { attempt } = result;
  const number = event.attempts + 1;
  const stage = STAGE_WORDS[attempt.stage] ?? attempt.stage;
  const status = attempt.status !== undefined ? `, HTTP ${attempt.status}` : "";
  const identity = identityOf(event);
  const detail: Record<string, unknown> = {
    route,
    stage: attempt.stage,
    attempt: number,
    outcome: attempt.outcome,
    ...(attempt.status !== undefined
      ? { [attempt.stage === "deliver" ? "target_status" : "status"]: attempt.status }
      : {}),
    ...(result.kind === "done" && result.next ? { next_stage: result.next } : {}),
    ...originDetail(identity.origin),
  };
  const level: MonitoringSpan["level"] = deadLettered ? "error" : result.kind === "done" ? "success" : "warning";
  const message =
    level === "success"
      ? `${capitalised(stage)} done on route ${route} (${attempt.outcome}${status})`
      : level === "warning"
        ? `Attempt ${number} at ${stage} failed on route ${route} (${attempt.outcome}${status}); it is tried again`
        : `Gave up ${stage} on route ${route} after ${number} attempt${number === 1 ? "" : "s"} (${attempt.outcome}${status}); moved to the dead letters`;
  return {
    correlation_id: identity.correlationId,
    level,
    use_case_slug: useCaseSlug,
    occurred_at: new Date(attempt.at).toISOString(),
    message,
    detail,
  };
}

/**
 * The span for a custom action call the route answered: a sync delivery's outcome (`success` or
 * `error`), or `info` when an async route stored it. Calls that reached no route's delivery (a bad
 * signature, a replay, a bad payload) have none: they are not part of an operation.
 *
 * @example
 * const span = spanOfCall({ route: "erp", webhookId, outcome: "delivered", status: 200, at: Date.now() }, "erp_sync");
 */
export function spanOfCall(
  call: { route: string; webhookId: string; outcome: CallOutcome; status: number; at: number },
  useCaseSlug: string,
): MonitoringSpan | undefined {
  const level = CALL_LEVELS[call.outcome];
  if (!level) return undefined;
  const message =
    call.outcome === "accepted"
      ? `Accepted by actiongate on route ${call.route}; delivered in the background`
      : call.outcome === "delivered"
        ? `Delivered to the target on route ${call.route}`
        : call.outcome === "skipped"
          ? `Skipped by route ${call.route} (skip_when)`
          : `Delivery failed on route ${call.route} (${call.outcome}); epilot was answered HTTP ${call.status}`;
  return {
    correlation_id: call.webhookId,
    level,
    use_case_slug: useCaseSlug,
    occurred_at: new Date(call.at).toISOString(),
    message,
    detail: { route: call.route, outcome: call.outcome, status: call.status },
  };
}

const CALL_LEVELS: Partial<Record<CallOutcome, MonitoringSpan["level"]>> = {
  accepted: "info",
  delivered: "success",
  skipped: "info",
  target_failed: "error",
  target_unreachable: "error",
  target_timeout: "error",
  circuit_open: "error",
};

/**
 * The span for a polled message the poll source stored: `info`, the first step of its trace.
 *
 * @example
 * reporter.report(spanOfStoredMessage("erp", parsed, Date.now(), "erp_sync"));
 */
export function spanOfStoredMessage(
  route: string,
  parsed: ParsedMessage,
  at: number,
  useCaseSlug: string,
): MonitoringSpan {
  const message = parsed.message;
  return {
    correlation_id: parsed.idempotencyKey,
    level: "info",
    use_case_slug: useCaseSlug,
    occurred_at: new Date(at).toISOString(),
    message: `Leased from epilot and stored by actiongate for route ${route}`,
    detail: {
      route,
      step: "stored",
      source: parsed.source,
      use_case_id: message.use_case_id,
      event_name: message.event_name,
      message_id: message.id,
    },
  };
}

/** The correlation id of an event, and where it came from when it was polled (its data read once, for those only). */
function identityOf(event: Pick<OutboxEvent, "id" | "data">): { correlationId: string; origin?: PolledOrigin } {
  if (!event.id.startsWith(POLLED_EVENT_ID_PREFIX)) return { correlationId: event.id };
  try {
    const data = readEventData(event);
    return { correlationId: data.idempotencyKey ?? event.id, ...(data.origin ? { origin: data.origin } : {}) };
  } catch {
    return { correlationId: event.id };
  }
}

function originDetail(origin: PolledOrigin | undefined): Record<string, unknown> {
  if (!origin) return {};
  return {
    source: origin.source,
    use_case_id: origin.use_case_id,
    event_name: origin.event_name,
    message_id: origin.message_id,
  };
}

function capitalised(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
