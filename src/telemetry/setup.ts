import type { TelemetryConfig } from "./schema.ts";
import { noopTracer, type Tracer } from "./tracer.ts";

/** Why a span never reached the collector: no room in the export queue, or the export of its batch failed. */
export type DroppedSpansReason = "queue_full" | "export_failed";

/** What the exporter logs (the gateway's logger fits): a collector that is down, and when it is back. */
export interface TelemetryLog {
  warn(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
}

export interface TelemetryOptions {
  readonly logger: TelemetryLog;
  /** Told of every span dropped (metrics: `actiongate_telemetry_dropped_spans_total`). */
  readonly onDropped?: ((reason: DroppedSpansReason, count: number) => void) | undefined;
  /** `service.version` of the spans. */
  readonly serviceVersion: string;
  /** How long spans wait to be batched (default 1 s); tests shorten it. */
  readonly scheduledDelayMs?: number | undefined;
}

/** Tracing for one process: the tracer the stages use, and how to stop it. */
export interface Telemetry {
  readonly tracer: Tracer;
  /**
   * Sends the spans still queued and stops the exporter. Waits at most 5 s (or `telemetry.timeout`
   * when shorter): a collector that is down never holds up a shutdown longer than that.
   */
  shutdown(): Promise<void>;
}

/** Tracing off: the no-op tracer, nothing to flush. */
export const noTelemetry: Telemetry = Object.freeze({ tracer: noopTracer, shutdown: async () => {} });

/**
 * Starts tracing when `telemetry` is configured; without it, returns {@link noTelemetry} and loads
 * nothing of OpenTelemetry: the SDK and the exporters sit in a chunk of their own (`--splitting`)
 * that only this dynamic import evaluates, so a gateway without tracing neither starts slower nor
 * holds their memory.
 *
 * @example
 * const telemetry = await startTelemetry(config.telemetry, { logger, serviceVersion: VERSION });
 * const span = telemetry.tracer.startServerSpan("POST /actions/{route}", request.headers);
 * await telemetry.shutdown();
 */
export async function startTelemetry(
  config: TelemetryConfig | undefined,
  options: TelemetryOptions,
): Promise<Telemetry> {
  if (!config) return noTelemetry;
  const { createOtelTelemetry } = await import("./otel-tracer.ts");
  return createOtelTelemetry(config, options);
}
