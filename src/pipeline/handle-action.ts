import { type CallAnswer, failure } from "../delivery/answer.ts";
import { type DispatchContext, dispatchCall } from "../delivery/dispatch.ts";
import type { Route } from "../delivery/route.ts";
import type { Logger } from "../log/logger.ts";
import type { GatewayMetrics } from "../metrics/metrics.ts";
import { type ParsedCall, parseCustomAction } from "../payload/parse.ts";
import type { Router } from "../routing/router.ts";
import { noopSpan, type Tracer, type TraceSpan } from "../telemetry/tracer.ts";
import { checkReplay, releaseReplay } from "../verify/replay-check.ts";
import type { ReplayGuard } from "../verify/replay-guard.ts";
import { type SignatureVerifierOptions, type VerifiedCall, verifySignature } from "../verify/signature.ts";

/** Everything one call's path needs, built once per config (gateway/start.ts). */
export interface ActionPipeline extends DispatchContext {
  readonly verification: SignatureVerifierOptions;
  readonly router: Router<Route>;
  readonly replayGuard: ReplayGuard;
  /** `server.max_json_depth`. */
  readonly maxJsonDepth: number;
  readonly logger: Logger;
  readonly metrics?: Pick<GatewayMetrics, "recordVerificationFailure"> | undefined;
  /** Traces each call (a server span, spans for its stages); none when absent. */
  readonly tracer?: Tracer | undefined;
}

/** The server span's name: the route template (one name for every route), as OpenTelemetry names HTTP server spans. */
const SPAN_NAME_ROUTED = "POST /actions/{route}";
const SPAN_NAME_MATCHED = "POST /actions";

/** The answer to one call, with what its log line names. */
export type ActionAnswer = CallAnswer & { readonly webhookId?: string; readonly route?: string };

/**
 * The request path of one call, after its body has been read within the size limit: verify the
 * signature, claim the webhook-id (replay guard), parse the payload, find the route, deliver.
 * Every outcome is an answer in epilot's shape; a call that did not succeed releases its id, so
 * that epilot's retry is processed. With a tracer, the call is a server span (continuing an
 * incoming `traceparent`) with spans for verification, the transform and each request to the
 * target; its log lines, and the call's own (through `log`), carry the span's `trace_id`.
 *
 * @example
 * const answer = await handleAction(request.headers, body, "erp-contract", pipeline);
 * return Response.json(answer.body, { status: answer.status });
 */
export async function handleAction(
  headers: Headers,
  body: Uint8Array,
  routeName: string | undefined,
  pipeline: ActionPipeline,
): Promise<ActionAnswer> {
  const tracer = pipeline.tracer;
  if (!tracer?.enabled) return handleCall(headers, body, routeName, pipeline, noopSpan);
  const span = tracer.startServerSpan(routeName === undefined ? SPAN_NAME_MATCHED : SPAN_NAME_ROUTED, headers, {
    "http.request.method": "POST",
    "http.route": routeName === undefined ? "/actions" : "/actions/{route}",
  });
  if (!span.recording) {
    // Not sampled: nothing is recorded, but the trace context still goes on to the target.
    try {
      return await handleCall(headers, body, routeName, pipeline, span);
    } finally {
      span.end();
    }
  }
  const traced = { ...pipeline, logger: pipeline.logger.child(span.logFields) };
  try {
    const answer = await handleCall(headers, body, routeName, traced, span);
    span.setAttributes({
      "actiongate.route": answer.route,
      "actiongate.outcome": answer.outcome,
      "actiongate.webhook_id": answer.webhookId,
      "http.response.status_code": answer.status,
    });
    // As for any HTTP server span, only a 5xx is the server's failure; a 4xx is the caller's.
    if (answer.status >= 500) span.fail(`answered ${answer.status} ${answer.outcome}`);
    return { ...answer, log: { ...answer.log, ...span.logFields } };
  } catch (error) {
    span.fail(error instanceof Error ? error.name : "internal error");
    throw error;
  } finally {
    span.end();
  }
}

