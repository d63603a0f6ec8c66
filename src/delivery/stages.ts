import { decodeJwt } from "jose";
import type { EpilotCallbacks, EpilotCallOutcome } from "../epilot/types.ts";
import type { Logger } from "../log/logger.ts";
import type { AttemptRecord, OutboxEvent, OutboxStage } from "../store/types.ts";
import type { TargetResponse } from "../targets/types.ts";
import { noopTracer, type TraceLogFields, type Tracer, type TraceSpan } from "../telemetry/tracer.ts";
import { targetSide } from "./attempt-answer.ts";
import {
  canResume,
  messageOfEvent,
  nextStage,
  type OutboxEventData,
  type OutboxEventSecrets,
  readEventData,
  readEventSecrets,
  UnreadableEventError,
} from "./outbox-event.ts";
import { reportsFailure } from "./response-rules.ts";
import { classifyFailure, recordOutcome } from "./retry-policy.ts";
import type { Route } from "./route.ts";
import type { DeliveryObserver } from "./sync.ts";

/** What one attempt at an event's current stage decided; the engine records it in the store. */
export type StepResult =
  /** The stage succeeded: the event moves on to `next`, or is done. */
  | { readonly kind: "done"; readonly attempt: AttemptRecord; readonly next?: OutboxStage; readonly stageData?: string }
  /** The attempt failed and counts; another follows after the backoff (or the dead letters, when none is left). */
  | { readonly kind: "retry"; readonly attempt: AttemptRecord; readonly retryAfterMs?: number }
  /** Failed for good: to the dead letters at once. */
  | { readonly kind: "dead"; readonly attempt: AttemptRecord; readonly reason: string }
  /**
   * Not attempted: the target's breaker is open, or its rate limit had no turn free within
   * `max_wait`. Try again at `until`; no attempt is spent.
   */
  | { readonly kind: "postpone"; readonly until: number; readonly reason: "circuit_open" | "rate_limited" };

/** What the stages call out to, besides the route's own target. */
export interface StageContext {
  readonly epilot: EpilotCallbacks;
  readonly logger: Logger;
  readonly observer?: DeliveryObserver | undefined;
  readonly now: () => number;
  /**
   * Traces each attempt: a span named after the stage, in the trace the event was accepted in
   * (`data.trace`), holding the requests to the target or to epilot. None when absent.
   */
  readonly tracer?: Tracer | undefined;
}

/**
 * What {@link runStage} returns: the decision, and when the attempt's span was recorded its
 * `trace_id` and `span_id`, for the log line the engine writes about it.
 */
export type StageResult = StepResult & { readonly traceLog?: TraceLogFields };

/**
 * Runs one attempt at `event`'s current stage (deliver, write-back or resume) on `route`, with the
 * event's decrypted `secret` (tokens, forwarded headers), and says
 * what it decided. Touches no store: the caller records the result, so the stages can be tested
 * with a target and epilot stand-ins alone. Every error an attempt can raise ends in a result that
 * counts (an unexpected one is a `retry` with outcome `internal_error`), so every event ends
 * delivered or dead-lettered within `max_attempts`. With a tracer, the attempt is a span of the
 * trace the event was accepted in, and its log lines carry that span's ids.
 *
 * @example
 * const result = await runStage(event, outbox.secretOf(event), route, { epilot, logger, now: Date.now });
 * if (result.kind === "retry") await outbox.retryLater(event.id, result.attempt, later);
 */
export async function runStage(
  event: OutboxEvent,
  secret: string | undefined,
  route: Route,
  context: StageContext,
): Promise<StageResult> {
  const at = context.now();
  let data: OutboxEventData;
  try {
    data = readEventData(event);
  } catch (error) {
    if (!(error instanceof UnreadableEventError)) throw error;
    return dead(at, event.stage, "unreadable", error.message);
  }
  const secrets = readEventSecrets(secret);
  const tracer = context.tracer ?? noopTracer;
  const span = tracer.startSpan(
    event.stage,
    "internal",
    data.trace,
    tracer.enabled
      ? {
          "actiongate.route": route.name,
          "actiongate.webhook_id": event.id,
          "actiongate.stage": event.stage,
          "actiongate.attempt": event.attempts + 1,
        }
      : undefined,
  );
  const input: StageAttempt = { event, route, data, secrets, context, at, span };
  if (!span.recording) return attempt(input);
  const result = await attempt({ ...input, context: { ...context, logger: context.logger.child(span.logFields) } });
  recordDecision(span, result, event.attempts + 1 >= route.delivery.maxAttempts);
  span.end();
  return { ...result, traceLog: span.logFields };
}

