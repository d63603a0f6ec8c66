/**
 * The tracing the stages see: a small interface of our own, so that the request path and the
 * delivery stages call the same few methods whether tracing is on or not. With `telemetry` absent
 * they get {@link noopTracer}, whose spans do nothing and allocate nothing, and no module of
 * OpenTelemetry is loaded at all (telemetry/setup.ts imports the SDK only when configured).
 *
 * A new source of work joins the same way. The poll loop (Pollable Outbound, poll/source.ts) starts
 * a root `client` span per poll request (`tracer.startSpan("poll", "client", undefined)`), a
 * `consumer` span per message it stores and a `client` span per ack request inside it, and stores
 * the consumer span's `traceHeaders()` as the outbox event's `trace` (delivery/outbox-event.ts): the
 * stages then make each delivery attempt of the message a span of that trace, as for a call.
 */

/**
 * What a span stands for, in OpenTelemetry's terms: a call received, a call made, a step inside, or
 * a message taken from a queue (`consumer`: a polled message of epilot's Pollable Outbound).
 */
export type SpanKindName = "server" | "client" | "internal" | "consumer";

export type SpanAttributeValue = string | number | boolean;
/** Attributes to set; an `undefined` value is left out. */
export type SpanAttributes = Readonly<Record<string, SpanAttributeValue | undefined>>;

/**
 * A W3C trace context as HTTP headers carry it (lower-case names): what a target receives, and
 * what an outbox event stores so that its later attempts continue the trace of the call that was
 * accepted (delivery/outbox-event.ts).
 */
export interface TraceContextHeaders {
  readonly traceparent: string;
  readonly tracestate?: string;
}

/** `trace_id` and `span_id` of a span, for log lines; empty when the span is not recorded. */
export type TraceLogFields = Readonly<Record<string, string>>;

export interface TraceSpan {
  /**
   * Whether this span is recorded (tracing on, and sampled). When false, setting attributes is
   * wasted work: callers skip building them.
   */
  readonly recording: boolean;
  setAttributes(attributes: SpanAttributes): void;
  /** Marks the span failed (status ERROR) with a short reason: no secret, no payload content. */
  fail(reason: string): void;
  /** Ends the span; it is exported in the background, never on the caller's time. */
  end(): void;
  /** Starts a span inside this one (a stage, a call to a target or to epilot). */
  child(name: string, kind: SpanKindName, attributes?: SpanAttributes): TraceSpan;
  /**
   * The `traceparent` (and `tracestate`) that continue this span's trace in another system or in
   * a later attempt; undefined when tracing is off. Sent even for spans that are not sampled (with
   * the sampled flag unset), so that the next system makes the same decision.
   */
  traceHeaders(): TraceContextHeaders | undefined;
  /** `{trace_id, span_id}` for the log lines written inside this span; `{}` when not recorded. */
  readonly logFields: TraceLogFields;
}

export interface Tracer {
  /** False for {@link noopTracer}: nothing is recorded and no header is sent. */
  readonly enabled: boolean;
  /**
   * The server span of a received call. A valid `traceparent` (and `tracestate`) in `headers`
   * continues the caller's trace and its sampling decision; a missing or malformed one starts a new trace.
   */
  startServerSpan(name: string, headers: Headers, attributes?: SpanAttributes): TraceSpan;
  /**
   * A span continuing a stored trace context (an outbox event's), or the root of a new trace when
   * there is none (an event stored before tracing was turned on) or it cannot be read.
   */
  startSpan(
    name: string,
    kind: SpanKindName,
    parent: TraceContextHeaders | undefined,
    attributes?: SpanAttributes,
  ): TraceSpan;
}

const EMPTY_FIELDS: TraceLogFields = Object.freeze({});

/** The span of {@link noopTracer}: every method does nothing, and its children are itself. */
export const noopSpan: TraceSpan = Object.freeze({
  recording: false,
  setAttributes: () => {},
  fail: () => {},
  end: () => {},
  child: () => noopSpan,
  traceHeaders: () => undefined,
  logFields: EMPTY_FIELDS,
});

/**
 * Tracing off: every span is {@link noopSpan}. What the stages get when `telemetry` is not configured,
 * and what tests and the local runner (`explain`, `test`) use.
 *
 * @example
 * const span = (pipeline.tracer ?? noopTracer).startServerSpan("POST /actions/{route}", request.headers);
 * span.end();
 */
export const noopTracer: Tracer = Object.freeze({
  enabled: false,
  startServerSpan: () => noopSpan,
  startSpan: () => noopSpan,
});

/**
 * `server.address` and `server.port` of a client span, as OpenTelemetry names them: the host called,
 * and its port (the scheme's default when the URL names none).
 *
 * @example
 * serverAttributes(new URL("https://erp.internal/api")); // { "server.address": "erp.internal", "server.port": 443 }
 */
export function serverAttributes(url: URL): { "server.address": string; "server.port": number } {
  return {
    "server.address": url.hostname,
    "server.port": Number(url.port) || (url.protocol === "https:" ? 443 : 80),
  };
}

/**
 * Reads a stored trace context back (an outbox event's `trace`): the two strings, or undefined for
 * anything else, so that a damaged row starts a new trace instead of failing its delivery.
 *
 * @example
 * readTraceContext({ traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" }); // the same
 * readTraceContext(42); // undefined
 */
export function readTraceContext(value: unknown): TraceContextHeaders | undefined {
  if (value === null || typeof value !== "object") return undefined;
  const { traceparent, tracestate } = value as Record<string, unknown>;
  if (typeof traceparent !== "string") return undefined;
  return typeof tracestate === "string" && tracestate !== "" ? { traceparent, tracestate } : { traceparent };
}
