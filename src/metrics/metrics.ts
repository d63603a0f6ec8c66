import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { CallOutcome } from "../delivery/answer.ts";
import type { BreakerState } from "../delivery/circuit-breaker.ts";
import type { Store } from "../store/types.ts";
import type { RateLimitState } from "../targets/types.ts";
import type { DroppedSpansReason } from "../telemetry/setup.ts";
import type { VerificationFailureReason } from "../verify/signature.ts";

/** What the scrape-time gauges read: the routes in force now, the store and the key's age. */
export interface MetricSources {
  /** Names, breakers and targets (their rate limits) of the routes in force now (a reload changes them). */
  routes(): readonly {
    readonly name: string;
    readonly breaker: { readonly state: BreakerState };
    readonly target?: { rateLimitState?(): RateLimitState | undefined };
  }[];
  readonly store: Pick<Store, "outbox" | "deadLetters">;
  /** Where the Ed25519 key comes from, and when the one in use was loaded or fetched (ms since epoch; undefined while there is none). */
  verificationKey(): { readonly source: "url" | "config" | "none"; readonly loadedAt: number | undefined };
}

export type ReloadResult = "success" | "failure";

/** What one attempt at an outbox stage ended in: the stage is done, another attempt follows, or the dead letters. */
export type DeliveryResult = "delivered" | "retried" | "dead_lettered";

/** The label of calls that named no configured route: unknown names must not grow the label set. */
export const NO_ROUTE_LABEL = "_none";

const BREAKER_VALUE: Record<BreakerState, number> = { closed: 0, half_open: 1, open: 2 };