/** The attempt's decision on its span: what the engine will do, and why when it failed. */
function recordDecision(span: TraceSpan, result: StepResult, lastAttempt: boolean): void {
  // The engine buries a failed last attempt: the span says so instead of "retry".
  const decision = result.kind === "retry" && lastAttempt ? "dead" : result.kind;
  if (result.kind === "postpone") {
    span.setAttributes({ "actiongate.decision": decision, "actiongate.outcome": result.reason });
    return;
  }
  span.setAttributes({
    "actiongate.decision": decision,
    "actiongate.outcome": result.attempt.outcome,
    "actiongate.target_status": result.attempt.status,
    "actiongate.next_stage": result.kind === "done" ? result.next : undefined,
  });
  if (decision === "retry" || decision === "dead") span.fail(result.attempt.error ?? result.attempt.outcome);
}

/** One attempt at an event's stage: what every stage reads. */
interface StageAttempt {
  readonly event: OutboxEvent;
  readonly route: Route;
  readonly data: OutboxEventData;
  readonly secrets: OutboxEventSecrets;
  readonly context: StageContext;
  /** When the attempt started: the time its record carries. */
  readonly at: number;
  /** The attempt's span: the requests the stage makes are spans inside it. */
  readonly span: TraceSpan;
}

async function attempt(input: StageAttempt): Promise<StepResult> {
  const { event, route, context, at } = input;
  try {
    switch (event.stage) {
      case "deliver":
        return await deliverStage(input);
      case "write_back":
        return await writeBackStage(input);
      case "resume":
        return await resumeStage(input);
    }
  } catch (error) {
    // A bug or an environment failure inside an attempt: it counts like any failed attempt, so the
    // event cannot circle for ever with its attempts at 0.
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    context.logger.error("attempt failed unexpectedly", {
      route: route.name,
      webhook_id: event.id,
      stage: event.stage,
      error: message,
    });
    return {
      kind: "retry",
      attempt: { at, stage: event.stage, outcome: "internal_error", error: message.slice(0, 300) },
    };
  }
}

function dead(at: number, stage: OutboxStage, outcome: string, reason: string, status?: number): StepResult {
  return {
    kind: "dead",
    attempt: { at, stage, outcome, error: reason, ...(status !== undefined ? { status } : {}) },
    reason,
  };
}

async function deliverStage({ event, route, data, secrets, context, at, span }: StageAttempt): Promise<StepResult> {
  // An open breaker pauses delivery without spending the event's attempts.
  if (!route.breaker.tryPass()) return { kind: "postpone", until: route.breaker.retryAt, reason: "circuit_open" };
  const started = performance.now();
  const outcome = await route.target.deliver(messageOfEvent(event, data, secrets), span);
  recordOutcome(route.breaker, outcome);
  // Held back by the target's rate limit: nothing was sent, so nothing is spent (like an open breaker).
  if (outcome.kind === "held_back") return { kind: "postpone", until: outcome.retryAt, reason: "rate_limited" };
  context.observer?.targetAttempt(route.name, (performance.now() - started) / 1000);

  // What the target said and where the request went, for the operator (never for epilot).
  const side = targetSide(outcome);
  if (outcome.kind === "delivered") {
    const status = outcome.response.status;
    let refused: string | undefined;
    try {
      refused = await reportsFailure(route, outcome.response, context.logger);
    } catch {
      refused = "response.fail_when failed to evaluate";
    }
    if (refused) {
      return {
        kind: "dead",
        attempt: { at, stage: "deliver", outcome: "target_failed", error: refused, status, ...side },
        reason: refused,
      };
    }
    const next = nextStage("deliver", route, canResume(data, secrets));
    return {
      kind: "done",
      attempt: { at, stage: "deliver", outcome: "delivered", status, ...side },
      ...(next ? { next, stageData: JSON.stringify(outcome.response) } : {}),
    };
  }
  const failure = classifyFailure(outcome);
  const outcomeName =
    outcome.kind === "rejected"
      ? "target_failed"
      : outcome.kind === "timeout"
        ? "target_timeout"
        : outcome.kind === "unreachable"
          ? "target_unreachable"
          : "bad_request";
  const attempt: AttemptRecord = {
    at,
    stage: "deliver",
    outcome: outcomeName,
    error: failure.reason,
    ...(failure.status !== undefined ? { status: failure.status } : {}),
    ...side,
  };
  if (!failure.retry) return { kind: "dead", attempt, reason: `the target refused the event: ${failure.reason}` };
  return {
    kind: "retry",
    attempt,
    ...(failure.retryAfterMs !== undefined ? { retryAfterMs: failure.retryAfterMs } : {}),
  };
}

