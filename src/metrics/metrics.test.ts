import { describe, expect, test } from "bun:test";
import { CircuitBreaker } from "../delivery/circuit-breaker.ts";
import { openMemoryStore } from "../store/memory-store.ts";
import { GatewayMetrics, NO_ROUTE_LABEL } from "./metrics.ts";

/** The value of one sample line (`name{labels} value`) in Prometheus text, or undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe("GatewayMetrics", () => {
  test("counts calls by route and outcome, and verification failures by reason", async () => {
    const metrics = new GatewayMetrics({ defaultMetrics: false });
    metrics.recordCall("erp", "delivered");
    metrics.recordCall("erp", "delivered");
    metrics.recordCall("erp", "target_timeout");
    metrics.recordCall(NO_ROUTE_LABEL, "unauthorized");
    metrics.recordVerificationFailure("no_matching_signature");
    const text = await metrics.render();
    expect(sample(text, 'actiongate_calls_total{route="erp",outcome="delivered"}')).toBe(2);
    expect(sample(text, 'actiongate_calls_total{route="erp",outcome="target_timeout"}')).toBe(1);
    expect(sample(text, 'actiongate_calls_total{route="_none",outcome="unauthorized"}')).toBe(1);
    expect(sample(text, 'actiongate_verification_failures_total{reason="no_matching_signature"}')).toBe(1);
    expect(text).toContain("# TYPE actiongate_calls_total counter");
  });

  test("target latency is a histogram per route, in seconds", async () => {
    const metrics = new GatewayMetrics({ defaultMetrics: false });
    metrics.observeTarget("erp", 0.02);
    metrics.observeTarget("erp", 3);
    const text = await metrics.render();
    expect(sample(text, 'actiongate_target_duration_seconds_bucket{le="0.025",route="erp"}')).toBe(1);
    expect(sample(text, 'actiongate_target_duration_seconds_bucket{le="5",route="erp"}')).toBe(2);
    expect(sample(text, 'actiongate_target_duration_seconds_count{route="erp"}')).toBe(2);
    expect(sample(text, 'actiongate_target_duration_seconds_sum{route="erp"}')).toBeCloseTo(3.02, 5);
  });

  test("a route whose target is held back by its rate limit shows it: held back, waiting, delayed and refused", async () => {
    const metrics = new GatewayMetrics({ defaultMetrics: false });
    const breaker = new CircuitBreaker({ failureThreshold: 1, cooldownMs: 1 });
    let state = {
      requests: 2,
      perMs: 1000,
      waiting: 3,
      heldBack: true,
      delayedTotal: 7,
      refusedTotal: 2,
      nextStartAt: 0,
    };
    metrics.attach({
      routes: () => [
        { name: "billing", breaker, target: { rateLimitState: () => state } },
        { name: "erp", breaker, target: { rateLimitState: () => undefined } },
      ],
      store: openMemoryStore({ replayWindowMs: 1000 }),
      verificationKey: () => ({ source: "none", loadedAt: undefined }),
    });
    let text = await metrics.render();
    expect(sample(text, 'actiongate_rate_limit_held_back{route="billing"}')).toBe(1);
    expect(sample(text, 'actiongate_rate_limit_waiting{route="billing"}')).toBe(3);
    expect(sample(text, 'actiongate_rate_limit_delayed_total{route="billing"}')).toBe(7);
    expect(sample(text, 'actiongate_rate_limit_refused_total{route="billing"}')).toBe(2);
    // A route without a rate limit has no series at all.
    expect(text).not.toContain('actiongate_rate_limit_held_back{route="erp"}');
    state = { ...state, waiting: 0, heldBack: false, delayedTotal: 8 };
    text = await metrics.render();
    expect(sample(text, 'actiongate_rate_limit_held_back{route="billing"}')).toBe(0);
    expect(sample(text, 'actiongate_rate_limit_delayed_total{route="billing"}')).toBe(8);
  });

  test("outbox depth, dead letters, breaker state and key age are read from their sources at scrape", async () => {
    const metrics = new GatewayMetrics({ defaultMetrics: false });
    const store = openMemoryStore({ replayWindowMs: 1000 });
    await store.outbox.add({ id: "a", route: "erp", stage: "deliver", data: "{}", createdAt: 1 });
    await store.outbox.add({ id: "b", route: "erp", stage: "deliver", data: "{}", createdAt: 1 });
    await store.outbox.add({ id: "c", route: "crm", stage: "deliver", data: "{}", createdAt: 1 });
    await store.outbox.claim("crm", 1, 2, 1000);
    await store.outbox.bury("c", { at: 2, stage: "deliver", outcome: "target_failed" }, "gave up");
    const open = new CircuitBreaker({ failureThreshold: 1, cooldownMs: 60_000 });
    open.recordFailure();
    const routes = [
      { name: "erp", breaker: new CircuitBreaker({ failureThreshold: 1, cooldownMs: 1 }) },
      { name: "crm", breaker: open },
    ];
    metrics.attach({
      routes: () => routes,
      store,
      verificationKey: () => ({ source: "url", loadedAt: Date.now() - 90_000 }),
    });

    const text = await metrics.render();
    expect(sample(text, 'actiongate_outbox_depth{route="erp"}')).toBe(2);
    // Empty is 0, not absent, for every configured route: `actiongate_dead_letters > 0` alerts work.
    expect(sample(text, 'actiongate_outbox_depth{route="crm"}')).toBe(0);
    expect(sample(text, 'actiongate_dead_letters{route="crm"}')).toBe(1);
    expect(sample(text, 'actiongate_dead_letters{route="erp"}')).toBe(0);
    expect(sample(text, 'actiongate_circuit_breaker_state{route="erp"}')).toBe(0);
    expect(sample(text, 'actiongate_circuit_breaker_state{route="crm"}')).toBe(2);
    expect(sample(text, 'actiongate_verification_key_age_seconds{source="url"}')).toBeGreaterThanOrEqual(90);

    // A route removed by a reload disappears from the gauges at the next scrape.
    routes.pop();
    expect(sample(await metrics.render(), 'actiongate_circuit_breaker_state{route="crm"}')).toBeUndefined();
  });

  test("without a key the key age is absent, not zero; a failing store does not break the scrape", async () => {
    const metrics = new GatewayMetrics({ defaultMetrics: false });
    const broken = {
      outbox: { depth: () => Promise.reject(new Error("disk gone")) },
      deadLetters: { countByRoute: () => Promise.reject(new Error("disk gone")) },
    };
    metrics.attach({
      routes: () => [],
      store: broken as never,
      verificationKey: () => ({ source: "url", loadedAt: undefined }),
    });
    const text = await metrics.render();
    expect(text).not.toContain("actiongate_verification_key_age_seconds{");
    expect(text).toContain("# TYPE actiongate_outbox_depth gauge");
  });

  test("a route no longer configured shows while the store holds its events; a store with nothing reads 0", async () => {
    const metrics = new GatewayMetrics({ defaultMetrics: false });
    const store = openMemoryStore({ replayWindowMs: 1000 });
    const breaker = new CircuitBreaker({ failureThreshold: 1, cooldownMs: 1 });
    metrics.attach({
      routes: () => [{ name: "erp", breaker }],
      store,
      verificationKey: () => ({ source: "none", loadedAt: undefined }),
    });
    let text = await metrics.render();
    expect(sample(text, 'actiongate_outbox_depth{route="erp"}')).toBe(0);
    expect(sample(text, 'actiongate_dead_letters{route="erp"}')).toBe(0);
    await store.outbox.add({ id: "a", route: "removed", stage: "deliver", data: "{}", createdAt: 1 });
    text = await metrics.render();
    expect(sample(text, 'actiongate_outbox_depth{route="removed"}')).toBe(1);
    expect(sample(text, 'actiongate_outbox_depth{route="erp"}')).toBe(0);
  });

  test("attempts at outbox stages are counted by route, stage and result", async () => {
    const metrics = new GatewayMetrics({ defaultMetrics: false });
    metrics.recordDelivery("erp", "deliver", "retried");
    metrics.recordDelivery("erp", "deliver", "retried");
    metrics.recordDelivery("erp", "deliver", "delivered");
    metrics.recordDelivery("erp", "resume", "dead_lettered");
    const text = await metrics.render();
    expect(sample(text, 'actiongate_deliveries_total{route="erp",stage="deliver",result="retried"}')).toBe(2);
    expect(sample(text, 'actiongate_deliveries_total{route="erp",stage="deliver",result="delivered"}')).toBe(1);
    expect(sample(text, 'actiongate_deliveries_total{route="erp",stage="resume",result="dead_lettered"}')).toBe(1);
  });

  test("reloads are counted and the last result is a gauge", async () => {
    const metrics = new GatewayMetrics({ defaultMetrics: false });
    expect(sample(await metrics.render(), "actiongate_config_last_reload_success")).toBe(1);
    metrics.recordReload("failure");
    let text = await metrics.render();
    expect(sample(text, 'actiongate_config_reloads_total{result="failure"}')).toBe(1);
    expect(sample(text, "actiongate_config_last_reload_success")).toBe(0);
    metrics.recordReload("success");
    text = await metrics.render();
    expect(sample(text, 'actiongate_config_reloads_total{result="success"}')).toBe(1);
    expect(sample(text, "actiongate_config_last_reload_success")).toBe(1);
  });

  test("each gateway has its own registry, with the process's default metrics", async () => {
    const first = new GatewayMetrics();
    const second = new GatewayMetrics();
    first.recordCall("erp", "delivered");
    expect(sample(await second.render(), 'actiongate_calls_total{route="erp",outcome="delivered"}')).toBeUndefined();
    expect(sample(await first.render(), "process_resident_memory_bytes")).toBeGreaterThan(0);
  });
});
