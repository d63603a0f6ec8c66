/**
 * The OpenTelemetry side of tracing, loaded only when `telemetry` is configured (see setup.ts): the
 * only module, with export-guard.ts, that imports the SDK. Spans are passed from stage to stage
 * explicitly (no context manager, nothing global is registered), so that a gateway in a test process
 * never shares a tracer with another.
 */

import { randomUUID } from "node:crypto";
import {
  type Context,
  type Tracer as OtelApiTracer,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  type TextMapSetter,
  trace,
} from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter as OtlpJsonTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { OTLPTraceExporter as OtlpProtobufTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
} from "@opentelemetry/sdk-trace";
import { ExportGuard } from "./export-guard.ts";
import type { TelemetryConfig } from "./schema.ts";
import type { Telemetry, TelemetryOptions } from "./setup.ts";
import {
  readTraceContext,
  type SpanAttributes,
  type SpanKindName,
  type TraceContextHeaders,
  type TraceLogFields,
  type Tracer,
  type TraceSpan,
} from "./tracer.ts";

/** The longest a shutdown waits for the last spans to leave. */
const MAX_SHUTDOWN_FLUSH_MS = 5_000;
/** Exports in flight at once; beyond, a batch fails at once (and is counted) instead of piling up. */
const MAX_CONCURRENT_EXPORTS = 4;
const MAX_EXPORT_BATCH_SIZE = 512;

const KIND: Readonly<Record<SpanKindName, SpanKind>> = {
  server: SpanKind.SERVER,
  client: SpanKind.CLIENT,
  internal: SpanKind.INTERNAL,
  consumer: SpanKind.CONSUMER,
};

const propagator = new W3CTraceContextPropagator();
const headersGetter: TextMapGetter<Headers> = {
  get: (carrier, key) => carrier.get(key) ?? undefined,
  keys: (carrier) => [...carrier.keys()],
};
const recordGetter: TextMapGetter<Readonly<Record<string, string | undefined>>> = {
  get: (carrier, key) => carrier[key],
  keys: (carrier) => Object.keys(carrier),
};
const recordSetter: TextMapSetter<Record<string, string>> = {
  set: (carrier, key, value) => {
    carrier[key] = value;
  },
};

/**
 * Builds the tracer over OTLP/HTTP: spans sampled by `sample_ratio` for new traces (the caller's
 * sampled flag for continued ones), batched in a bounded queue (`max_queue_size`), exported by
 * OpenTelemetry's exporter in `protocol` to `<otlp_endpoint>/v1/traces` with `headers`, each export
 * within `timeout`. See {@link ExportGuard} for what a collector that is down costs.
 *
 * @example
 * const { tracer, shutdown } = createOtelTelemetry(config.telemetry, { logger, serviceVersion: VERSION });
 */
