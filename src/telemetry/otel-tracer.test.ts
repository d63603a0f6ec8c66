import { afterEach, describe, expect, test } from "bun:test";
import { createServer } from "node:net";
import { type OtlpReceiver, startOtlpReceiver } from "../../test/support/otlp-receiver.ts";
import { telemetrySchema } from "./schema.ts";
import { type DroppedSpansReason, startTelemetry, type Telemetry } from "./setup.ts";
import { readTraceContext } from "./tracer.ts";

/**
 * The OpenTelemetry-backed tracer against a real OTLP/HTTP receiver on 127.0.0.1, in both
 * encodings: what a collector receives (names, kinds, attributes, parent links, the resource), how
 * trace context comes in and goes out, sampling, and what a collector that is down, refusing or
 * hanging costs (nothing for the caller; counted drops and a rate-limited log line).
 */

const INCOMING = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

interface LogLine {
  level: "warn" | "info";
  msg: string;
  fields: Record<string, unknown>;
}

interface Started {
  telemetry: Telemetry;
  logs: LogLine[];
  drops: { reason: DroppedSpansReason; count: number }[];
  dropped(reason?: DroppedSpansReason): number;
}

const running: Telemetry[] = [];
const receivers: OtlpReceiver[] = [];

afterEach(async () => {
  await Promise.all(running.splice(0).map((telemetry) => telemetry.shutdown()));
  await Promise.all(receivers.splice(0).map((receiver) => receiver.close()));
});

async function receiver(...args: Parameters<typeof startOtlpReceiver>): Promise<OtlpReceiver> {
  const started = await startOtlpReceiver(...args);
  receivers.push(started);
  return started;
}

async function start(config: Record<string, unknown>, scheduledDelayMs = 20): Promise<Started> {
  const logs: LogLine[] = [];
  const drops: { reason: DroppedSpansReason; count: number }[] = [];
  const telemetry = await startTelemetry(telemetrySchema.parse(config), {
    logger: {
      warn: (msg, fields = {}) => logs.push({ level: "warn", msg, fields }),
      info: (msg, fields = {}) => logs.push({ level: "info", msg, fields }),
    },
    onDropped: (reason, count) => drops.push({ reason, count }),
    serviceVersion: "9.9.9",
    scheduledDelayMs,
  });
  running.push(telemetry);
  return {
    telemetry,
    logs,
    drops,
    dropped: (reason) =>
      drops.filter((drop) => reason === undefined || drop.reason === reason).reduce((sum, drop) => sum + drop.count, 0),
  };
}

