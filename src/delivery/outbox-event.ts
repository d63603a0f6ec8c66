import { isRecord } from "../kit/records.ts";
import type { ParsedCall, ParsedInput } from "../payload/parse.ts";
import type { NewOutboxEvent, OutboxEvent, OutboxStage } from "../store/types.ts";
import { OutboundMessage } from "../targets/message.ts";
import type { TargetResponse } from "../targets/types.ts";
import { readTraceContext, type TraceContextHeaders } from "../telemetry/tracer.ts";
import type { Route } from "./route.ts";

/**
 * The format of an outbox event's `data`, so that a later version of actiongate can read rows an
 * earlier one wrote. Rows without `v` were written before it existed; they have the same fields as 1.
 * Bump it (and read the old shape in {@link readEventData}) whenever a field changes meaning. An
 * added optional field (`trace`) is no change of format: older rows lack it and read the same, and
 * an older actiongate reading a newer row ignores it, so replicas of two versions share one store.
 *
 * 2 added polled messages (`idempotencyKey`, `origin`). Calls are still written as 1, which they
 * are, so that replicas of the previous version keep delivering them during a rolling upgrade;
 * those replicas dead-letter a polled message as unreadable instead of sending it with the wrong
 * idempotency key.
 */
export const EVENT_DATA_VERSION = 2;
const CALL_DATA_VERSION = 1;

/** What the stages of an outbox event need that is not secret (stored as JSON in `data`). */
export interface OutboxEventData {
  readonly v: number;
  /** The transform's result and the stripped payload (for URL and header placeholders). */
  readonly body: unknown;
  readonly payload: unknown;
  readonly callbackUrl?: string;
  readonly entity?: { readonly schema: string; readonly id: string };
  /** Sent as the idempotency key when it is not the event's id (a polled message: its event_id). */
  readonly idempotencyKey?: string;
  /** Where a polled message came from: for the dead letters, the console and monitoring (no payload). */
  readonly origin?: PolledOrigin;
  /**
   * The trace context of the call that was accepted (its server span), when tracing was on: every
   * later attempt and follow-up is a span of that trace, after restarts too. Not secret (two ids
   * and the sampled flag), and absent from rows written without tracing.
   */
  readonly trace?: TraceContextHeaders;
}

/** What identifies a polled message, kept beside it in the outbox (no payload content). */
export interface PolledOrigin {
  readonly kind: "poll";
  readonly source: string;
  readonly message_id: string;
  readonly use_case_id: string;
  readonly event_id: string;
  readonly event_name: string;
  readonly org_id: string;
  readonly enqueued_at: string;
}

/** What is secret (stored encrypted in `secret`): epilot's tokens and any header the route forwards. */
export interface OutboxEventSecrets {
  readonly epilotToken?: string;
  readonly resumeToken?: string;
  readonly forwardedHeaders: Readonly<Record<string, string>>;
}

/**
 * Builds the outbox event for a call or a polled message: at `deliver` for an async route or a
 * polled message, or at a call's first follow-up (write-back, resume) after a sync delivery, with the
 * target's answer as stage data. `orderKey` (delivery/order-key.ts) orders it among the route's
 * events; `trace` is the call's trace context (`span.traceHeaders()`), which its later attempts continue.
 *
 * @example
 * await outbox.add(buildOutboxEvent(parsed, route, message, "deliver", Date.now(), undefined, { orderKey, trace: span.traceHeaders() }));
 */
export function buildOutboxEvent(
  parsed: ParsedInput,
  route: Pick<Route, "name">,
  message: OutboundMessage,
  stage: OutboxStage,
  now: number,
  response?: TargetResponse,
  extra: { readonly orderKey?: string | undefined; readonly trace?: TraceContextHeaders | undefined } = {},
): NewOutboxEvent {
  const { orderKey, trace } = extra;
  const built =
    parsed.kind === "call" ? callEventParts(parsed, message, trace) : messageEventParts(parsed, message, trace);
  return {
    id: parsed.id,
    route: route.name,
    stage,
    data: JSON.stringify(built.data),
    secret: JSON.stringify(built.secrets),
    createdAt: now,
    ...(response ? { stageData: JSON.stringify(response) } : {}),
    ...(orderKey !== undefined ? { orderKey } : {}),
  };
}

