import type { ParsedCall } from "../payload/parse.ts";
import type { CompiledRoute } from "../routing/route.ts";
import type { NewOutboxEvent, OutboxEvent, OutboxStage } from "../store/types.ts";
import type { OutboundMessage, TargetResponse } from "../targets/types.ts";

/** What the stages of an outbox event need that is not secret (stored as JSON in `data`). */
export interface OutboxEventData {
  /** The transform's result and the stripped payload (for URL and header placeholders). */
  readonly body: unknown;
  readonly payload: unknown;
  readonly callbackUrl?: string;
  readonly entity?: { readonly schema: string; readonly id: string };
}

/** What is secret (stored encrypted in `secret`): epilot's tokens and any header the route forwards. */
export interface OutboxEventSecrets {
  readonly epilotToken?: string;
  readonly resumeToken?: string;
  readonly forwardedHeaders: Readonly<Record<string, string>>;
}

/**
 * Builds the outbox event for a call: at `deliver` for an async route, or at its first follow-up
 * (write-back, resume) after a sync delivery, with the target's answer as stage data.
 */
export function buildOutboxEvent(
  parsed: ParsedCall,
  route: CompiledRoute,
  message: OutboundMessage,
  stage: OutboxStage,
  now: number,
  response?: TargetResponse,
): NewOutboxEvent {
  const { data: payloadData } = parsed.payload;
  const entity = payloadData.entity;
  const data: OutboxEventData = {
    body: message.body,
    payload: message.payload,
    ...(payloadData.callback_post_url ? { callbackUrl: payloadData.callback_post_url } : {}),
    ...(entity._schema && entity._id ? { entity: { schema: entity._schema, id: entity._id } } : {}),
  };
  const epilotToken = parsed.call.headers.get("x-epilot-token") ?? undefined;
  const secrets: OutboxEventSecrets = {
    forwardedHeaders: message.forwardedHeaders,
    ...(epilotToken ? { epilotToken } : {}),
    ...(payloadData.resume_token ? { resumeToken: payloadData.resume_token } : {}),
  };
  return {
    id: message.webhookId,
    route: route.name,
    stage,
    data: JSON.stringify(data),
    secret: JSON.stringify(secrets),
    createdAt: now,
    ...(response ? { stageData: JSON.stringify(response) } : {}),
  };
}

/**
 * The stage after `stage`, or undefined when the event is done. Write-back comes before resume so
 * that the resumed workflow sees the written fields; resume needs the call's callback URL and token.
 */
export function nextStage(stage: OutboxStage, route: CompiledRoute, canResume: boolean): OutboxStage | undefined {
  const order: OutboxStage[] = ["deliver", "write_back", "resume"];
  for (const candidate of order.slice(order.indexOf(stage) + 1)) {
    if (candidate === "write_back" && route.response.writeBack) return candidate;
    if (candidate === "resume" && canResume) return candidate;
  }
  return undefined;
}

/** Whether a stored event carries what resuming its workflow needs. */
export function canResume(data: OutboxEventData, secrets: OutboxEventSecrets): boolean {
  return Boolean(data.callbackUrl && secrets.resumeToken);
}

/** The first follow-up of a sync call that was delivered, if it has any. */
export function firstFollowUp(parsed: ParsedCall, route: CompiledRoute): OutboxStage | undefined {
  const data = parsed.payload.data;
  return nextStage("deliver", route, Boolean(data.callback_post_url && data.resume_token));
}

export function readEventData(event: OutboxEvent): OutboxEventData {
  return JSON.parse(event.data) as OutboxEventData;
}

export function readEventSecrets(secret: string | undefined): OutboxEventSecrets {
  if (!secret) return { forwardedHeaders: {} };
  try {
    return JSON.parse(secret) as OutboxEventSecrets;
  } catch {
    return { forwardedHeaders: {} };
  }
}
