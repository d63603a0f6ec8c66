import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { outboundMessageOf } from "../../test/support/calls.ts";
import { tempDir } from "../../test/support/gateway.ts";
import { startTracedReceiver } from "../../test/support/otlp-receiver.ts";
import { type RecordingServer, startRecordingServer } from "../../test/support/recording-server.ts";
import { loadConfigText } from "../config/load.ts";
import { compileConfig } from "../gateway/compile.ts";
import { ConfigError } from "../kit/config-errors.ts";
import { silentLogger } from "../log/logger.ts";
import { createHttpTarget, httpTargetSchema } from "./http.ts";
import { createSoapTarget, soapTargetSchema } from "./soap/soap-target.ts";
import { mergeHeaders } from "./transport.ts";

/**
 * The one header rule of every HTTP-based target, and the exact header set a legacy system gets.
 * The runtime's client adds its own transport headers; they are named here so that any other
 * header reaching a legacy system fails these tests.
 */
const RUNTIME_HEADERS = ["accept", "accept-encoding", "connection", "content-length", "host"];
const context = { configDir: "/tmp", logger: silentLogger, userAgent: "actiongate/test" };

let server: RecordingServer;
beforeAll(async () => {
  server = await startRecordingServer({ body: { ok: true } });
});
afterAll(() => server.close());

describe("mergeHeaders", () => {
  test("user-agent < configured < auth < owned; a forwarded header never replaces any of them", () => {
    expect(
      mergeHeaders({
        userAgent: "actiongate/1",
        configured: { "User-Agent": "erp-client/2", "X-Org": "1", Authorization: "configured" },
        auth: { authorization: "Basic auth" },
        owned: { "content-type": "text/xml", soapaction: '"urn:a"', "idempotency-key": "msg_1" },
        forwarded: {
          authorization: "Bearer caller",
          soapaction: "caller",
          "idempotency-key": "x",
          "x-epilot-token": "t",
        },
      }),
    ).toEqual({
      "user-agent": "erp-client/2",
      "x-org": "1",
      authorization: "Basic auth",
      "content-type": "text/xml",
      soapaction: '"urn:a"',
      "idempotency-key": "msg_1",
      "x-epilot-token": "t",
    });
  });
});

