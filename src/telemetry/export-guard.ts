import { type Context, TraceFlags } from "@opentelemetry/api";
import { type ExportResult, ExportResultCode } from "@opentelemetry/core";
import type { ReadableSpan, Span, SpanExporter, SpanProcessor } from "@opentelemetry/sdk-trace";
import type { DroppedSpansReason, TelemetryLog } from "./setup.ts";

/** How often a collector that keeps failing is logged: once, then at most once a minute. */
export const DROP_LOG_INTERVAL_MS = 60_000;

export interface ExportGuardOptions {
  /** Spans waiting for export at most (the batch processor's queue). */
  readonly maxQueueSize: number;
  readonly logger: TelemetryLog;
  /** Told of every span that will never reach the collector (the `actiongate_telemetry_dropped_spans_total` counter). */
  readonly onDropped: (reason: DroppedSpansReason, count: number) => void;
  readonly now?: () => number;
}

/**
 * Keeps the export of spans off every caller's back and its cost bounded: wraps the batch span
 * processor and the OTLP exporter so that a span the queue has no room for is dropped and counted
 * (`queue_full`) instead of waited for, and every span of a batch the collector did not take (down,
 * slow past the timeout, answering 4xx/5xx) is counted (`export_failed`). The first drop is logged
 * at once, later ones at most once a minute with how many were lost since; the first export that
 * works after failed ones is logged too. A batch is serialized and sent in a task of its own, never
 * inside the span.end() of the call that filled it, and nothing here throws into a stage.
 *
 * @example
 * const guard = new ExportGuard({ maxQueueSize: 2048, logger, onDropped: (reason, n) => metrics.recordDroppedSpans(reason, n) });
 * const processor = guard.bound(new BatchSpanProcessor({ exporter: guard.counted(otlpExporter), maxQueueSize: 2048 }));
 */
export class ExportGuard {
  /** Spans handed to the batch processor and not yet to the exporter: its queue, counted from outside. */
  private queued = 0;
  private droppedSinceLine = 0;
  private lastLineAt = Number.NEGATIVE_INFINITY;
  /** The last export failed: the next one that works says so. */
  private exportFailing = false;
  private readonly now: () => number;

  constructor(private readonly options: ExportGuardOptions) {
    this.now = options.now ?? Date.now;
  }

  /**
   * The processor to register: passes sampled spans on to `inner` while its queue has room, drops
   * (and counts) the rest. `inner` must export through {@link counted}, which sees spans leave the queue.
   */
  bound(inner: SpanProcessor): SpanProcessor {
    return {
      onStart: (span: Span, parentContext: Context) => inner.onStart(span, parentContext),
      onEnd: (span: ReadableSpan) => {
        // Spans not sampled never reach the queue (the batch processor skips them too).
        if ((span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) return;
        if (this.queued >= this.options.maxQueueSize) {
          this.drop("queue_full", 1, "the export queue is full (max_queue_size)");
          return;
        }
        this.queued++;
        inner.onEnd(span);
      },
      forceFlush: () => inner.forceFlush(),
      shutdown: () => inner.shutdown(),
    };
  }

  /** The exporter the batch processor sends through: counts what leaves the queue and what the collector did not take. */
  counted(inner: SpanExporter): SpanExporter {
    return {
      export: (spans: ReadableSpan[], resultCallback: (result: ExportResult) => void) => {
        this.queued = Math.max(0, this.queued - spans.length);
        let reported = false;
        const settle = (result: ExportResult) => {
          if (reported) return;
          reported = true;
          if (result.code === ExportResultCode.SUCCESS) this.recovered();
          else this.drop("export_failed", spans.length, describeExportError(result.error));
          resultCallback(result);
        };
        // The batch processor exports from inside the span.end() that filled a batch: serializing 512
        // spans there would be paid by whichever call ended that span. A task of its own takes it off.
        setTimeout(() => {
          try {
            inner.export(spans, settle);
          } catch (error) {
            settle({ code: ExportResultCode.FAILED, error: error instanceof Error ? error : new Error(String(error)) });
          }
        }, 0);
      },
      shutdown: () => inner.shutdown(),
      forceFlush: () => inner.forceFlush?.() ?? Promise.resolve(),
    };
  }

  private drop(reason: DroppedSpansReason, count: number, why: string): void {
    this.options.onDropped(reason, count);
    if (reason === "export_failed") this.exportFailing = true;
    this.droppedSinceLine += count;
    const now = this.now();
    if (now - this.lastLineAt < DROP_LOG_INTERVAL_MS) return;
    this.options.logger.warn(
      "trace spans dropped: they did not reach the collector (the calls themselves are not affected)",
      {
        reason,
        error: why,
        dropped_spans: this.droppedSinceLine,
        next_report_in_s: DROP_LOG_INTERVAL_MS / 1000,
      },
    );
    this.lastLineAt = now;
    this.droppedSinceLine = 0;
  }

  /** Said once after failed exports; the once-a-minute limit of the warnings holds across it. */
  private recovered(): void {
    if (!this.exportFailing) return;
    this.exportFailing = false;
    this.options.logger.info("trace export works again", { dropped_spans_not_yet_reported: this.droppedSinceLine });
    this.droppedSinceLine = 0;
  }
}

/** What went wrong, short: the collector's status or the network error; never headers (they may hold a token). */
function describeExportError(error: Error | undefined): string {
  if (!error) return "the export failed";
  const code = (error as { code?: unknown }).code;
  const message = error.message || error.name;
  const prefix =
    typeof code === "number"
      ? `HTTP ${code}: `
      : typeof code === "string" && !message.includes(code)
        ? `${code}: `
        : "";
  const text = `${prefix}${message}`;
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
