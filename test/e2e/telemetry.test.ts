import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DENO, PROJECT_ROOT } from "../../scripts/deno-compile.ts";
import { type CrmServer, startCrmServer } from "../soap/crm-server.ts";
import { generateTestCertificates } from "../support/certs.ts";
import { type GatewayProcess, runBinary, spawnGateway, tempDir, waitFor } from "../support/gateway.ts";
import { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from "../support/otlp-receiver.ts";
import { closedPort, type RecordingServer, startRecordingServer } from "../support/recording-server.ts";
import { fixturePayload, generateTestKeyPair, signedHeaders, uniqueWebhookId } from "../support/signing.ts";

/**
 * Traces from the compiled binary (`npm run build` first) to a local OTLP/HTTP receiver, in both
 * encodings: the spans of sync and async calls, the traceparent each legacy system receives, log
 * lines that lead to their trace, an event's attempts across a restart in one trace, and a
 * collector that is down, hanging or refusing, which changes nothing for the caller.
 */
const keys = generateTestKeyPair();
const INCOMING_TRACE = "0af7651916cd43dd8448eb211c80319c";
const INCOMING = `00-${INCOMING_TRACE}-b7ad6b7169203331-01`;

let legacy: RecordingServer;
let epilot: RecordingServer;

beforeAll(async () => {
  legacy = await startRecordingServer();
  epilot = await startRecordingServer({ status: 200, body: {} });
});
afterAll(async () => {
  await legacy.close();
  await epilot.close();
});

interface GatewayOptions {
  telemetry?: string;
  store?: boolean;
  admin?: boolean;
  routes?: string;
}

function config(options: GatewayOptions): string {
  return `
server: { host: 127.0.0.1, port: 0, shutdown_timeout: 3s }
${options.admin ? "admin: { host: 127.0.0.1, port: 0 }" : ""}
verification: { public_key: "${keys.whpk}" }
${options.store ? "store: { path: ./data/actiongate.db }" : ""}
epilot: { callback_hosts: ["127.0.0.1:${epilot.port}"], timeout: 2s }
${options.telemetry ? `telemetry: ${options.telemetry}` : ""}
routes:
${
  options.routes ??
  `  - name: erp-sync
    transform: '{ "contract": data.entity.contract_number }'
    target: { type: http, url: "${legacy.url}/api/contracts", timeout: 2s }`
}
`;
}

async function startGateway(
  options: GatewayOptions,
  dir = tempDir(),
  env: Record<string, string> = {},
): Promise<GatewayProcess> {
  mkdirSync(join(dir, "data"), { recursive: true });
  await Bun.write(join(dir, "config.yaml"), config(options));
  return spawnGateway(["serve", "--config", "config.yaml"], { cwd: dir, env });
}

async function send(
  gateway: GatewayProcess,
  route: string,
  options: { payload?: object; headers?: Record<string, string>; id?: string } = {},
): Promise<Response> {
  const text = JSON.stringify(options.payload ?? withoutCallback());
  return fetch(`${gateway.url}/actions/${route}`, {
    method: "POST",
    body: text,
    headers: {
      ...signedHeaders(text, { privateKey: keys.privateKey, ...(options.id ? { id: options.id } : {}) }),
      ...options.headers,
    },
  });
}

/** The fixture payload without its callback: a call whose workflow does not wait. */
function withoutCallback(): Record<string, any> {
  const payload = fixturePayload();
  delete payload.data.callback_post_url;
  delete payload.data.resume_token;
  return payload;
}

function withCallback(): Record<string, any> {
  const payload = fixturePayload();
  payload.data.callback_post_url = `${epilot.url}/v1/automation/public/executions:resume`;
  return payload;
}

/** The W3C header's parts. */
function traceparentOf(value: unknown): { traceId: string; spanId: string; flags: string } {
  const [, traceId, spanId, flags] = String(value).split("-");
  return { traceId: traceId!, spanId: spanId!, flags: flags! };
}

function byName(spans: readonly ReceivedSpan[], name: string): ReceivedSpan[] {
  return spans.filter((span) => span.name === name);
}

describe("a traced gateway (binary)", () => {
  let collector: OtlpReceiver;
  beforeAll(async () => {
    collector = await startOtlpReceiver();
  });
  afterAll(() => collector.close());

  test("done: an async call retried twice, then delivered, then resumed, is one trace (http/protobuf)", async () => {
    const gateway = await startGateway({
      store: true,
      telemetry: `{ otlp_endpoint: "${collector.url}", protocol: http/protobuf, service_name: erp-gateway }`,
      routes: `  - name: erp-async
    transform: '{ "contract": data.entity.contract_number }'
    target: { type: http, url: "${legacy.url}/api/contracts", timeout: 2s }
    delivery: { mode: async, max_attempts: 5, backoff: { initial: 50ms, max: 100ms } }`,
    });
    try {
      legacy.requests.length = 0;
      epilot.requests.length = 0;
      let calls = 0;
      legacy.respondWith(() => (++calls <= 2 ? { status: 503, body: "maintenance" } : { status: 200, body: {} }));
      const id = uniqueWebhookId();
      const response = await send(gateway, "erp-async", { payload: withCallback(), id });
      expect(response.status).toBe(202);
      await waitFor(() => epilot.requests.length === 1, 10_000, "the resume call");

      // server + verify + transform, 3 deliver attempts with a request each, the resume attempt with its call.
      const spans = (await collector.waitForSpans(11)).filter(
        (span) => span.resource["service.name"] === "erp-gateway",
      );
      expect(spans).toHaveLength(11);
      const [server] = byName(spans, "POST /actions/{route}");
      expect(new Set(spans.map((span) => span.traceId))).toEqual(new Set([server!.traceId]));
      expect(server).toMatchObject({
        kind: "server",
        parentSpanId: "",
        attributes: {
          "actiongate.route": "erp-async",
          "actiongate.outcome": "accepted",
          "actiongate.webhook_id": id,
          "http.response.status_code": 202,
        },
      });
      for (const name of ["verify", "transform"]) {
        expect(byName(spans, name)[0]).toMatchObject({ kind: "internal", parentSpanId: server!.spanId });
      }

      const attempts = byName(spans, "deliver").sort(
        (a, b) => Number(a.attributes["actiongate.attempt"]) - Number(b.attributes["actiongate.attempt"]),
      );
      expect(
        attempts.map((span) => [
          span.parentSpanId,
          span.attributes["actiongate.attempt"],
          span.attributes["actiongate.decision"],
        ]),
      ).toEqual([
        [server!.spanId, 1, "retry"],
        [server!.spanId, 2, "retry"],
        [server!.spanId, 3, "done"],
      ]);
      // Each attempt's request is a client span inside it, and the legacy system got exactly that span's traceparent.
      const requests = spans.filter(
        (span) => span.kind === "client" && span.attributes["actiongate.target.type"] === "http",
      );
      expect(requests).toHaveLength(3);
      for (const [index, attempt] of attempts.entries()) {
        const request = requests.find((span) => span.parentSpanId === attempt.spanId)!;
        expect(request.attributes).toMatchObject({
          "server.address": "127.0.0.1",
          "server.port": legacy.port,
          "http.response.status_code": index < 2 ? 503 : 200,
        });
        expect(traceparentOf(legacy.requests[index]!.headers.traceparent)).toEqual({
          traceId: server!.traceId,
          spanId: request.spanId,
          flags: "01",
        });
      }

      const [resume] = byName(spans, "resume");
      expect(resume).toMatchObject({ parentSpanId: server!.spanId, attributes: { "actiongate.decision": "done" } });
      const resumeCall = spans.find((span) => span.attributes["actiongate.epilot.call"] === "resume")!;
      expect(resumeCall).toMatchObject({
        kind: "client",
        parentSpanId: resume!.spanId,
        attributes: { "server.port": epilot.port, "http.response.status_code": 200 },
      });
      expect(epilot.requests[0]!.headers).not.toHaveProperty("traceparent");

      // Log lines lead to the trace: the call's line to its server span, each retry's to its attempt.
      const logs = gateway.logs();
      expect(logs.find((line) => line.msg === "call" && line.webhook_id === id)).toMatchObject({
        trace_id: server!.traceId,
        span_id: server!.spanId,
      });
      const retries = logs.filter((line) => line.msg === "attempt failed, will retry" && line.webhook_id === id);
      expect(retries.map((line) => [line.trace_id, line.span_id])).toEqual(
        attempts.slice(0, 2).map((span) => [server!.traceId, span.spanId]),
      );
    } finally {
      legacy.respondWith({ status: 200, body: { ok: true } });
      await gateway.stop();
    }
  });

  test("sync (http/json): the caller's traceparent is continued, the target gets its own client span's", async () => {
    const gateway = await startGateway({ telemetry: `{ otlp_endpoint: "${collector.url}", protocol: http/json }` });
    try {
      legacy.requests.length = 0;
      const before = collector.spans().length;
      const response = await send(gateway, "erp-sync", { headers: { traceparent: INCOMING, tracestate: "epilot=1" } });
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({});
      const spans = (await collector.waitForSpans(before + 4)).slice(before);
      const [server] = byName(spans, "POST /actions/{route}");
      expect(server).toMatchObject({
        traceId: INCOMING_TRACE,
        parentSpanId: "b7ad6b7169203331",
        attributes: {
          "actiongate.route": "erp-sync",
          "actiongate.outcome": "delivered",
          "http.response.status_code": 200,
        },
      });
      const [client] = byName(spans, "POST");
      expect(client).toMatchObject({ kind: "client", parentSpanId: server!.spanId, traceId: INCOMING_TRACE });
      const received = legacy.requests[0]!.headers;
      expect(traceparentOf(received.traceparent)).toEqual({
        traceId: INCOMING_TRACE,
        spanId: client!.spanId,
        flags: "01",
      });
      expect(received.tracestate).toBe("epilot=1");
      expect(received.traceparent).not.toBe(INCOMING);
    } finally {
      await gateway.stop();
    }
  });

  test("a malformed traceparent is ignored: the same answer, a new trace", async () => {
    const gateway = await startGateway({ telemetry: `{ otlp_endpoint: "${collector.url}" }` });
    try {
      const before = collector.spans().length;
      const response = await send(gateway, "erp-sync", { headers: { traceparent: "00-zzzz-not-a-trace-01" } });
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({});
      const spans = (await collector.waitForSpans(before + 4)).slice(before);
      const [server] = byName(spans, "POST /actions/{route}");
      expect(server!.parentSpanId).toBe("");
      expect(server!.traceId).toMatch(/^[0-9a-f]{32}$/);
    } finally {
      await gateway.stop();
    }
  });

  test("a SOAP target gets the traceparent of its request, whose span names the operation", async () => {
    const crm: CrmServer = await startCrmServer();
    const dir = tempDir({ "crm.wsdl": crm.wsdl });
    const gateway = await startGateway(
      {
        telemetry: `{ otlp_endpoint: "${collector.url}" }`,
        routes: `  - name: crm-customer
    transform: '{ "CustomerNumber": data.entity.customer_number, "Name": data.entity._title }'
    target: { type: soap, wsdl: ./crm.wsdl, operation: CreateCustomer, version: "1.1" }`,
      },
      dir,
    );
    try {
      const before = collector.spans().length;
      expect((await send(gateway, "crm-customer")).status).toBe(200);
      const spans = (await collector.waitForSpans(before + 4)).slice(before);
      const client = spans.find((span) => span.kind === "client")!;
      expect(client.attributes).toMatchObject({
        "actiongate.target.type": "soap",
        "actiongate.soap.operation": "CreateCustomer",
        "http.response.status_code": 200,
      });
      expect(traceparentOf(crm.calls[0]!.headers.traceparent)).toEqual({
        traceId: client.traceId,
        spanId: client.spanId,
        flags: "01",
      });
    } finally {
      await gateway.stop();
      await crm.close();
    }
  });

  test("an event accepted before a restart is delivered after it, in the trace of the call that was accepted", async () => {
    const down = await closedPort();
    const dir = tempDir();
    const route = (url: string) => `  - name: erp-async
    target: { type: http, url: "${url}/api/contracts", timeout: 1s }
    delivery: { mode: async, max_attempts: 20, backoff: { initial: 50ms, max: 100ms } }`;
    const telemetry = `{ otlp_endpoint: "${collector.url}" }`;
    const before = collector.spans().length;
    let gateway = await startGateway({ store: true, telemetry, routes: route(`http://127.0.0.1:${down}`) }, dir);
    const id = uniqueWebhookId();
    try {
      expect((await send(gateway, "erp-async", { id })).status).toBe(202);
      await waitFor(
        () => gateway.logs().some((line) => line.msg === "attempt failed, will retry"),
        5_000,
        "a failed attempt",
      );
    } finally {
      await gateway.stop();
    }
    legacy.requests.length = 0;
    gateway = await startGateway({ store: true, telemetry, routes: route(legacy.url) }, dir);
    try {
      await waitFor(() => legacy.requests.length === 1, 10_000, "the delivery after the restart");
      await gateway.stop();
      const spans = collector.spans().slice(before);
      const server = spans.find(
        (span) => span.name === "POST /actions/{route}" && span.attributes["actiongate.webhook_id"] === id,
      )!;
      const delivered = spans.find(
        (span) =>
          span.name === "deliver" &&
          span.attributes["actiongate.webhook_id"] === id &&
          span.attributes["actiongate.decision"] === "done",
      )!;
      expect(delivered).toMatchObject({ traceId: server.traceId, parentSpanId: server.spanId });
      // Two processes, one trace.
      expect(delivered.resource["service.instance.id"]).not.toBe(server.resource["service.instance.id"]);
      expect(traceparentOf(legacy.requests[0]!.headers.traceparent).traceId).toBe(server.traceId);
    } finally {
      await gateway.stop();
    }
  });
});

describe("a collector over HTTPS with a private CA (binary)", () => {
  test("OpenTelemetry's OTEL_EXPORTER_OTLP_CERTIFICATE trusts its CA and OTEL_EXPORTER_OTLP_HEADERS adds headers; without the CA the spans are dropped", async () => {
    const certs = generateTestCertificates();
    const collector = await startOtlpReceiver({ tls: { cert: certs.serverCert, key: certs.serverKey } });
    const telemetry = `{ otlp_endpoint: "${collector.url}", headers: { x-scope-orgid: gateway-7 }, timeout: 1s }`;
    try {
      const trusted = await startGateway({ telemetry }, tempDir(), {
        OTEL_EXPORTER_OTLP_CERTIFICATE: certs.caFile,
        OTEL_EXPORTER_OTLP_HEADERS: "x-tenant=acme,x-scope-orgid=from-env",
      });
      try {
        expect((await send(trusted, "erp-sync")).status).toBe(200);
        await collector.waitForSpans(4);
        // The config's headers win over the environment's; the environment adds what the config lacks.
        expect(collector.exports[0]!.headers).toMatchObject({ "x-tenant": "acme", "x-scope-orgid": "gateway-7" });
      } finally {
        await trusted.stop();
      }
      const untrusting = await startGateway({ admin: true, telemetry });
      try {
        expect((await send(untrusting, "erp-sync")).status).toBe(200);
        await waitFor(
          () => untrusting.logs().some((line) => String(line.msg).startsWith("trace spans dropped")),
          10_000,
          "the dropped spans line",
        );
        expect(collector.spans()).toHaveLength(4);
      } finally {
        await untrusting.stop();
      }
    } finally {
      await collector.close();
    }
  });
});

describe("a collector that fails changes nothing for the caller (binary)", () => {
  /** Median time of `count` sync calls, after one warm-up call. */
  async function medianCallMs(gateway: GatewayProcess, count: number): Promise<number> {
    await send(gateway, "erp-sync");
    const times: number[] = [];
    for (let i = 0; i < count; i++) {
      const started = performance.now();
      const response = await send(gateway, "erp-sync");
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({});
      times.push(performance.now() - started);
    }
    return times.sort((a, b) => a - b)[Math.floor(times.length / 2)]!;
  }

  test("down, hanging or answering 500: every call answered as without tracing, drops counted, one log line each", async () => {
    const hanging = await startOtlpReceiver({ mode: { kind: "hang" } });
    const refusing = await startOtlpReceiver({ mode: { kind: "status", status: 500 } });
    const collectors = {
      down: `http://127.0.0.1:${await closedPort()}`,
      hanging: hanging.url,
      refusing: refusing.url,
    };
    const untraced = await startGateway({});
    try {
      const baseline = await medianCallMs(untraced, 30);
      for (const [kind, url] of Object.entries(collectors)) {
        const gateway = await startGateway({ admin: true, telemetry: `{ otlp_endpoint: "${url}", timeout: 1s }` });
        try {
          const median = await medianCallMs(gateway, 30);
          // Within noise of the same calls without tracing (a shared machine: a generous bound).
          expect(
            median,
            `${kind}: ${median.toFixed(1)} ms against ${baseline.toFixed(1)} ms without tracing`,
          ).toBeLessThan(baseline * 2 + 10);
          const admin = `http://127.0.0.1:${gateway.logs().find((line) => line.msg === "listening")!.admin_port}`;
          await waitFor(
            async () =>
              /actiongate_telemetry_dropped_spans_total\{reason="export_failed"\} [1-9]/.test(
                await (await fetch(`${admin}/metrics`)).text(),
              ),
            10_000,
            `${kind}: dropped spans counted`,
          );
          const warnings = gateway.logs().filter((line) => String(line.msg).startsWith("trace spans dropped"));
          expect(warnings, kind).toHaveLength(1);
        } finally {
          await gateway.stop();
        }
      }
    } finally {
      await untraced.stop();
      await hanging.close();
      await refusing.close();
    }
  }, 60_000);
});

describe("tracing off (binary)", () => {
  test("no traceparent reaches the target, not even the caller's; a route cannot forward one", async () => {
    const gateway = await startGateway({});
    try {
      legacy.requests.length = 0;
      expect((await send(gateway, "erp-sync", { headers: { traceparent: INCOMING } })).status).toBe(200);
      expect(legacy.requests[0]!.headers).not.toHaveProperty("traceparent");
      expect(gateway.logs().find((line) => line.msg === "call")).not.toHaveProperty("trace_id");
    } finally {
      await gateway.stop();
    }
    const dir = tempDir({
      "config.yaml": config({
        routes: `  - name: erp
    forward_headers: [traceparent]
    target: { type: http, url: "${legacy.url}/api" }`,
      }),
    });
    const validate = await runBinary(["validate", "--config", "config.yaml"], { cwd: dir });
    expect(validate.code).toBe(1);
    expect(validate.stderr + validate.stdout).toContain("traceparent is set by the route's target");
  });
});

describe("tracing under Deno", () => {
  test("deno run: the same spans reach the collector, and the target gets their traceparent", async () => {
    const collector = await startOtlpReceiver();
    const dir = tempDir({
      "config.yaml": config({ telemetry: `{ otlp_endpoint: "${collector.url}", protocol: http/json }` }),
    });
    const denoDir = join(tmpdir(), "actiongate-test-deno-cache");
    mkdirSync(denoDir, { recursive: true });
    const gateway = await spawnGateway(
      ["run", "--allow-all", join(PROJECT_ROOT, "src", "main.ts"), "serve", "--config", join(dir, "config.yaml")],
      { cwd: PROJECT_ROOT, executable: DENO, env: { DENO_DIR: denoDir, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" } },
    );
    try {
      legacy.requests.length = 0;
      expect((await send(gateway, "erp-sync", { headers: { traceparent: INCOMING } })).status).toBe(200);
      const spans = await collector.waitForSpans(4);
      const client = spans.find((span) => span.kind === "client")!;
      expect(client.traceId).toBe(INCOMING_TRACE);
      expect(traceparentOf(legacy.requests[0]!.headers.traceparent).spanId).toBe(client.spanId);
      expect(gateway.logs().find((line) => line.msg === "listening")?.runtime).toBe("deno");
    } finally {
      await gateway.stop();
      await collector.close();
    }
  }, 60_000);
});