/** Latency buckets (seconds) for legacy systems: from a fast LAN service to a SOAP call near its timeout. */
const TARGET_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/**
 * The gateway's Prometheus metrics, on a registry of its own (never prom-client's global one, so two
 * gateways in one process, as in tests, do not share counters). Record calls are cheap: label
 * children are cached per route and outcome, nothing is awaited and no string is built per call.
 *
 * @example
 * const metrics = new GatewayMetrics();
 * metrics.recordCall("erp-contract", "delivered");
 * metrics.observeTarget("erp-contract", 0.042);
 * metrics.attach({ routes: () => config.routes, store, verificationKey: () => ({ source: "config", loadedAt: Date.now() }) });
 * const text = await metrics.render(); // Prometheus text format
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  private sources: MetricSources | undefined;
  private readonly calls: Counter<"route" | "outcome">;
  private readonly callChildren = new Map<string, Map<string, Counter.Internal>>();
  private readonly verificationFailures: Counter<"reason">;
  private readonly targetDuration: Histogram<"route">;
  private readonly targetChildren = new Map<string, Histogram.Internal<"route">>();
  private readonly reloads: Counter<"result">;
  private readonly deliveries: Counter<"route" | "stage" | "result">;
  private readonly deliveryChildren = new Map<string, Counter.Internal>();
  private readonly droppedSpans: Counter<"reason">;
  private readonly lastReloadSuccess: Gauge;
  private readonly lastReloadTime: Gauge;

  constructor(options: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    // Arrow functions below read `this.sources` at scrape time; prom-client calls collect() per scrape.
    const metrics = this;
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });

    this.calls = new Counter({
      name: "actiongate_calls_total",
      help: "Calls answered, by route and outcome",
      labelNames: ["route", "outcome"],
      registers,
    });
    this.verificationFailures = new Counter({
      name: "actiongate_verification_failures_total",
      help: "Calls refused by the signature check, by reason",
      labelNames: ["reason"],
      registers,
    });
    this.targetDuration = new Histogram({
      name: "actiongate_target_duration_seconds",
      help: "Time the target took per delivery attempt (sync and async), by route",
      labelNames: ["route"],
      buckets: TARGET_BUCKETS,
      registers,
    });
    // Counted by the store at scrape; a store that fails leaves the gauge empty instead of failing the scrape.
    // Every configured route reads 0 when it has nothing (an alert on `> 0` needs the series to exist);
    // a route no longer configured shows while the store still holds events of it.
    const countPerRoute = (
      name: string,
      help: string,
      count: (store: MetricSources["store"]) => Promise<Record<string, number>>,
    ) =>
      new Gauge({
        name,
        help,
        labelNames: ["route"],
        registers,
        async collect() {
          this.reset();
          const sources = metrics.sources;
          if (!sources) return;
          const perRoute = await count(sources.store).catch(() => undefined);
          if (!perRoute) return;
          for (const route of sources.routes()) this.set({ route: route.name }, 0);
          for (const [route, value] of Object.entries(perRoute)) this.set({ route }, value);
        },
      });
    countPerRoute("actiongate_outbox_depth", "Events waiting in the outbox, by route", (store) => store.outbox.depth());
    countPerRoute("actiongate_dead_letters", "Events in the dead letters now, by route", (store) =>
      store.deadLetters.countByRoute(),
    );
    new Gauge({
      name: "actiongate_circuit_breaker_state",
      help: "Circuit breaker of each route's target: 0 closed, 1 half-open, 2 open",
      labelNames: ["route"],
      registers,
      collect() {
        this.reset();
        for (const route of metrics.sources?.routes() ?? [])
          this.set({ route: route.name }, BREAKER_VALUE[route.breaker.state]);
      },
    });
    // Read from each target's rate limit at scrape; routes without one have no series.
    const perRateLimit = (each: (state: RateLimitState) => number) => {
      const out: [string, number][] = [];
      for (const route of metrics.sources?.routes() ?? []) {
        const state = route.target?.rateLimitState?.();
        if (state) out.push([route.name, each(state)]);
      }
      return out;
    };
    new Gauge({
      name: "actiongate_rate_limit_held_back",
      help: "1 while the route's target is at its rate limit (a call now would wait), else 0; only routes with target.rate_limit",
      labelNames: ["route"],
      registers,
      collect() {
        this.reset();
        for (const [route, value] of perRateLimit((state) => (state.heldBack ? 1 : 0))) this.set({ route }, value);
      },
    });
    new Gauge({
      name: "actiongate_rate_limit_waiting",
      help: "Calls waiting for their turn under the target's rate limit now, by route",
      labelNames: ["route"],
      registers,
      collect() {
        this.reset();
        for (const [route, value] of perRateLimit((state) => state.waiting)) this.set({ route }, value);
      },
    });
    new Counter({
      name: "actiongate_rate_limit_delayed_total",
      help: "Calls that waited for their turn under the target's rate limit, by route (since the target was loaded)",
      labelNames: ["route"],
      registers,
      collect() {
        this.reset();
        for (const [route, value] of perRateLimit((state) => state.delayedTotal)) this.inc({ route }, value);
      },
    });
    new Counter({
      name: "actiongate_rate_limit_refused_total",
      help: "Calls the target's rate limit turned away because no turn was free within max_wait (sync 503, async postponed), by route (since the target was loaded)",
      labelNames: ["route"],
      registers,
      collect() {
        this.reset();
        for (const [route, value] of perRateLimit((state) => state.refusedTotal)) this.inc({ route }, value);
      },
    });
    new Gauge({
      name: "actiongate_verification_key_age_seconds",
      help: "Seconds since the Ed25519 verification key in use was fetched (source url) or loaded (source config); absent while there is none",
      // A label, so that the series is absent rather than 0 while there is no key.
      labelNames: ["source"],
      registers,
      collect() {
        this.reset();
        const key = metrics.sources?.verificationKey();
        if (key?.loadedAt !== undefined) this.set({ source: key.source }, (Date.now() - key.loadedAt) / 1000);
      },
    });
    this.deliveries = new Counter({
      name: "actiongate_deliveries_total",
      help: "Attempts at outbox stages (async delivery, write-back, resume), by route, stage and result: delivered (the stage is done), retried (another attempt follows), dead_lettered",
      labelNames: ["route", "stage", "result"],
      registers,
    });
    this.droppedSpans = new Counter({
      name: "actiongate_telemetry_dropped_spans_total",
      help: "Trace spans that never reached the collector, by reason: queue_full (no room left in telemetry.max_queue_size), export_failed (the collector was down, too slow or refused the batch)",
      labelNames: ["reason"],
      registers,
    });
    this.reloads = new Counter({
      name: "actiongate_config_reloads_total",
      help: "Configuration reloads, by result",
      labelNames: ["result"],
      registers,
    });
    this.lastReloadSuccess = new Gauge({
      name: "actiongate_config_last_reload_success",
      help: "1 when the last reload succeeded (or none was tried), 0 when it was refused",
      registers,
    });
    this.lastReloadTime = new Gauge({
      name: "actiongate_config_last_reload_timestamp_seconds",
      help: "When the configuration in force was loaded (start or last successful reload), seconds since the epoch",
      registers,
    });
    this.lastReloadSuccess.set(1);
    this.lastReloadTime.set(Date.now() / 1000);
  }

  /** Connects the scrape-time gauges to what they read; until then they are empty. */
  attach(sources: MetricSources): void {
    this.sources = sources;
  }

  /** One answered call. `route` must be a configured route's name or {@link NO_ROUTE_LABEL}. */
  recordCall(route: string, outcome: CallOutcome): void {
    let byOutcome = this.callChildren.get(route);
    if (!byOutcome) {
      byOutcome = new Map();
      this.callChildren.set(route, byOutcome);
    }
    let child = byOutcome.get(outcome);
    if (!child) {
      child = this.calls.labels(route, outcome);
      byOutcome.set(outcome, child);
    }
    child.inc();
  }

  recordVerificationFailure(reason: VerificationFailureReason): void {
    this.verificationFailures.labels(reason).inc();
  }

  /** One delivery attempt's time at the target, in seconds. */
  observeTarget(route: string, seconds: number): void {
    let child = this.targetChildren.get(route);
    if (!child) {
      child = this.targetDuration.labels(route);
      this.targetChildren.set(route, child);
    }
    child.observe(seconds);
  }

  /** One attempt at an outbox stage of `route` (a configured route's name). */
  recordDelivery(route: string, stage: string, result: DeliveryResult): void {
    const key = `${route}\u0000${stage}\u0000${result}`;
    let child = this.deliveryChildren.get(key);
    if (!child) {
      child = this.deliveries.labels(route, stage, result);
      this.deliveryChildren.set(key, child);
    }
    child.inc();
  }

  /** Spans dropped by the trace exporter (telemetry/export-guard.ts). */
  recordDroppedSpans(reason: DroppedSpansReason, count: number): void {
    this.droppedSpans.labels(reason).inc(count);
  }

  /** With tracing on, both reasons show 0 from the start, so an alert on their rate has a series to read. */
  initDroppedSpans(): void {
    for (const reason of ["queue_full", "export_failed"] as const) this.droppedSpans.labels(reason).inc(0);
  }

  recordReload(result: ReloadResult): void {
    this.reloads.labels(result).inc();
    this.lastReloadSuccess.set(result === "success" ? 1 : 0);
    if (result === "success") this.lastReloadTime.set(Date.now() / 1000);
  }

  /** The Prometheus text exposition of every metric. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
