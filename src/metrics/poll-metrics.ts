import { Counter, Gauge, type Registry } from "prom-client";

/** What the scrape-time gauges read of each poll source and of the monitoring reporter. */
export interface PollMetricSources {
  /** Per source: when it last polled successfully (ms since epoch), undefined before the first. */
  pollSources(): readonly { readonly name: string; readonly lastSuccessAt: number | undefined }[];
  /** Spans waiting to be sent to epilot's monitoring. */
  monitoringQueued(): number;
}

/**
 * The metrics of Pollable Outbound and External Monitoring Events, on the gateway's registry:
 * - `actiongate_poll_messages_total{source, result}`: stored, duplicate, unrouted, skipped, refused;
 * - `actiongate_poll_acks_total{source, result}`: accepted, stale_lease, out_of_order, not_found, rejected, failed;
 * - `actiongate_poll_lag_seconds{source}`: now minus the oldest `enqueued_at` of the last batch (0 when empty);
 * - `actiongate_poll_last_success_timestamp_seconds{source}`;
 * - `actiongate_monitoring_spans_total{result}`: sent, rejected, dropped; `actiongate_monitoring_queued_spans`.
 * Label children are cached, so recording costs a map lookup.
 *
 * @example
 * const poll = new PollMetrics(metrics.registry);
 * poll.recordMessages("erp-feed", "stored", 100);
 */
export class PollMetrics {
  private readonly messages: Counter<"source" | "result">;
  private readonly acks: Counter<"source" | "result">;
  private readonly lag: Gauge<"source">;
  private readonly spans: Counter<"result">;
  private readonly children = new Map<string, Counter.Internal>();
  private sources: PollMetricSources | undefined;

  constructor(registry: Registry) {
    const registers = [registry];
    const metrics = this;
    this.messages = new Counter({
      name: "actiongate_poll_messages_total",
      help: "Messages leased from epilot's Pollable Outbound queue, by source and what became of them",
      labelNames: ["source", "result"],
      registers,
    });
    this.acks = new Counter({
      name: "actiongate_poll_acks_total",
      help: "Acknowledgements of polled messages, by source and epilot's verdict",
      labelNames: ["source", "result"],
      registers,
    });
    this.lag = new Gauge({
      name: "actiongate_poll_lag_seconds",
      help: "Seconds between the last poll and the oldest enqueued_at it leased (0 when the batch was empty), by source",
      labelNames: ["source"],
      registers,
    });
    new Gauge({
      name: "actiongate_poll_last_success_timestamp_seconds",
      help: "When each poll source last polled successfully, seconds since the epoch; absent before the first",
      labelNames: ["source"],
      registers,
      collect() {
        this.reset();
        for (const source of metrics.sources?.pollSources() ?? [])
          if (source.lastSuccessAt !== undefined) this.set({ source: source.name }, source.lastSuccessAt / 1000);
      },
    });
    this.spans = new Counter({
      name: "actiongate_monitoring_spans_total",
      help: "Spans for epilot's External Monitoring Events, by result (sent, rejected by epilot, dropped)",
      labelNames: ["result"],
      registers,
    });
    new Gauge({
      name: "actiongate_monitoring_queued_spans",
      help: "Spans waiting to be sent to epilot's monitoring",
      registers,
      collect() {
        this.set(metrics.sources?.monitoringQueued() ?? 0);
      },
    });
  }

  attach(sources: PollMetricSources): void {
    this.sources = sources;
  }

  recordMessages(source: string, result: string, count: number): void {
    this.child(this.messages, "m", source, result).inc(count);
  }

  recordAcks(source: string, result: string, count: number): void {
    this.child(this.acks, "a", source, result).inc(count);
  }

  recordLag(source: string, seconds: number): void {
    this.lag.labels(source).set(seconds);
  }

  recordSpans(result: string, count: number): void {
    this.spans.labels(result).inc(count);
  }

  private child(counter: Counter<"source" | "result">, kind: string, source: string, result: string): Counter.Internal {
    const key = `${kind}\u0000${source}\u0000${result}`;
    let child = this.children.get(key);
    if (!child) {
      child = counter.labels(source, result);
      this.children.set(key, child);
    }
    return child;
  }
}
