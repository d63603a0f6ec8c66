import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { verifiedCallOf } from "../../test/support/calls.ts";
import { EXAMPLE_PAYLOAD_FILE, fixturePayload } from "../../test/support/signing.ts";
import { ParsedCall, type ParseResult, parseCustomAction, parseUnsignedPayload } from "./parse.ts";

async function parsed(body: string | Uint8Array) {
  const result = parseCustomAction(await verifiedCallOf(body));
  if (!result.ok) throw new Error(`expected the body to parse, got: ${result.message}`);
  return result.parsed;
}

async function refused(body: string | Uint8Array): Promise<string> {
  const result: ParseResult = parseCustomAction(await verifiedCallOf(body));
  if (result.ok) throw new Error("expected the body to be refused");
  return result.message;
}

const withChange = (edit: (raw: Record<string, any>) => void): string => {
  const raw = fixturePayload();
  edit(raw);
  return JSON.stringify(raw);
};

describe("parseCustomAction", () => {
  test("the fixture parses, and the result keeps the call it came from", async () => {
    const call = await verifiedCallOf(readFileSync(EXAMPLE_PAYLOAD_FILE, "utf8"));
    const result = parseCustomAction(call);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.parsed.call).toBe(call);
    expect(result.parsed.payload.type).toBe("external_integration");
    expect(result.parsed.payload.data.org_id).toBe("739224");
    expect(result.parsed.payload.data.entity._id).toBe("3f2c1a90-5d7e-4b8a-9c11-2f6e8d0b7a41");
    expect(result.parsed.payload.data.action_config?.component_id).toBe("erp-contract-sync");
  });

  test("unknown fields are kept as sent, at every level", async () => {
    const { payload } = await parsed(readFileSync(EXAMPLE_PAYLOAD_FILE, "utf8"));
    const data = payload.data as Record<string, any>;
    expect(data.exection_action_id).toBe("a1b2c3d4e5");
    expect(data.execution_status).toBe("paused");
    expect(data.entity.billing_address).toEqual({
      street: "Hauptstraße 5",
      postal_code: "50667",
      city: "Köln",
      country: "DE",
    });
    expect(data.entity.monthly_amount).toBe(84.5);
    expect(data.action_config.custom_action_config).toEqual({ erp_company_code: "1000" });
    expect(data.app_config.wait_for_callback).toBe(true);
    expect(data.trigger_event.caller.EpilotAuth.userId).toBe("10042");
    expect(data.resume_token).toBe(fixturePayload().data.resume_token);
    expect(payload.timestamp).toBe("2026-11-20T09:14:03.512Z");
    // Nothing lost, nothing added apart from the org_id normalisation.
    expect(payload).toEqual(JSON.parse(readFileSync(EXAMPLE_PAYLOAD_FILE, "utf8")) as typeof payload);
  });

  test("a numeric org_id becomes a string", async () => {
    const { payload } = await parsed(withChange((raw) => (raw.data.org_id = 739224)));
    expect(payload.data.org_id).toBe("739224");
  });

  test("a minimal payload parses (optional parts may be missing)", async () => {
    const { payload } = await parsed('{"type":"external_integration","data":{"org_id":"1","entity":{}}}');
    expect(payload.data.action_config).toBeUndefined();
    expect(payload.data.entity).toEqual({});
  });

  test("a UTF-8 BOM-free body with non-ASCII text parses", async () => {
    const { payload } = await parsed(withChange((raw) => (raw.data.entity._title = "Vertrag für Müller – 東京")));
    expect((payload.data.entity as Record<string, unknown>)._title).toBe("Vertrag für Müller – 東京");
  });

  test("non-UTF-8 bytes are refused naming the encoding", async () => {
    const latin1 = Buffer.from(
      '{"type":"external_integration","data":{"org_id":"1","entity":{"city":"K\xf6ln"}}}',
      "latin1",
    );
    expect(await refused(latin1)).toBe("body is not valid UTF-8");
    expect(await refused(new Uint8Array([0xff, 0xfe, 0x7b, 0x7d]))).toBe("body is not valid UTF-8");
  });

  test("a body that is not JSON is refused naming that", async () => {
    expect(await refused("type=external_integration")).toBe("body is not valid JSON");
    expect(await refused('{"type":"external_integration",')).toBe("body is not valid JSON");
    expect(await refused("")).toBe("body is not valid JSON");
    // The parser's own message would quote the offending text, which may be a secret.
    expect(await refused('{"type": s3cr3t-api-key}')).toBe("body is not valid JSON");
  });

  test("JSON that is not an object is refused as not a custom action", async () => {
    for (const body of ["null", "[]", '"external_integration"', "42"]) {
      expect(await refused(body)).toStartWith("not a custom action payload:");
    }
  });

  test("a wrong type is refused naming the field", async () => {
    const message = await refused(withChange((raw) => (raw.type = "webhook")));
    expect(message).toStartWith("not a custom action payload:");
    expect(message).toContain("type:");
    expect(message).toContain("external_integration");
  });

  test("a missing type is refused naming the expected value", async () => {
    expect(await refused(withChange((raw) => delete raw.type))).toBe(
      'not a custom action payload: type: Invalid input: expected "external_integration"',
    );
  });

  test("a missing data.entity is refused naming the path", async () => {
    expect(await refused(withChange((raw) => delete raw.data.entity))).toBe(
      "not a custom action payload: data.entity: is required",
    );
  });

  test("a missing data or org_id is refused naming the path", async () => {
    expect(await refused('{"type":"external_integration"}')).toBe("not a custom action payload: data: is required");
    expect(await refused(withChange((raw) => delete raw.data.org_id))).toContain("data.org_id");
  });

  test("a field of the wrong type is refused naming the path", async () => {
    expect(await refused(withChange((raw) => (raw.data.entity = "contract")))).toContain("data.entity:");
    expect(await refused(withChange((raw) => (raw.data.org_id = { id: 1 })))).toContain("data.org_id:");
    expect(await refused(withChange((raw) => (raw.data.action_config.component_id = 5)))).toContain(
      "data.action_config.component_id:",
    );
  });

  test("several problems are all named", async () => {
    const message = await refused('{"type":"other","data":{"entity":{}}}');
    expect(message).toContain("type:");
    expect(message).toContain("data.org_id:");
  });

  test("a refusal does not echo payload values", async () => {
    const message = await refused(withChange((raw) => (raw.data.org_id = { secret: "leaky-secret-value" })));
    expect(message).not.toContain("leaky-secret-value");
  });

  /** The fixture with an array nested so that the whole body is `depth` levels deep. */
  const nestedTo = (depth: number): string =>
    // The body, data and data.entity are three levels; `nested` adds the rest.
    withChange((raw) => (raw.data.entity.nested = JSON.parse(`${"[".repeat(depth - 3)}${"]".repeat(depth - 3)}`)));

  test("a body nested deeper than the limit is refused before it is parsed", async () => {
    expect((await parsed(nestedTo(64))).payload.data.entity.nested).toBeDefined();
    expect(await refused(nestedTo(65))).toBe("the body is nested deeper than 64 levels");
    const deeper = parseCustomAction(await verifiedCallOf(nestedTo(20)), { maxDepth: 16 });
    expect(deeper).toEqual({ ok: false, message: "the body is nested deeper than 16 levels" });
  });

  test("100,000 levels are refused within milliseconds, even when the rest is not JSON at all", async () => {
    const body = `{"type":"external_integration","data":${"[".repeat(100_000)}garbage`;
    const call = await verifiedCallOf(body);
    const started = performance.now();
    const result = parseCustomAction(call);
    expect(result.ok ? "" : result.message).toBe("the body is nested deeper than 64 levels");
    expect(performance.now() - started).toBeLessThan(50);
  });
});

describe("parseUnsignedPayload (explain and test only)", () => {
  test("checks a payload file's JSON as a received body is checked, and says the call was never signed", () => {
    const headers = new Headers();
    const result = parseUnsignedPayload(fixturePayload(), { webhookId: "msg_local", headers });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(ParsedCall.is(result.parsed)).toBe(true);
    expect(result.parsed.id).toBe("msg_local");
    expect(result.parsed.call).toEqual({ headers, webhookId: "msg_local", scheme: "unsigned" });
    expect(result.parsed.payload.data.org_id).toBe("739224");
  });

  test("refuses what parseCustomAction refuses, with the same message", async () => {
    const raw = fixturePayload();
    delete raw.data.entity;
    const unsigned = parseUnsignedPayload(raw, { webhookId: "msg_local", headers: new Headers() });
    expect(unsigned).toEqual({ ok: false, message: await refused(JSON.stringify(raw)) });
    expect(unsigned.ok === false && unsigned.message).toBe("not a custom action payload: data.entity: is required");
  });
});
