import { CircuitBreaker } from "../../src/delivery/circuit-breaker.ts";
import { orderKeyOf } from "../../src/delivery/order-key.ts";
import { buildOutboxEvent } from "../../src/delivery/outbox-event.ts";
import { prepareMessage } from "../../src/delivery/prepare.ts";
import type { Route } from "../../src/delivery/route.ts";
import type { EpilotCallbacks, EpilotCallOutcome } from "../../src/epilot/types.ts";
import { silentLogger } from "../../src/log/logger.ts";
import type { NewOutboxEvent, OutboxStage } from "../../src/store/types.ts";
import type { OutboundMessage } from "../../src/targets/message.ts";
import type { Target, TargetOutcome } from "../../src/targets/types.ts";
import type { TraceContextHeaders, TraceSpan } from "../../src/telemetry/tracer.ts";
import { compileExpression } from "../../src/transform/expression.ts";
import { parsedCallOf, parsedMessageOf } from "./calls.ts";

/** A target that answers from a script, one outcome per call (the last one repeats), and records each call. */
export interface ScriptedTarget extends Target {
  readonly calls: OutboundMessage[];
  /** The span each call was given (the attempt's), in the order of `calls`. */
  readonly traces: (TraceSpan | undefined)[];
  /** Outcomes still to give; when one is left it is given for every later call. */
  readonly script: TargetOutcome[];
}

export const delivered = (status = 200, body: unknown = {}): TargetOutcome => ({
  kind: "delivered",
  response: { status, headers: {}, body },
});
export const rejected = (status: number, retryable?: boolean): TargetOutcome => ({
  kind: "rejected",
  response: { status, headers: {}, body: "" },
  reason: `target answered HTTP ${status}`,
  info: { target_status: status },
  ...(retryable !== undefined ? { retryable } : {}),
});
export const unreachable: TargetOutcome = { kind: "unreachable", reason: "connection refused", code: "ECONNREFUSED" };
export const invalidMessage: TargetOutcome = { kind: "invalid_message", reason: "placeholder {{ x }} has no value" };
/** The target's rate limit had no turn free within max_wait: try again at `retryAt`. */
export const heldBack = (retryAt: number): TargetOutcome => ({ kind: "held_back", retryAt });

export function scriptedTarget(...script: TargetOutcome[]): ScriptedTarget {
  const calls: OutboundMessage[] = [];
  const traces: (TraceSpan | undefined)[] = [];
  return {
    type: "scripted",
    ownHeaders: [],
    render: async () => ({ ok: false, reason: "a scripted target renders no request" }),
    describe: () => ({ type: "scripted", method: "POST", url: "http://scripted.invalid/" }),
    interpret: () => {
      throw new Error("a scripted target reads no answer: it gives its script's outcomes");
    },
    calls,
    traces,
    script,
    async deliver(message, trace) {
      calls.push(message);
      traces.push(trace);
      const next = script.length > 1 ? script.shift()! : script[0];
      if (!next) throw new Error("the scripted target has no outcome left");
      return next;
    },
    close: async () => {},
  };
}

/** A target whose every call throws: a bug or an environment failure inside an attempt. */
export function throwingTarget(message = "boom"): ScriptedTarget {
  const target = scriptedTarget(delivered());
  return {
    ...target,
    async deliver(outbound) {
      target.calls.push(outbound);
      throw new Error(message);
    },
  };
}

export interface TestRouteOptions {
  name?: string;
  target?: Target;
  maxAttempts?: number;
  failureThreshold?: number;
  cooldownMs?: number;
  concurrency?: number;
  writeBack?: string;
  failWhen?: string;
  /** `delivery.order_key`, JSONata. */
  orderKey?: string;
  /** A route of polled messages of this source (`match.source`). */
  source?: string;
  now?: () => number;
}

