import { afterAll, beforeAll, expect, test } from "bun:test";
import { startInProcessGateway } from "../../test/support/gateway.ts";
import { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from "../../test/support/otlp-receiver.ts";
import { closedPort } from "../../test/support/recording-server.ts";
import { fixturePayload, generateTestKeyPair, signedHeaders, uniqueWebhookId } from "../../test/support/signing.ts";

/**
 * The request path's spans in one process (the binary's are in test/e2e/telemetry.test.ts): what
 * the server span and its verify and transform spans say for calls that fail at each stage.
 */
const keys = generateTestKeyPair();
let collector: OtlpReceiver;
let gateway: Awaited<ReturnType<typeof startInProcessGateway>>;

beforeAll(async () => {
  collector = await startOtlpReceiver();
  const down = await closedPort();
  gateway = await startInProcessGateway(`
server: { host: 127.0.0.1, port: 0 }
verification: { public_key: "${keys.whpk}" }
telemetry: { otlp_endpoint: "${collector.url}" }
routes:
  - name: unreachable
    target: { type: http, url: "http://127.0.0.1:${down}/api", timeout: 1s }
  - name: broken-transform
    transform: '$error("no contract")'
    target: { type: http, url: "http://127.0.0.1:${down}/api" }
`);
});
afterAll(async () => {
  await gateway.stop();
  await collector.close();
});

async function call(route: string, signed = true): Promise<{ status: number; spans: ReceivedSpan[]; id: string }> {
  const id = uniqueWebhookId();
  const body = JSON.stringify(fixturePayload());
  const before = collector.spans().length;
  const response = await fetch(`${gateway.url}/actions/${route}`, {
    method: "POST",
    body,
    headers: signed ? signedHeaders(body, { privateKey: keys.privateKey, id }) : { "content-type": "application/json" },
  });
  await response.arrayBuffer();
  const server = await waitForServerSpan(before);
  return { status: response.status, spans: collector.spans().filter((span) => span.traceId === server.traceId), id };
}

async function waitForServerSpan(before: number): Promise<ReceivedSpan> {
  for (let count = before + 1; ; count++) {
    const spans = await collector.waitForSpans(count);
    const server = spans.slice(before).find((span) => span.kind === "server");
    if (server) return server;
  }
}

const named = (spans: ReceivedSpan[], name: string) => spans.find((span) => span.name === name);

test("an unsigned call: a 4xx leaves the server span unset, the verify span says why it failed", async () => {
  const { status, spans } = await call("unreachable", false);
  expect(status).toBe(401);
  expect(named(spans, "POST /actions/{route}")).toMatchObject({
    attributes: {
      "actiongate.outcome": "unauthorized",
      "http.response.status_code": 401,
      "http.route": "/actions/{route}",
    },
    status: { code: "unset" },
  });
  expect(named(spans, "POST /actions/{route}")!.attributes).not.toHaveProperty("actiongate.webhook_id");
  expect(named(spans, "verify")).toMatchObject({
    attributes: { "actiongate.verify.result": "missing_headers" },
    status: { code: "error", message: "missing_headers" },
  });
  expect(named(spans, "transform")).toBeUndefined();
});

test("a target that cannot be reached: 502, the server span fails, the request's span names the network error", async () => {
  const { status, spans, id } = await call("unreachable");
  expect(status).toBe(502);
  const server = named(spans, "POST /actions/{route}")!;
  expect(server).toMatchObject({
    attributes: {
      "actiongate.route": "unreachable",
      "actiongate.webhook_id": id,
      "actiongate.outcome": "target_unreachable",
    },
    status: { code: "error", message: "answered 502 target_unreachable" },
  });
  expect(named(spans, "verify")!.status.code).toBe("unset");
  expect(named(spans, "POST")).toMatchObject({
    parentSpanId: server.spanId,
    attributes: { "error.type": "ECONNREFUSED" },
  });
  // The call's log line leads to this trace.
  const line = gateway.logs.find((entry) => entry.msg === "call" && entry.webhook_id === id);
  expect(line).toMatchObject({ trace_id: server.traceId, span_id: server.spanId });
});

test("a transform that fails: 500, the transform span fails, nothing is sent", async () => {
  const { status, spans, id } = await call("broken-transform");
  expect(status).toBe(500);
  expect(named(spans, "transform")).toMatchObject({
    attributes: { "actiongate.transform.result": "failed" },
    status: { code: "error" },
  });
  expect(named(spans, "transform")!.status.message).toStartWith("the transform expression failed");
  expect(spans.some((span) => span.kind === "client")).toBe(false);
  // The expression's own log line, written inside the call, carries the trace too.
  const server = named(spans, "POST /actions/{route}")!;
  const failed = gateway.logs.find((entry) => entry.msg === "expression failed" && entry.trace_id === server.traceId);
  expect(failed).toMatchObject({ span_id: server.spanId, route: "broken-transform" });
  expect(gateway.logs.find((entry) => entry.msg === "call" && entry.webhook_id === id)?.outcome).toBe(
    "transform_failed",
  );
});