/** A port on 127.0.0.1 where nothing listens: a collector that is down. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function waitFor(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error("timed out waiting");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe.each(["http/protobuf", "http/json"] as const)("exported over %s", (protocol) => {
  test("a server span continues the incoming traceparent; its children link to it; the resource names the service", async () => {
    const collector = await receiver();
    const { telemetry } = await start({
      otlp_endpoint: collector.url,
      protocol,
      service_name: "gateway-under-test",
      headers: { authorization: "Bearer otlp-secret" },
    });
    const server = telemetry.tracer.startServerSpan(
      "POST /actions/{route}",
      new Headers({ traceparent: INCOMING, tracestate: "vendor=abc" }),
      { "http.request.method": "POST", ignored: undefined },
    );
    const verify = server.child("verify", "internal");
    verify.end();
    const client = server.child("POST", "client", { "server.address": "erp.local", "server.port": 8443 });
    client.setAttributes({ "http.response.status_code": 503, "actiongate.retried": true });
    client.fail("target answered HTTP 503");
    client.end();
    server.setAttributes({ "actiongate.outcome": "target_failed" });
    server.end();

    const spans = await collector.waitForSpans(3);
    const byName = Object.fromEntries(spans.map((span) => [span.name, span]));
    const serverSpan = byName["POST /actions/{route}"]!;
    expect(serverSpan).toMatchObject({
      traceId: "0af7651916cd43dd8448eb211c80319c",
      parentSpanId: "b7ad6b7169203331",
      traceState: "vendor=abc",
      kind: "server",
      attributes: { "http.request.method": "POST", "actiongate.outcome": "target_failed" },
      status: { code: "unset" },
    });
    expect(serverSpan.attributes).not.toHaveProperty("ignored");
    expect(byName.verify).toMatchObject({
      kind: "internal",
      parentSpanId: serverSpan.spanId,
      traceId: serverSpan.traceId,
    });
    expect(byName.POST).toMatchObject({
      kind: "client",
      parentSpanId: serverSpan.spanId,
      attributes: {
        "server.address": "erp.local",
        "server.port": 8443,
        "http.response.status_code": 503,
        "actiongate.retried": true,
      },
      status: { code: "error", message: "target answered HTTP 503" },
    });
    expect(serverSpan.resource).toMatchObject({ "service.name": "gateway-under-test", "service.version": "9.9.9" });
    expect(typeof serverSpan.resource["service.instance.id"]).toBe("string");
    expect(serverSpan.endNanos).toBeGreaterThanOrEqual(serverSpan.startNanos);

    const sent = collector.exports[0]!;
    expect(sent.path).toBe("/v1/traces");
    expect(sent.contentType).toBe(protocol === "http/json" ? "application/json" : "application/x-protobuf");
    expect(sent.headers.authorization).toBe("Bearer otlp-secret");
  });
});

describe("trace context", () => {
  test("traceHeaders() is this span's W3C context; logFields name its trace and span", async () => {
    const collector = await receiver();
    const { telemetry } = await start({ otlp_endpoint: collector.url });
    const server = telemetry.tracer.startServerSpan(
      "POST /actions/{route}",
      new Headers({ traceparent: INCOMING, tracestate: "vendor=abc" }),
    );
    const client = server.child("POST", "client");
    const headers = client.traceHeaders()!;
    expect(headers.traceparent).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/);
    expect(headers.tracestate).toBe("vendor=abc");
    expect(client.logFields).toEqual({
      trace_id: "0af7651916cd43dd8448eb211c80319c",
      span_id: headers.traceparent.split("-")[2]!,
    });
    client.end();
    server.end();
    const spans = await collector.waitForSpans(2);
    expect(spans.find((span) => span.name === "POST")!.spanId).toBe(headers.traceparent.split("-")[2]!);
  });

  test.each([
    ["not W3C at all", "garbage"],
    ["an all-zero trace id", "00-00000000000000000000000000000000-b7ad6b7169203331-01"],
    ["an all-zero span id", "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01"],
    ["upper-case hex", "00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01"],
    ["version ff", "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"],
    ["a short trace id", "00-0af7651916cd43dd8448eb211c8031-b7ad6b7169203331-01"],
    ["a very long header", `00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01${"-x".repeat(4000)}`],
  ])("a malformed traceparent (%s) is ignored: a new trace starts", async (_what, traceparent) => {
    const collector = await receiver();
    const { telemetry } = await start({ otlp_endpoint: collector.url });
    const server = telemetry.tracer.startServerSpan("POST /actions/{route}", new Headers({ traceparent }));
    expect(server.recording).toBe(true);
    server.end();
    const [span] = await collector.waitForSpans(1);
    expect(span!.parentSpanId).toBe("");
    expect(span!.traceId).not.toBe("0af7651916cd43dd8448eb211c80319c");
    expect(span!.traceId).toMatch(/^[0-9a-f]{32}$/);
  });

  test("startSpan continues a stored context (an outbox event's) in the same trace, as a child of the stored span", async () => {
    const collector = await receiver();
    const { telemetry } = await start({ otlp_endpoint: collector.url });
    const accepted = telemetry.tracer.startServerSpan("POST /actions/{route}", new Headers());
    const stored = accepted.traceHeaders()!;
    accepted.end();
    const attempt = telemetry.tracer.startSpan(
      "deliver",
      "internal",
      readTraceContext(JSON.parse(JSON.stringify(stored))),
      {
        "actiongate.attempt": 2,
      },
    );
    attempt.end();
    const root = telemetry.tracer.startSpan("deliver", "internal", undefined);
    root.end();
    const spans = await collector.waitForSpans(3);
    const [server, continued, fresh] = [spans[0]!, spans[1]!, spans[2]!];
    expect(continued).toMatchObject({
      traceId: server.traceId,
      parentSpanId: server.spanId,
      attributes: { "actiongate.attempt": 2 },
    });
    expect(fresh.parentSpanId).toBe("");
    expect(fresh.traceId).not.toBe(server.traceId);
  });
});

test("the hook for polled messages: a poll span, a consumer span per message, its context stored for the attempts", async () => {
  const collector = await receiver();
  const { telemetry } = await start({ otlp_endpoint: collector.url });
  const poll = telemetry.tracer.startSpan("poll", "client", undefined);
  const message = poll.child("store message", "consumer");
  const stored = message.traceHeaders();
  message.end();
  poll.end();
  telemetry.tracer.startSpan("deliver", "internal", stored).end();
  const spans = await collector.waitForSpans(3);
  const [consumer, pollSpan, attempt] = [spans[0]!, spans[1]!, spans[2]!];
  expect(consumer).toMatchObject({ kind: "consumer", parentSpanId: pollSpan.spanId });
  expect(attempt).toMatchObject({ traceId: pollSpan.traceId, parentSpanId: consumer.spanId });
});

describe("sampling", () => {
  test("sample_ratio 0: new traces are not recorded, yet their traceparent goes on with the sampled flag unset", async () => {
    const collector = await receiver();
    const { telemetry } = await start({ otlp_endpoint: collector.url, sample_ratio: 0 });
    const server = telemetry.tracer.startServerSpan("POST /actions/{route}", new Headers());
    expect(server.recording).toBe(false);
    expect(server.logFields).toEqual({});
    const client = server.child("POST", "client");
    expect(client.recording).toBe(false);
    expect(client.traceHeaders()!.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    // A stored context that was not sampled stays unsampled in its later attempts.
    const later = telemetry.tracer.startSpan("deliver", "internal", server.traceHeaders());
    expect(later.recording).toBe(false);
    client.end();
    server.end();
    later.end();

    // The caller's sampled flag wins over the ratio, both ways.
    const sampledByCaller = telemetry.tracer.startServerSpan(
      "POST /actions/{route}",
      new Headers({ traceparent: INCOMING }),
    );
    expect(sampledByCaller.recording).toBe(true);
    sampledByCaller.end();
    await collector.waitForSpans(1);
    await telemetry.shutdown();
    expect(collector.spans().map((span) => span.traceId)).toEqual(["0af7651916cd43dd8448eb211c80319c"]);
  });

  test("an incoming traceparent with the sampled flag unset is not recorded even at sample_ratio 1", async () => {
    const collector = await receiver();
    const { telemetry } = await start({ otlp_endpoint: collector.url, sample_ratio: 1 });
    const server = telemetry.tracer.startServerSpan(
      "POST /actions/{route}",
      new Headers({ traceparent: INCOMING.replace(/-01$/, "-00") }),
    );
    expect(server.recording).toBe(false);
    expect(server.traceHeaders()!.traceparent).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-00$/);
    server.end();
    await telemetry.shutdown();
    expect(collector.spans()).toEqual([]);
  });
});

describe("a collector that fails costs the caller nothing", () => {
  test("down (connection refused): end() returns at once, the spans are counted as dropped, one log line says so", async () => {
    const port = await closedPort();
    const { telemetry, logs, dropped } = await start({ otlp_endpoint: `http://127.0.0.1:${port}`, timeout: "300ms" });
    const started = performance.now();
    for (let i = 0; i < 20; i++) telemetry.tracer.startServerSpan("POST /actions/{route}", new Headers()).end();
    expect(performance.now() - started).toBeLessThan(50);
    await waitFor(() => dropped("export_failed") === 20);
    // A second batch fails within the minute: counted, not logged again.
    telemetry.tracer.startServerSpan("POST /actions/{route}", new Headers()).end();
    await waitFor(() => dropped("export_failed") === 21);
    const warnings = logs.filter((line) => line.level === "warn");
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.msg).toContain("trace spans dropped");
    expect(warnings[0]!.fields).toMatchObject({ reason: "export_failed", dropped_spans: 20 });
    expect(String(warnings[0]!.fields.error)).toContain("ECONNREFUSED");
  });

  test.each([400, 401, 503])(
    "answering %i: the batch is counted as dropped, and no header value is logged",
    async (status) => {
      const collector = await receiver({ mode: { kind: "status", status } });
      const { telemetry, logs, dropped } = await start({
        otlp_endpoint: collector.url,
        timeout: "300ms",
        headers: { authorization: "Bearer otlp-secret" },
      });
      telemetry.tracer.startServerSpan("POST /actions/{route}", new Headers()).end();
      await waitFor(() => dropped("export_failed") === 1);
      expect(collector.requestCount).toBeGreaterThanOrEqual(1);
      expect(JSON.stringify(logs)).not.toContain("otlp-secret");
      expect(logs.filter((line) => line.level === "warn")).toHaveLength(1);
    },
  );

  test("a collector that works again is logged once", async () => {
    const collector = await receiver({ mode: { kind: "status", status: 503 } });
    const { telemetry, logs, dropped } = await start({ otlp_endpoint: collector.url, timeout: "200ms" });
    telemetry.tracer.startServerSpan("POST /actions/{route}", new Headers()).end();
    await waitFor(() => dropped() === 1);
    collector.setMode({ kind: "accept" });
    telemetry.tracer.startServerSpan("POST /actions/{route}", new Headers()).end();
    await collector.waitForSpans(1);
    await waitFor(() => logs.some((line) => line.msg === "trace export works again"));
    expect(logs.map((line) => line.level)).toEqual(["warn", "info"]);
  });

  test("hanging: spans beyond max_queue_size are dropped and counted at once, memory stays bounded, shutdown is bounded", async () => {
    const collector = await receiver({ mode: { kind: "hang" } });
    const { telemetry, dropped } = await start({
      otlp_endpoint: collector.url,
      timeout: "1s",
      max_queue_size: 64,
    });
    const started = performance.now();
    for (let i = 0; i < 5_000; i++) telemetry.tracer.startServerSpan("POST /actions/{route}", new Headers()).end();
    expect(performance.now() - started).toBeLessThan(1_000);
    // At most the queue and the batch in flight are held; everything else is dropped, never buffered.
    expect(dropped("queue_full")).toBeGreaterThanOrEqual(5_000 - 64 * 2);
    const stopping = performance.now();
    await telemetry.shutdown();
    expect(performance.now() - stopping).toBeLessThan(1_500);
  });
});
