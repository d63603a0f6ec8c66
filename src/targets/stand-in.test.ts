import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { outboundMessageOf } from "../../test/support/calls.ts";
import { type RecordingServer, startRecordingServer } from "../../test/support/recording-server.ts";
import { silentLogger } from "../log/logger.ts";
import { createHttpTarget, httpTargetSchema } from "./http.ts";
import { createSoapTarget, soapTargetSchema } from "./soap/soap-target.ts";
import { standInTarget } from "./stand-in.ts";
import type { Target } from "./types.ts";

const context = { configDir: "/tmp", logger: silentLogger, userAgent: "actiongate/test" };

/** A real legacy system that must receive nothing: the stand-in answers in its stead. */
let legacy: RecordingServer;
const targets: Target[] = [];
beforeAll(async () => {
  legacy = await startRecordingServer();
});
afterAll(async () => {
  await Promise.all(targets.map((target) => target.close()));
  expect(legacy.requests).toEqual([]);
  await legacy.close();
});

function http(extra: Record<string, unknown> = {}): Target {
  const target = createHttpTarget(
    httpTargetSchema.parse({ type: "http", url: `${legacy.url}/c/{{ data.id }}`, ...extra }),
    context,
  );
  targets.push(target);
  return target;
}

function soap(version: "1.1" | "1.2"): Target {
  const target = createSoapTarget(
    soapTargetSchema.parse({
      type: "soap",
      url: `${legacy.url}/crm`,
      version,
      operation: "CreateCustomer",
      namespace: "urn:crm",
      soap_action: "urn:crm#CreateCustomer",
    }),
    context,
  );
  targets.push(target);
  return target;
}

describe("standInTarget", () => {
  test("records the request the real target renders and answers with the given JSON, read by the real target", async () => {
    const real = http({ headers: { "X-Id": "{{ data.id }}" } });
    const standIn = standInTarget(real, { status: 201, body: { id: "E-1" } });
    const message = await outboundMessageOf({ body: { a: 1 }, payload: { data: { id: "a/b" } } }, "msg_1");
    const outcome = await standIn.deliver(message);
    expect(outcome).toEqual({
      kind: "delivered",
      response: { status: 201, headers: { "content-type": "application/json" }, body: { id: "E-1" } },
    });
    const rendered = await real.render(message);
    if (!rendered.ok) throw new Error(rendered.reason);
    expect(standIn.requests).toEqual([rendered.request]);
    expect(standIn.requests[0]!.url.href).toBe(`${legacy.url}/c/a%2Fb`);
    expect(standIn.requests[0]!.body).toBe('{"a":1}');
  });

  test("a non-2xx answer is the real target's rejection; text stays text; nothing given is 200 {}", async () => {
    const message = await outboundMessageOf({ body: {}, payload: { data: { id: "1" } } });
    expect(await standInTarget(http(), { status: 503, body: "maintenance" }).deliver(message)).toEqual({
      kind: "rejected",
      response: { status: 503, headers: { "content-type": "text/plain; charset=utf-8" }, body: "maintenance" },
      reason: "target answered HTTP 503",
      info: { target_status: 503 },
    });
    expect(await standInTarget(http(), {}).deliver(message)).toMatchObject({
      kind: "delivered",
      response: { status: 200, body: {} },
    });
  });

  test("a payload the real target cannot render is invalid_message, and no request is recorded", async () => {
    const standIn = standInTarget(http(), {});
    const outcome = await standIn.deliver(await outboundMessageOf({ body: {}, payload: { data: {} } }));
    expect(outcome.kind).toBe("invalid_message");
    expect(standIn.requests).toEqual([]);
  });

  test("a SOAP target gets an envelope of the version it sent, or a fault with the status it implies", async () => {
    const message = await outboundMessageOf({ body: { Name: "Jane" } });
    const body = { CreateCustomerResponse: { CustomerRef: "CRM-7" } };
    for (const version of ["1.1", "1.2"] as const) {
      const standIn = standInTarget(soap(version), { body });
      expect(await standIn.deliver(message)).toMatchObject({ kind: "delivered", response: { status: 200, body } });
      expect(standIn.requests[0]!.body).toContain("<tns:CreateCustomer");
    }
    const faulted = await standInTarget(soap("1.2"), { fault: { code: "Sender", reason: "Customer exists" } }).deliver(
      message,
    );
    expect(faulted).toMatchObject({
      kind: "rejected",
      response: { status: 500 },
      reason: "SOAP fault Sender: Customer exists",
      retryable: false,
    });
  });

  test("a SOAP answer given as text is sent as it is (a recorded answer pasted in)", async () => {
    const standIn = standInTarget(soap("1.1"), { status: 200, body: "<html>proxy error</html>" });
    expect(await standIn.deliver(await outboundMessageOf({ body: {} }))).toMatchObject({
      kind: "rejected",
      reason: "the answer is XML but not a SOAP envelope (HTTP 200)",
    });
  });
});
