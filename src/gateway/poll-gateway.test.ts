import { afterEach, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { type InProcessGateway, startInProcessGateway, waitFor } from "../../test/support/gateway.ts";
import { type IntegrationToolkit, startIntegrationToolkit } from "../../test/support/integration-toolkit.ts";
import { startOtlpReceiver } from "../../test/support/otlp-receiver.ts";
import { type RecordingServer, startRecordingServer } from "../../test/support/recording-server.ts";
import { silentLogger } from "../log/logger.ts";
import { createConfigReloader } from "./reload.ts";

/** The gateway's wiring of poll sources and monitoring, in process: readiness, reload, the spans' use case. */
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(): Promise<{ toolkit: IntegrationToolkit; legacy: RecordingServer }> {
  const toolkit = await startIntegrationToolkit({ visibilityTimeoutMs: 1_000 });
  const legacy = await startRecordingServer();
  cleanups.push(
    () => toolkit.close(),
    () => legacy.close(),
  );
  return { toolkit, legacy };
}

function yaml(
  toolkit: IntegrationToolkit,
  legacy: RecordingServer,
  options: { slug?: string; routes?: string; token?: string; telemetry?: string } = {},
) {
  return `
${options.telemetry ? `telemetry: ${options.telemetry}` : ""}
server: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
store: { path: store.db }
epilot:
  monitoring: { integration_id: ${toolkit.integrationId}, token: ${toolkit.monitoringToken}, use_case_slug: ${options.slug ?? "erp_sync"}, api_url: "${toolkit.url}" }
poll:
  - { name: feed, integration_id: ${toolkit.integrationId}, token: ${options.token ?? toolkit.consumerToken}, api_url: "${toolkit.url}", interval: 100ms, timeout: 1s }
routes:
  - name: contracts
    match: { source: feed }
    target: { type: http, url: "${legacy.url}/contracts", timeout: 1s }
    delivery: { backoff: { initial: 10ms, max: 10ms } }
${options.routes ?? ""}`;
}

async function gatewayOf(text: string): Promise<InProcessGateway> {
  const gateway = await startInProcessGateway(text);
  cleanups.push(() => gateway.stop());
  return gateway;
}

describe("a gateway with poll sources", () => {
  test("has no public listener; /readyz shows each source; metrics count its messages", async () => {
    const { toolkit, legacy } = await setup();
    const gateway = await gatewayOf(yaml(toolkit, legacy));
    expect(gateway.gateway.port).toBeUndefined();
    expect(gateway.gateway.listensForCalls).toBe(false);
    toolkit.enqueue([{}, {}]);
    await waitFor(() => legacy.requests.length === 2, 5_000, "both delivered");
    const report = (await (await fetch(`${gateway.adminUrl}/readyz`)).json()) as any;
    expect(report.ready).toBe(true);
    expect(report.checks.verification_key).toEqual({ ok: true, source: "none" });
    expect(report.checks.poll.sources.feed).toMatchObject({ ok: true, state: "polling" });
    expect(report.checks.poll.sources.feed.last_success_at).toBeString();
    const metrics = await (await fetch(`${gateway.adminUrl}/metrics`)).text();
    expect(metrics).toContain('actiongate_poll_messages_total{source="feed",result="stored"} 2');
    expect(metrics).toContain('actiongate_poll_acks_total{source="feed",result="accepted"} 2');
    expect(metrics).toMatch(/actiongate_poll_last_success_timestamp_seconds\{source="feed"\} \d/);
    expect(metrics).toContain('actiongate_poll_lag_seconds{source="feed"}');
  });

  test("a reload takes effect for routes and monitoring; poll needs a restart, and a route may not name a source that is not running", async () => {
    const { toolkit, legacy } = await setup();
    const gateway = await gatewayOf(yaml(toolkit, legacy));
    const reloader = createConfigReloader({
      file: gateway.file,
      env: {},
      gateway: gateway.gateway,
      logger: silentLogger,
      userAgent: "actiongate/test",
    });
    writeFileSync(gateway.file, yaml(toolkit, legacy, { slug: "renamed_use_case", token: "a-new-token" }));
    expect(await reloader.reload("SIGHUP")).toMatchObject({ kind: "reloaded", restartOnly: ["poll"] });
    toolkit.enqueue([{}]);
    await waitFor(() => toolkit.spans.some((span) => span.level === "success"), 5_000, "the span of the delivery");
    expect(new Set(toolkit.spans.map((span) => span.use_case_slug))).toEqual(new Set(["renamed_use_case"]));

    writeFileSync(
      gateway.file,
      yaml(toolkit, legacy, {
        routes: `  - name: billing\n    match: { source: billing-feed }\n    target: { type: http, url: "${legacy.url}/billing" }\n`,
      }).replace(
        "routes:",
        `  - { name: billing-feed, integration_id: other, token: t, api_url: "${toolkit.url}" }\nroutes:`,
      ),
    );
    const refused = await reloader.reload("SIGHUP");
    expect(refused.kind).toBe("refused");
    expect(refused.kind === "refused" && refused.problems.join("\n")).toContain(
      "routes[1].match.source: names a poll entry that is not running; adding one needs a restart",
    );
  });

  test("traced: each poll and ack request a client span, each message stored a consumer span, its attempts in that trace", async () => {
    const { toolkit, legacy } = await setup();
    const collector = await startOtlpReceiver();
    cleanups.push(() => collector.close());
    legacy.respondWith((request) => ({ status: legacy.requests.indexOf(request) === 0 ? 503 : 200 }));
    const gateway = await gatewayOf(yaml(toolkit, legacy, { telemetry: `{ otlp_endpoint: "${collector.url}" }` }));
    toolkit.enqueue([{}]);
    await waitFor(() => legacy.requests.length === 2, 5_000, "delivered on the second attempt");
    await gateway.stop();
    const spans = collector.spans();
    const consumer = spans.find((span) => span.name === "store message");
    expect(consumer).toMatchObject({ kind: "consumer", attributes: { "actiongate.route": "contracts" } });
    const poll = spans.find((span) => span.spanId === consumer!.parentSpanId);
    expect(poll).toMatchObject({
      name: "poll",
      kind: "client",
      parentSpanId: "",
      attributes: { "actiongate.poll.source": "feed", "messaging.batch.message_count": 1 },
    });
    expect(spans.find((span) => span.name === "ack" && span.parentSpanId === poll!.spanId)).toMatchObject({
      kind: "client",
      status: { code: "unset" },
    });
    // Both attempts are spans of the message's trace, under its consumer span; the target saw that trace.
    const attempts = spans.filter((span) => span.parentSpanId === consumer!.spanId);
    expect(attempts).toHaveLength(2);
    expect(attempts.every((span) => span.traceId === poll!.traceId)).toBe(true);
    for (const request of legacy.requests) expect(request.headers.traceparent).toContain(poll!.traceId);
  });
});