async function writeBackStage({ event, route, data, secrets, context, at, span }: StageAttempt): Promise<StepResult> {
  if (!route.response.writeBack) {
    return afterStage("write_back", route, data, secrets, { at, stage: "write_back", outcome: "skipped" });
  }
  if (!data.entity) {
    return dead(
      at,
      "write_back",
      "write_back_impossible",
      "the payload has no data.entity._schema and _id to write back to",
    );
  }
  const token = secrets.epilotToken;
  if (!token)
    return dead(
      at,
      "write_back",
      "write_back_impossible",
      "the call carried no x-epilot-token, which write-back needs",
    );
  const expiry = tokenExpiry(token);
  if (expiry !== undefined && expiry <= at) {
    return dead(
      at,
      "write_back",
      "token_expired",
      `x-epilot-token expired at ${new Date(expiry).toISOString()}; write-back needs a new call from epilot`,
    );
  }

  let response: TargetResponse | undefined;
  try {
    response = event.stageData ? (JSON.parse(event.stageData) as TargetResponse) : undefined;
  } catch {
    response = undefined;
  }
  let patch: unknown;
  try {
    patch = await route.response.writeBack.evaluate({ ...response, payload: data.payload });
  } catch (error) {
    return dead(at, "write_back", "transform_failed", `response.write_back failed: ${(error as Error).message}`);
  }
  if (patch === null || typeof patch !== "object" || Array.isArray(patch)) {
    return dead(at, "write_back", "transform_failed", "response.write_back did not produce an object to write");
  }
  const outcome = await context.epilot.writeBack(data.entity, patch as Record<string, unknown>, token, span);
  return fromEpilotOutcome(outcome, "write_back", route, data, secrets, at);
}

async function resumeStage({ route, data, secrets, context, at, span }: StageAttempt): Promise<StepResult> {
  if (!data.callbackUrl || !secrets.resumeToken) {
    return afterStage("resume", route, data, secrets, { at, stage: "resume", outcome: "skipped" });
  }
  const outcome = await context.epilot.resume(data.callbackUrl, secrets.resumeToken, span);
  return fromEpilotOutcome(outcome, "resume", route, data, secrets, at);
}

function fromEpilotOutcome(
  outcome: EpilotCallOutcome,
  stage: OutboxStage,
  route: Route,
  data: OutboxEventData,
  secrets: OutboxEventSecrets,
  at: number,
): StepResult {
  const status = "status" in outcome && outcome.status !== undefined ? { status: outcome.status } : {};
  switch (outcome.kind) {
    case "ok":
      return afterStage(stage, route, data, secrets, {
        at,
        stage,
        outcome: stage === "resume" ? "resumed" : "written_back",
        ...status,
      });
    case "retry":
      return {
        kind: "retry",
        attempt: { at, stage, outcome: `${stage}_failed`, error: outcome.reason, ...status },
        ...(outcome.retryAfterMs !== undefined ? { retryAfterMs: outcome.retryAfterMs } : {}),
      };
    case "fatal":
      return {
        kind: "dead",
        attempt: { at, stage, outcome: `${stage}_failed`, error: outcome.reason, ...status },
        reason: outcome.reason,
      };
    case "refused":
      return {
        kind: "dead",
        attempt: { at, stage, outcome: `${stage}_refused`, error: outcome.reason },
        reason: outcome.reason,
      };
  }
}

function afterStage(
  stage: OutboxStage,
  route: Route,
  data: OutboxEventData,
  secrets: OutboxEventSecrets,
  attempt: AttemptRecord,
): StepResult {
  const next = nextStage(stage, route, canResume(data, secrets));
  return { kind: "done", attempt, ...(next ? { next } : {}) };
}

/** When epilot's token expires (ms since epoch), read from its `exp` claim without verifying it. */
function tokenExpiry(token: string): number | undefined {
  try {
    const exp = decodeJwt(token).exp;
    return typeof exp === "number" ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}
