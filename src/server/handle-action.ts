import type { CompiledConfig } from "../config/compile.ts";
import { failure, type CallAnswer } from "../delivery/answer.ts";
import { deliverSync } from "../delivery/sync.ts";
import type { Logger } from "../log/logger.ts";
import { parseCustomAction } from "../payload/parse.ts";
import type { Router } from "../routing/router.ts";
import type { ReplayGuard } from "../verify/replay-guard.ts";
import { verifySignature } from "../verify/signature.ts";

export interface ActionHandlerDeps {
  readonly config: CompiledConfig;
  readonly router: Router;
  readonly replayGuard: ReplayGuard;
  readonly logger: Logger;
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
    const status = verified.reason === "key_unavailable" ? 503 : 401;
    const outcome = verified.reason === "key_unavailable" ? "key_unavailable" : "unauthorized";
    return { ...failure(status, outcome, `Signature check failed: ${verified.message}`, { reason: verified.reason }), log: { reason: verified.reason } };
  }
  const call = verified.call;
  const webhookId = call.webhookId;

  if (!(await deps.replayGuard.claim(webhookId))) {
    return { ...failure(409, "replayed", "This webhook-id was already received; the call is not processed twice", { webhook_id: webhookId }), webhookId };
  }

  let answer: CallAnswer & { route?: string };
  try {
    answer = await routeAndDeliver(call, routeName, deps);
  } catch (error) {
    await deps.replayGuard.release(webhookId);
    throw error;
  }
  // A call that did not succeed may be retried by epilot with the same id; let the retry through.
  if (answer.status >= 400) await deps.replayGuard.release(webhookId);
  return { ...answer, webhookId };
}

async function routeAndDeliver(
  call: Parameters<typeof parseCustomAction>[0],
  routeName: string | undefined,
  deps: ActionHandlerDeps,
): Promise<CallAnswer & { route?: string }> {
  const parsed = parseCustomAction(call);
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
  const answer = await deliverSync(parsed.parsed, route, deps.logger);
  return { ...answer, route: route.name };
}