describe("the exact headers a legacy system receives", () => {
  test("http: content type, user agent, idempotency key, configured and forwarded headers, nothing else", async () => {
    const target = createHttpTarget(
      httpTargetSchema.parse({ type: "http", url: `${server.url}/c`, headers: { "X-Org": "{{ data.org }}" } }),
      context,
    );
    const message = await outboundMessageOf(
      { body: { a: 1 }, payload: { data: { org: "739224" } }, forwardedHeaders: { "x-epilot-token": "tok" } },
      "msg_exact",
    );
    expect((await target.deliver(message)).kind).toBe("delivered");
    const headers = server.requests.at(-1)!.headers;
    expect(Object.keys(headers).sort()).toEqual(
      ["content-type", "idempotency-key", "user-agent", "x-epilot-token", "x-org", ...RUNTIME_HEADERS].sort(),
    );
    expect(headers).toMatchObject({
      "content-type": "application/json",
      "idempotency-key": "msg_exact",
      "user-agent": "actiongate/test",
      "x-epilot-token": "tok",
      "x-org": "739224",
    });
    await target.close();
  });

  test("soap: content type and SOAPAction from the version and action, basic auth, nothing else", async () => {
    const target = createSoapTarget(
      soapTargetSchema.parse({
        type: "soap",
        url: `${server.url}/ws`,
        operation: "CreateCustomer",
        namespace: "urn:crm",
        soap_action: "urn:crm#CreateCustomer",
        basic_auth: { username: "gw", password: "pw" },
        headers: { "X-Tenant": "t1" },
      }),
      context,
    );
    server.respondWith({
      headers: { "content-type": "text/xml" },
      body: '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><R/></s:Body></s:Envelope>',
    });
    const message = await outboundMessageOf({ body: { Name: "Jane" }, payload: {} }, "msg_soap_exact");
    expect((await target.deliver(message)).kind).toBe("delivered");
    server.respondWith({ body: { ok: true } });
    const headers = server.requests.at(-1)!.headers;
    expect(Object.keys(headers).sort()).toEqual(
      [
        "authorization",
        "content-type",
        "idempotency-key",
        "soapaction",
        "user-agent",
        "x-tenant",
        ...RUNTIME_HEADERS,
      ].sort(),
    );
    expect(headers).toMatchObject({
      authorization: `Basic ${Buffer.from("gw:pw").toString("base64")}`,
      "content-type": "text/xml; charset=utf-8",
      soapaction: '"urn:crm#CreateCustomer"',
      "idempotency-key": "msg_soap_exact",
      "x-tenant": "t1",
    });
    await target.close();
  });

  test("render shows the request without sending it, and marks credentials secret", async () => {
    const before = server.requests.length;
    const target = createSoapTarget(
      soapTargetSchema.parse({
        type: "soap",
        url: `${server.url}/ws/{{ data.id }}`,
        operation: "Ping",
        namespace: "urn:p",
        basic_auth: { username: "gw", password: "pw" },
      }),
      context,
    );
    const rendered = await target.render(
      await outboundMessageOf({ body: { A: "1" }, payload: { data: { id: "a/b" } } }),
    );
    expect(rendered.ok).toBe(true);
    if (!rendered.ok) return;
    expect(rendered.request.method).toBe("POST");
    expect(rendered.request.url.href).toBe(`${server.url}/ws/a%2Fb`);
    expect(rendered.request.body).toContain('<tns:Ping xmlns:tns="urn:p"><tns:A>1</tns:A></tns:Ping>');
    expect([...rendered.request.secretHeaders]).toEqual(["authorization"]);
    expect(server.requests.length).toBe(before);
    await target.close();
  });
});