function callEventParts(
  parsed: ParsedCall,
  message: OutboundMessage,
  trace: TraceContextHeaders | undefined,
): { data: OutboxEventData; secrets: OutboxEventSecrets } {
  const { data: payloadData } = parsed.payload;
  const entity = payloadData.entity;
  const data: OutboxEventData = {
    v: CALL_DATA_VERSION,
    body: message.body,
    payload: message.payload,
    ...(payloadData.callback_post_url ? { callbackUrl: payloadData.callback_post_url } : {}),
    ...(entity._schema && entity._id ? { entity: { schema: entity._schema, id: entity._id } } : {}),
    ...(trace ? { trace } : {}),
  };
  const epilotToken = parsed.call.headers.get("x-epilot-token") ?? undefined;
  const secrets: OutboxEventSecrets = {
    forwardedHeaders: message.forwardedHeaders,
    ...(epilotToken ? { epilotToken } : {}),
    ...(payloadData.resume_token ? { resumeToken: payloadData.resume_token } : {}),
  };
  return { data, secrets };
}

/** A polled message carries no token, callback or forwarded header: only its shaped body and where it came from. */
function messageEventParts(
  parsed: Extract<ParsedInput, { kind: "message" }>,
  message: OutboundMessage,
  trace: TraceContextHeaders | undefined,
): { data: OutboxEventData; secrets: OutboxEventSecrets } {
  const polled = parsed.message;
  const data: OutboxEventData = {
    v: EVENT_DATA_VERSION,
    body: message.body,
    payload: message.payload,
    idempotencyKey: message.idempotencyKey,
    origin: {
      kind: "poll",
      source: parsed.source,
      message_id: polled.id,
      use_case_id: polled.use_case_id,
      event_id: polled.event_id,
      event_name: polled.event_name,
      org_id: polled.org_id,
      enqueued_at: polled.enqueued_at,
    },
    ...(trace ? { trace } : {}),
  };
  return { data, secrets: { forwardedHeaders: {} } };
}

/**
 * The stage after `stage`, or undefined when the event is done. Write-back comes before resume so
 * that the resumed workflow sees the written fields; resume needs the call's callback URL and token.
 */
export function nextStage(
  stage: OutboxStage,
  route: Pick<Route, "response">,
  canResume: boolean,
): OutboxStage | undefined {
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
export function firstFollowUp(parsed: ParsedCall, route: Pick<Route, "response">): OutboxStage | undefined {
  const data = parsed.payload.data;
  return nextStage("deliver", route, Boolean(data.callback_post_url && data.resume_token));
}

/** An event's data that this version cannot read; the event is dead-lettered with this reason. */
export class UnreadableEventError extends Error {
  override name = "UnreadableEventError";
}

/**
 * Reads an event's `data`, whichever version of actiongate wrote it. Throws {@link UnreadableEventError}
 * for data that is not JSON or comes from a newer version.
 */
export function readEventData(event: Pick<OutboxEvent, "data">): OutboxEventData {
  let json: unknown;
  try {
    json = JSON.parse(event.data);
  } catch {
    throw new UnreadableEventError("the stored event data is not JSON");
  }
  if (!isRecord(json)) throw new UnreadableEventError("the stored event data is not an object");
  const version = json.v ?? 0;
  if (typeof version !== "number" || version > EVENT_DATA_VERSION) {
    throw new UnreadableEventError(
      `the stored event data has format ${String(version)}; this actiongate reads up to ${EVENT_DATA_VERSION}`,
    );
  }
  // Version 0 (no `v`) has the fields of version 1; version 2 only added optional fields. A damaged
  // trace context only loses the trace.
  const { trace, ...fields } = json;
  const context = readTraceContext(trace);
  return {
    ...(fields as Omit<OutboxEventData, "v" | "trace">),
    v: EVENT_DATA_VERSION,
    ...(context ? { trace: context } : {}),
  };
}

export function readEventSecrets(secret: string | undefined): OutboxEventSecrets {
  if (!secret) return { forwardedHeaders: {} };
  try {
    const json: unknown = JSON.parse(secret);
    if (!isRecord(json)) return { forwardedHeaders: {} };
    return { forwardedHeaders: {}, ...(json as Partial<OutboxEventSecrets>) };
  } catch {
    return { forwardedHeaders: {} };
  }
}

/** The message of a stored event, for its next delivery attempt: the sanctioned way back from a row. */
export function messageOfEvent(
  event: Pick<OutboxEvent, "id">,
  data: OutboxEventData,
  secrets: OutboxEventSecrets,
): OutboundMessage {
  return OutboundMessage.fromStored({
    id: event.id,
    idempotencyKey: data.idempotencyKey,
    body: data.body,
    payload: data.payload,
    forwardedHeaders: secrets.forwardedHeaders,
  });
}