async function handleCall(
  headers: Headers,
  body: Uint8Array,
  routeName: string | undefined,
  pipeline: ActionPipeline,
  span: TraceSpan,
): Promise<ActionAnswer> {
  const verifySpan = span.child("verify", "internal");
  const verified = await verifySignature({ headers, body }, pipeline.verification);
  if (verifySpan.recording) {
    verifySpan.setAttributes({ "actiongate.verify.result": verified.ok ? "verified" : verified.reason });
    if (!verified.ok) verifySpan.fail(verified.reason);
  }
  verifySpan.end();
  if (!verified.ok) {
    pipeline.metrics?.recordVerificationFailure(verified.reason);
    const status = verified.reason === "key_unavailable" ? 503 : 401;
    const outcome = verified.reason === "key_unavailable" ? "key_unavailable" : "unauthorized";
    return {
      ...failure(status, outcome, `Signature check failed: ${verified.message}`, { reason: verified.reason }),
      log: { reason: verified.reason },
    };
  }
  const call = verified.call;
  const webhookId = call.webhookId;

  const replay = await checkReplay(call, pipeline.replayGuard);
  if (replay.kind === "unavailable") {
    // Fail closed: without the shared replay guard a duplicate could go through; epilot retries a 503.
    pipeline.logger.error("replay guard unavailable", { webhook_id: webhookId, error: replay.error });
    const reason = "actiongate cannot check this webhook-id for replays right now; please retry";
    return { ...failure(503, "store_unavailable", reason), webhookId };
  }
  if (replay.kind === "replayed") {
    const reason = "This webhook-id was already received; the call is not processed twice";
    return { ...failure(409, "replayed", reason, { webhook_id: webhookId }), webhookId };
  }

  let answer: ActionAnswer;
  try {
    answer = await routeAndDeliver(call, routeName, pipeline, span);
  } catch (error) {
    await release(call, pipeline);
    throw error;
  }
  // A call that did not succeed may be retried by epilot with the same id; let the retry through.
  if (answer.status >= 400) await release(call, pipeline);
  return { ...answer, webhookId };
}

/** Forgets the id; when the store is down that fails, and the answer epilot gets must not change for it. */
async function release(call: VerifiedCall, pipeline: ActionPipeline): Promise<void> {
  const error = await releaseReplay(call, pipeline.replayGuard);
  if (error !== undefined) {
    pipeline.logger.error("replay guard release failed: a retry of this webhook-id within the window gets 409", {
      webhook_id: call.webhookId,
      error,
    });
  }
}

async function routeAndDeliver(
  call: VerifiedCall,
  routeName: string | undefined,
  pipeline: ActionPipeline,
  span: TraceSpan,
): Promise<ActionAnswer> {
  const parsed = parseCustomAction(call, { maxDepth: pipeline.maxJsonDepth });
  if (!parsed.ok) return failure(400, "bad_request", parsed.message);
  return routeAndDispatch(parsed.parsed, routeName, pipeline, span);
}

/**
 * The request path after parsing: find the route (by the name in the path, or the first `match`
 * that holds) and deliver through it. `handleAction` runs it for every verified call; `explain`
 * and `test` run it on a payload file (gateway/local-run.ts), so they answer as the gateway does.
 * `trace` is the call's span (none for explain and test).
 *
 * @example
 * const answer = await routeAndDispatch(parsed, undefined, { router, outbox, onEnqueued, logger });
 */
export async function routeAndDispatch(
  parsed: ParsedCall,
  routeName: string | undefined,
  context: DispatchContext & { readonly router: Router<Route> },
  trace: TraceSpan = noopSpan,
): Promise<ActionAnswer> {
  const route = routeName !== undefined ? context.router.byName(routeName) : context.router.byMatch(parsed);
  if (!route) {
    return routeName !== undefined
      ? failure(404, "unknown_route", `No route named "${routeName}"`)
      : failure(404, "unknown_route", "No route matches this action", {
          component_id: parsed.payload.data.action_config?.component_id,
          action_name: parsed.payload.data.action_config?.name,
        });
  }
  const answer = await dispatchCall(parsed, route, context, trace);
  return { ...answer, route: route.name };
}
