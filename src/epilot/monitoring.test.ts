import { afterEach, describe, expect, test } from "bun:test";
import { waitFor } from "../../test/support/gateway.ts";
import { type IntegrationToolkit, startIntegrationToolkit } from "../../test/support/integration-toolkit.ts";
import { closedPort } from "../../test/support/recording-server.ts";
import { createLogger } from "../log/logger.ts";
import { type MonitoringEndpoint, MonitoringReporter, type MonitoringSpan, type SpanResult } from "./monitoring.ts";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function span(n: number, overrides: Partial<MonitoringSpan> = {}): MonitoringSpan {
  return {
    correlation_id: `evt_${n}`,
    level: "success",
    use_case_slug: "erp_sync",
    occurred_at: new Date().toISOString(),
    message: `Delivered ${n}`,
    detail: { route: "erp", attempt: 1 },
    ...overrides,
  };
}

async function standIn(): Promise<IntegrationToolkit> {
  const toolkit = await startIntegrationToolkit();
  cleanups.push(() => toolkit.close());
  return toolkit;
}

function reporter(
  endpoint: MonitoringEndpoint | undefined,
  options: Partial<ConstructorParameters<typeof MonitoringReporter>[0]> = {},
) {
  const counts: Partial<Record<SpanResult, number>> = {};
  const lines: string[] = [];
  const instance = new MonitoringReporter({
    endpoint: () => endpoint,
    logger: createLogger({ level: "debug", sink: (line) => lines.push(line) }),
    userAgent: "actiongate/test",
    onSpans: (result, count) => (counts[result] = (counts[result] ?? 0) + count),
    flushIntervalMs: 20,
    retryDelayMs: 20,
    ...options,
  });
  cleanups.push(() => instance.stop(200));
  instance.start();
  return { instance, counts, logs: () => lines.map((line) => JSON.parse(line) as Record<string, any>) };
}

const endpointOf = (toolkit: IntegrationToolkit): MonitoringEndpoint => ({
  apiUrl: toolkit.url,
  integrationId: toolkit.integrationId,
  token: toolkit.monitoringToken,
  timeoutMs: 1_000,
});

describe("MonitoringReporter", () => {
  test("sends spans in the order reported, at most 100 a request", async () => {
    const toolkit = await standIn();
    const { instance, counts } = reporter(endpointOf(toolkit));
    for (let n = 0; n < 250; n++) instance.report(span(n));
    await waitFor(() => toolkit.spans.length === 250 && counts.sent === 250, 5_000, "every span received");
    expect(toolkit.monitoringRequests).toEqual([100, 100, 50]);
    expect(toolkit.spans.map((received) => received.correlation_id)).toEqual(
      Array.from({ length: 250 }, (_, n) => `evt_${n}`),
    );
    expect(counts).toEqual({ sent: 250 });
    expect(instance.queued).toBe(0);
  });

  test("report() returns at once and never throws while epilot is unreachable; the queue stays bounded", async () => {
    const port = await closedPort();
    const { instance, counts } = reporter(
      { apiUrl: `http://127.0.0.1:${port}`, integrationId: "i", token: "t", timeoutMs: 500 },
      { maxQueued: 100 },
    );
    const started = performance.now();
    for (let n = 0; n < 5_000; n++) instance.report(span(n));
    expect(performance.now() - started).toBeLessThan(200);
    expect(instance.queued).toBeLessThanOrEqual(200);
    expect(counts.dropped).toBeGreaterThanOrEqual(4_800);
  });

  test("a batch epilot fails (503) is tried again and arrives once", async () => {
    const toolkit = await standIn();
    toolkit.monitoringFailure = { status: 503 };
    const { instance, counts, logs } = reporter(endpointOf(toolkit));
    instance.report(span(1));
    instance.report(span(2));
    await waitFor(() => logs().some((line) => line.msg.includes("tried again")), 5_000, "a failed try");
    toolkit.monitoringFailure = undefined;
    await waitFor(() => toolkit.spans.length === 2, 5_000, "both spans received");
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(toolkit.spans.map((received) => received.correlation_id)).toEqual(["evt_1", "evt_2"]);
    expect(counts).toEqual({ sent: 2 });
  });

  test("a batch that keeps failing is dropped after its tries, counted and logged; later spans still go", async () => {
    const toolkit = await standIn();
    toolkit.monitoringFailure = "destroy";
    const { instance, counts, logs } = reporter(endpointOf(toolkit), { maxAttempts: 3 });
    instance.report(span(1));
    await waitFor(() => counts.dropped === 1, 5_000, "the span dropped");
    expect(logs().find((line) => line.msg === "epilot monitoring spans dropped")).toMatchObject({ dropped: 1 });
    toolkit.monitoringFailure = undefined;
    instance.report(span(2));
    await waitFor(() => toolkit.spans.length === 1, 5_000, "the next span received");
    expect(toolkit.spans[0]!.correlation_id).toBe("evt_2");
  });

  test("a refused token drops the batch at once (no retry), says what to check, and never logs the token", async () => {
    const toolkit = await standIn();
    const { instance, counts, logs } = reporter({ ...endpointOf(toolkit), token: "wrong-token-4711" });
    instance.report(span(1));
    await waitFor(() => counts.dropped === 1, 5_000, "the span dropped");
    expect(toolkit.monitoringRequests).toEqual([]);
    const line = logs().find((entry) => entry.msg.includes("refused the spans"));
    expect(line?.reason).toContain("HTTP 401");
    expect(JSON.stringify(logs())).not.toContain("wrong-token-4711");
  });

  test("spans epilot refuses one by one are counted as rejected", async () => {
    const toolkit = await standIn();
    const { instance, counts } = reporter(endpointOf(toolkit));
    instance.report(span(1));
    instance.report(span(2, { correlation_id: "" }));
    await waitFor(() => counts.sent === 1 && counts.rejected === 1, 5_000, "one sent, one rejected");
  });

  test("stop() sends what is queued; with epilot down it ends within its deadline and counts what is left", async () => {
    const toolkit = await standIn();
    const { instance } = reporter(endpointOf(toolkit), { flushIntervalMs: 60_000 });
    instance.report(span(1));
    await instance.stop(2_000);
    expect(toolkit.spans.map((received) => received.correlation_id)).toEqual(["evt_1"]);

    toolkit.monitoringFailure = { status: 503 };
    const down = reporter(endpointOf(toolkit), { flushIntervalMs: 60_000 });
    down.instance.report(span(2));
    const started = Date.now();
    await down.instance.stop(300);
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(down.counts.dropped).toBe(1);
  });

  test("without monitoring configured, report() keeps nothing", async () => {
    const { instance } = reporter(undefined);
    instance.report(span(1));
    expect(instance.queued).toBe(0);
  });
});