describe("the W3C trace context a legacy system receives", () => {
  test("with tracing on, each request carries its own client span's traceparent (and the caller's tracestate); render shows none", async () => {
    const { collector, telemetry } = await startTracedReceiver();
    const target = createSoapTarget(
      soapTargetSchema.parse({
        type: "soap",
        url: `${server.url}/ws`,
        operation: "CreateCustomer",
        namespace: "urn:crm",
        soap_action: "urn:crm#CreateCustomer",
      }),
      context,
    );
    server.respondWith({
      headers: { "content-type": "text/xml" },
      body: '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><R/></s:Body></s:Envelope>',
    });
    try {
      const call = telemetry.tracer.startServerSpan(
        "POST /actions/{route}",
        new Headers({ traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", tracestate: "erp=1" }),
      );
      const message = await outboundMessageOf({ body: { Name: "Jane" }, payload: {} }, "msg_traced");
      expect((await target.deliver(message, call)).kind).toBe("delivered");
      call.end();
      const headers = server.requests.at(-1)!.headers;
      expect(Object.keys(headers).sort()).toEqual(
        [
          "content-type",
          "idempotency-key",
          "soapaction",
          "user-agent",
          "traceparent",
          "tracestate",
          ...RUNTIME_HEADERS,
        ].sort(),
      );
      const [, traceId, spanId, flags] = String(headers.traceparent).split("-");
      expect({ traceId, flags, tracestate: headers.tracestate }).toEqual({
        traceId: "0af7651916cd43dd8448eb211c80319c",
        flags: "01",
        tracestate: "erp=1",
      });

      const spans = await collector.waitForSpans(2);
      const client = spans.find((span) => span.kind === "client")!;
      const parent = spans.find((span) => span.kind === "server")!;
      expect(client).toMatchObject({
        spanId,
        parentSpanId: parent.spanId,
        name: "POST",
        attributes: {
          "http.request.method": "POST",
          "server.address": "127.0.0.1",
          "server.port": server.port,
          "http.response.status_code": 200,
          "actiongate.target.type": "soap",
          "actiongate.soap.operation": "CreateCustomer",
          "actiongate.soap.action": "urn:crm#CreateCustomer",
        },
        status: { code: "unset" },
      });

      // explain and route tests render: never a random traceparent there.
      const rendered = await target.render(message);
      expect(rendered.ok && Object.keys(rendered.request.headers)).not.toContain("traceparent");
    } finally {
      server.respondWith({ body: { ok: true } });
      await target.close();
      await telemetry.shutdown();
      await collector.close();
    }
  });

  test("a failed request's client span says why: the status, a timeout, or the network error", async () => {
    const { collector, telemetry } = await startTracedReceiver();
    const target = createHttpTarget(
      httpTargetSchema.parse({ type: "http", url: `${server.url}/c`, timeout: "200ms" }),
      context,
    );
    const unreachable = createHttpTarget(
      httpTargetSchema.parse({ type: "http", url: "http://127.0.0.1:1/c", timeout: "1s" }),
      context,
    );
    try {
      const call = telemetry.tracer.startServerSpan("POST /actions/{route}", new Headers());
      const message = await outboundMessageOf({ body: {}, payload: {} }, "msg_failing");
      server.respondWith({ status: 503, body: "maintenance" });
      expect((await target.deliver(message, call)).kind).toBe("rejected");
      server.respondWith({ delayMs: 500 });
      expect((await target.deliver(message, call)).kind).toBe("timeout");
      expect((await unreachable.deliver(message, call)).kind).toBe("unreachable");
      call.end();
      const clients = (await collector.waitForSpans(4)).filter((span) => span.kind === "client");
      expect(clients.map((span) => [span.attributes["error.type"], span.status.code])).toEqual([
        ["503", "error"],
        ["timeout", "error"],
        ["ECONNREFUSED", "error"],
      ]);
      expect(clients[0]!.attributes["http.response.status_code"]).toBe(503);
      expect(clients[1]!.status.message).toBe("no answer within 200 ms");
    } finally {
      server.respondWith({ body: { ok: true } });
      await target.close();
      await unreachable.close();
      await telemetry.shutdown();
      await collector.close();
    }
  });
});

describe("a route may not forward a header its target sets", () => {
  function problems(yaml: string): string[] {
    const dir = tempDir();
    const file = join(dir, "config.yaml");
    writeFileSync(file, yaml);
    try {
      compileConfig(loadConfigText(file, yaml, {}), { logger: silentLogger, userAgent: "actiongate/test" });
      return [];
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      return error.problems.map((problem) => `${problem.line}:${problem.column} ${problem.message}`);
    }
  }

  test("credentials, SOAPAction, the idempotency key and configured headers are refused; others pass", () => {
    const config = (forward: string) => `verification: { secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"] }
routes:
  - name: crm
    forward_headers: [${forward}]
    target:
      type: soap
      url: http://127.0.0.1:1/ws
      operation: Ping
      namespace: "urn:p"
      basic_auth: { username: gw, password: pw }
      headers: { X-Tenant: t1 }
`;
    for (const name of [
      "Authorization",
      "SOAPAction",
      "content-type",
      "idempotency-key",
      "x-tenant",
      "host",
      "traceparent",
      "tracestate",
    ]) {
      expect(problems(config(name))).toEqual([
        `4:23 ${name} is set by the route's target (its headers, credentials or protocol); a forwarded header may not replace it`,
      ]);
    }
    expect(problems(config("x-epilot-token"))).toEqual([]);
  });

  test("traceparent and tracestate cannot be configured either: actiongate sets them, with tracing on or off", () => {
    const config = (header: string) => `verification: { secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"] }
routes:
  - name: erp
    target:
      type: http
      url: http://127.0.0.1:1/api
      headers: { ${header}: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" }
`;
    for (const name of ["traceparent", "TraceState"]) {
      expect(problems(config(name))).toEqual([
        `7:${20 + name.length} is set by actiongate (the trace context of each request when telemetry is on); remove it from headers`,
      ]);
    }
  });
});
