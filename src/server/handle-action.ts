import type { CompiledConfig } from "../config/compile.ts";
import { type CallAnswer, failure } from "../delivery/answer.ts";
import { buildOutboxEvent, firstFollowUp } from "../delivery/outbox-event.ts";
import { prepareMessage } from "../delivery/prepare.ts";
import { deliverSync } from "../delivery/sync.ts";
import type { Logger } from "../log/logger.ts";
import type { GatewayMetrics } from "../metrics/metrics.ts";
import type { ParsedCall } from "../payload/parse.ts";
import { parseCustomAction } from "../payload/parse.ts";
import type { CompiledRoute } from "../routing/route.ts";
import type { Router } from "../routing/router.ts";
import type { OutboxStore } from "../store/types.ts";
import type { ReplayGuard } from "../verify/replay-guard.ts";
import { verifySignature } from "../verify/signature.ts";
import type { VerifiedCall } from "../verify/verified-call.ts";

export interface ActionHandlerDeps {
  readonly config: CompiledConfig;
  readonly router: Router;
  readonly replayGuard: ReplayGuard;
  readonly outbox: OutboxStore;
  /** Tells the delivery engine that an event was added, so it goes out without waiting for a poll. */
  readonly onEnqueued: () => void;
  readonly logger: Logger;
  readonly metrics?: Pick<GatewayMetrics, "recordVerificationFailure">;
}

/** The request path of one call, after the body has been read within the size limit. */
export async function handleAction(
  headers: Headers,
  body: Uint8Array,
  routeName: string | undefined,
  deps: ActionHandlerDeps,
): Promise<CallAnswer & { webhookId?: string; route?: string }> {
  const verification = deps.config.verification;
  const verified = await verifySignature(
    { headers, body },
    { keySource: verification.keySource, hmacSecrets: verification.hmacSecrets, toleranceMs: verification.toleranceMs },
  );
  if (!verified.ok) {
    deps.metrics?.recordVerificationFailure(verified.reason);
    const status = verified.reason === "key_unavailable" ? 503 : 401;
    const outcome = verified.reason === "key_unavailable" ? "key_unavailable" : "unauthorized";
    return {
      ...failure(status, outcome, `Signature check failed: ${verified.message}`, { reason: verified.reason }),
      log: { reason: verified.reason },
    };
  }
  const call = verified.call;
  const webhookId = call.webhookId;

  let firstTime: boolean;
  try {
    firstTime = await deps.replayGuard.claim(webhookId);
  } catch (error) {
    // Fail closed: without the shared replay guard a duplicate could go through; epilot retries a 503.
    deps.logger.error("replay guard unavailable", { webhook_id: webhookId, error: (error as Error).message });
    return {
      ...failure(
        503,
        "store_unavailable",
        "actiongate cannot check this webhook-id for replays right now; please retry",
      ),
      webhookId,
    };
  }
  if (!firstTime) {
    return {
      ...failure(409, "replayed", "This webhook-id was already received; the call is not processed twice", {
        webhook_id: webhookId,
      }),
      webhookId,
    };
  }

  let answer: CallAnswer & { route?: string };
  try {
    answer = await routeAndDeliver(call, routeName, deps);
  } catch (error) {
    await releaseReplayGuard(webhookId, deps);
    throw error;
  }
  // A call that did not succeed may be retried by epilot with the same id; let the retry through.
  if (answer.status >= 400) await releaseReplayGuard(webhookId, deps);
  return { ...answer, webhookId };
}

/** Forgets the id; when the store is down that fails, and the answer epilot gets must not change for it. */
async function releaseReplayGuard(webhookId: string, deps: ActionHandlerDeps): Promise<void> {
  try {
    await deps.replayGuard.release(webhookId);
  } catch (error) {
    deps.logger.error("replay guard release failed: a retry of this webhook-id within the window gets 409", {
      webhook_id: webhookId,
      error: (error as Error).message,
    });
  }
}

async function routeAndDeliver(
  call: VerifiedCall,
  routeName: string | undefined,
  deps: ActionHandlerDeps,
): Promise<CallAnswer & { route?: string }> {
  const parsed = parseCustomAction(call, { maxDepth: deps.config.source.server.max_json_depth });
  if (!parsed.ok) return failure(400, "bad_request", parsed.message);

  const route = routeName !== undefined ? deps.router.byName(routeName) : deps.router.byMatch(parsed.parsed.payload);
  if (!route) {
    return routeName !== undefined
      ? failure(404, "unknown_route", `No route named "${routeName}"`)
      : failure(404, "unknown_route", "No route matches this action", {
          component_id: parsed.parsed.payload.data.action_config?.component_id,
          action_name: parsed.parsed.payload.data.action_config?.name,
        });
  }
  const answer =
    route.delivery.mode === "async"
      ? await acceptAsync(parsed.parsed, route, deps)
      : await deliverAndFollowUp(parsed.parsed, route, deps);
  return { ...answer, route: route.name };
}

/** Async: prepare the message now (so epilot hears of a bad payload at once), store it, answer 202. */
async function acceptAsync(parsed: ParsedCall, route: CompiledRoute, deps: ActionHandlerDeps): Promise<CallAnswer> {
  const prepared = await prepareMessage(parsed, route, deps.logger);
  if (!prepared.ok) return prepared.answer;
  try {
    await deps.outbox.add(buildOutboxEvent(parsed, route, prepared.message, "deliver", Date.now()));
  } catch (error) {
    deps.logger.error("outbox write failed", {
      route: route.name,
      webhook_id: parsed.call.webhookId,
      error: (error as Error).message,
    });
    return failure(503, "store_unavailable", "actiongate could not store the call; please retry", {
      route: route.name,
    });
  }
  deps.onEnqueued();
  return { status: 202, outcome: "accepted", body: {} };
}

/** Sync: deliver and answer; after a success, write-back and resume run in the background from the outbox. */
async function deliverAndFollowUp(
  parsed: ParsedCall,
  route: CompiledRoute,
  deps: ActionHandlerDeps,
): Promise<CallAnswer> {
  const { delivered, ...answer } = await deliverSync(parsed, route, deps.logger);
  if (!delivered) return answer;
  const stage = firstFollowUp(parsed, route);
  if (!stage) return answer;
  try {
    await deps.outbox.add(buildOutboxEvent(parsed, route, delivered.message, stage, Date.now(), delivered.response));
    deps.onEnqueued();
  } catch (error) {
    // The delivery happened; epilot gets its 200 and the operator a loud log line about the lost follow-up.
    deps.logger.error("follow-up could not be stored", {
      route: route.name,
      webhook_id: parsed.call.webhookId,
      stage,
      error: (error as Error).message,
    });
  }
  return answer;
}