export function createOtelTelemetry(config: TelemetryConfig, options: TelemetryOptions): Telemetry {
  const guard = new ExportGuard({
    maxQueueSize: config.max_queue_size,
    logger: options.logger,
    onDropped: options.onDropped ?? (() => {}),
  });
  const exporterConfig = {
    url: `${config.otlp_endpoint.replace(/\/+$/, "")}/v1/traces`,
    headers: { ...config.headers },
    timeoutMillis: config.timeout,
    concurrencyLimit: MAX_CONCURRENT_EXPORTS,
  };
  const exporter =
    config.protocol === "http/json"
      ? new OtlpJsonTraceExporter(exporterConfig)
      : new OtlpProtobufTraceExporter(exporterConfig);
  const processor = guard.bound(
    new BatchSpanProcessor({
      exporter: guard.counted(exporter),
      maxQueueSize: config.max_queue_size,
      maxExportBatchSize: Math.min(MAX_EXPORT_BATCH_SIZE, config.max_queue_size),
      scheduledDelayMillis: options.scheduledDelayMs ?? 1_000,
      // The exporter's own deadline (retries included) ends first; this only frees the queue if it does not.
      exportTimeoutMillis: config.timeout + 1_000,
    }),
  );
  const provider = new TracerProvider({
    resource: resourceFromAttributes({
      "service.name": config.service_name,
      "service.version": options.serviceVersion,
      // Tells the processes of `server.workers` (and replicas) apart.
      "service.instance.id": randomUUID(),
    }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(config.sample_ratio) }),
    // A span's memory stays small whatever a caller sends (a long webhook-id, a long reason).
    spanLimits: { attributeValueLengthLimit: 512, attributeCountLimit: 64, eventCountLimit: 16 },
    spanProcessors: [processor],
  });
  const tracer = new OtelTracer(provider.getTracer("actiongate", options.serviceVersion));
  const flushMs = Math.min(MAX_SHUTDOWN_FLUSH_MS, config.timeout);
  return {
    tracer,
    async shutdown() {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const deadline = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, flushMs);
      });
      // A failed last export is counted and logged by the guard; the shutdown goes on either way.
      await Promise.race([provider.shutdown().catch(() => undefined), deadline]);
      clearTimeout(timer);
    },
  };
}

class OtelTracer implements Tracer {
  readonly enabled = true;

  constructor(private readonly otel: OtelApiTracer) {}

  startServerSpan(name: string, headers: Headers, attributes?: SpanAttributes): TraceSpan {
    // A malformed traceparent (or none) leaves the context empty: the span starts a new trace.
    return this.start(name, "server", propagator.extract(ROOT_CONTEXT, headers, headersGetter), attributes);
  }

  startSpan(
    name: string,
    kind: SpanKindName,
    parent: TraceContextHeaders | undefined,
    attributes?: SpanAttributes,
  ): TraceSpan {
    const context = parent ? propagator.extract(ROOT_CONTEXT, parent, recordGetter) : ROOT_CONTEXT;
    return this.start(name, kind, context, attributes);
  }

  start(name: string, kind: SpanKindName, parent: Context, attributes: SpanAttributes | undefined): TraceSpan {
    const span = this.otel.startSpan(
      name,
      attributes ? { kind: KIND[kind], attributes } : { kind: KIND[kind] },
      parent,
    );
    return new OtelSpan(span, this);
  }
}

const NO_LOG_FIELDS: TraceLogFields = Object.freeze({});

class OtelSpan implements TraceSpan {
  readonly recording: boolean;
  private fields: TraceLogFields | undefined;
  private context: Context | undefined;

  constructor(
    private readonly span: Span,
    private readonly tracer: OtelTracer,
  ) {
    this.recording = span.isRecording();
  }

  get logFields(): TraceLogFields {
    if (!this.recording) return NO_LOG_FIELDS;
    if (this.fields === undefined) {
      const { traceId, spanId } = this.span.spanContext();
      this.fields = { trace_id: traceId, span_id: spanId };
    }
    return this.fields;
  }

  setAttributes(attributes: SpanAttributes): void {
    // The SDK leaves out attributes whose value is undefined.
    if (this.recording) this.span.setAttributes(attributes);
  }

  fail(reason: string): void {
    if (this.recording) this.span.setStatus({ code: SpanStatusCode.ERROR, message: reason });
  }

  end(): void {
    this.span.end();
  }

  child(name: string, kind: SpanKindName, attributes?: SpanAttributes): TraceSpan {
    return this.tracer.start(name, kind, this.asContext(), attributes);
  }

  traceHeaders(): TraceContextHeaders | undefined {
    const carrier: Record<string, string> = {};
    propagator.inject(this.asContext(), carrier, recordSetter);
    // The same shape a stored context is read back in: an empty tracestate is left out.
    return readTraceContext(carrier);
  }

  private asContext(): Context {
    this.context ??= trace.setSpan(ROOT_CONTEXT, this.span);
    return this.context;
  }
}