/** An async route over `target` with millisecond backoff, so retries follow each other at once. */
export function testRoute(options: TestRouteOptions = {}): Route {
  return {
    name: options.name ?? "erp",
    ...(options.source !== undefined
      ? { matchesMessage: (message: { source: string }) => message.source === options.source }
      : {}),
    shaping: { strip: [] },
    forwardHeaders: [],
    response: {
      ...(options.writeBack ? { writeBack: compileExpression(options.writeBack) } : {}),
      ...(options.failWhen ? { failWhen: compileExpression(options.failWhen) } : {}),
    },
    delivery: {
      mode: "async",
      maxAttempts: options.maxAttempts ?? 3,
      backoff: { initialMs: 1, maxMs: 1 },
      concurrency: options.concurrency ?? 4,
      ...(options.orderKey ? { orderKey: compileExpression(options.orderKey) } : {}),
    },
    breaker: new CircuitBreaker({
      failureThreshold: options.failureThreshold ?? 100,
      cooldownMs: options.cooldownMs ?? 60_000,
      ...(options.now ? { now: options.now } : {}),
    }),
    target: options.target ?? scriptedTarget(delivered()),
    targetType: "scripted",
  };
}

/** epilot's callbacks as a script: every call recorded, each answered `ok` unless told otherwise. */
export function scriptedEpilot(answers: { resume?: EpilotCallOutcome; writeBack?: EpilotCallOutcome } = {}) {
  const resumes: { callbackUrl: string; resumeToken: string }[] = [];
  const writeBacks: { entity: { schema: string; id: string }; patch: Record<string, unknown>; token: string }[] = [];
  const epilot: EpilotCallbacks = {
    async resume(callbackUrl, resumeToken) {
      resumes.push({ callbackUrl, resumeToken });
      return answers.resume ?? { kind: "ok", status: 200 };
    },
    async writeBack(entity, patch, token) {
      writeBacks.push({ entity, patch, token });
      return answers.writeBack ?? { kind: "ok", status: 200 };
    },
  };
  return { epilot, resumes, writeBacks };
}

/**
 * The outbox event the gateway would store for the example payload (changed by `edit`) on `route`,
 * at `stage`, made the way the request path makes it (parse, prepare, build).
 */
export async function outboxEventFor(
  route: Route,
  options: {
    edit?: (raw: Record<string, any>) => void;
    headers?: Record<string, string>;
    stage?: OutboxStage;
    now?: number;
    /** The trace context of the call that was accepted, as the request path stores it. */
    trace?: TraceContextHeaders;
  } = {},
): Promise<NewOutboxEvent> {
  const parsed = await parsedCallOf(options.edit ?? (() => {}), options.headers ?? {});
  const prepared = await prepareMessage(parsed, route, silentLogger);
  if (!prepared.ok) throw new Error(`the test payload was not prepared: ${JSON.stringify(prepared.answer.body)}`);
  return buildOutboxEvent(
    parsed,
    route,
    prepared.message,
    options.stage ?? "deliver",
    options.now ?? Date.now(),
    undefined,
    { trace: options.trace },
  );
}

/**
 * The outbox event the poll source would store for the example poll message (changed by `edit`) on
 * `route`, made the way it makes it (parse, prepare, order key, build).
 */
export async function outboxEventForMessage(
  route: Route,
  edit: (raw: Record<string, any>) => void = () => {},
  now = Date.now(),
): Promise<NewOutboxEvent> {
  const parsed = parsedMessageOf(edit);
  const prepared = await prepareMessage(parsed, route, silentLogger);
  if (!prepared.ok) throw new Error(`the test message was not prepared: ${JSON.stringify(prepared.answer.body)}`);
  const ordered = await orderKeyOf(parsed, route, prepared.message.payload, silentLogger);
  if (!ordered.ok) throw new Error(`the test message has no order key: ${JSON.stringify(ordered.answer.body)}`);
  return buildOutboxEvent(parsed, route, prepared.message, "deliver", now, undefined, { orderKey: ordered.key });
}
