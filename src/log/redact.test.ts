import { describe, expect, test } from "bun:test";
import { REDACTED, redact, redactText } from "./redact.ts";

describe("redact", () => {
  test("secret-looking keys are replaced at any depth, whatever their case or separators", () => {
    const input = {
      route: "erp",
      headers: { Authorization: "Bearer abc", "X-Api-Key": "k", accept: "json" },
      nested: [{ erpApiKey: "k2", value: 1 }, { password: "p" }],
      "x-epilot-token": "t",
      webhook_signature: "v1a,sig",
    };
    expect(redact(input)).toEqual({
      route: "erp",
      headers: { Authorization: REDACTED, "X-Api-Key": REDACTED, accept: "json" },
      nested: [{ erpApiKey: REDACTED, value: 1 }, { password: REDACTED }],
      "x-epilot-token": REDACTED,
      webhook_signature: REDACTED,
    });
  });

  test("whole payload subtrees with personal data are replaced", () => {
    expect(
      redact({
        data: {
          trigger_event: { caller: { EpilotAuth: { token: "t" } } },
          app_options: { erp: "x" },
          entity: { _id: "e" },
        },
      }),
    ).toEqual({
      data: { trigger_event: REDACTED, app_options: REDACTED, entity: { _id: "e" } },
    });
  });

  test("the caller's objects are never changed, and objects without secrets are passed through as they are", () => {
    const headers = { authorization: "Bearer abc" };
    const clean = { route: "erp", status: 200, list: [1, 2] };
    const input = { headers, clean };
    const output = redact(input) as typeof input;
    expect(headers.authorization).toBe("Bearer abc");
    expect(output.headers).not.toBe(headers);
    expect(output.clean).toBe(clean);
    expect(redact(clean)).toBe(clean);
  });

  test("a URL or class instance is logged by its own fields, never by its toJSON (a URL's password)", () => {
    expect(JSON.stringify(redact({ url: new URL("http://erp:s3cret@erp.internal/api") }))).not.toContain("s3cret");
  });

  test("errors become name and message; nesting deeper than 8 levels is cut", () => {
    expect(redact({ error: new TypeError("boom") })).toEqual({ error: { name: "TypeError", message: "boom" } });
    let deep: Record<string, unknown> = { leaf: "x" };
    for (let i = 0; i < 10; i++) deep = { inner: deep };
    expect(JSON.stringify(redact(deep))).toContain(REDACTED);
    expect(JSON.stringify(redact(deep))).not.toContain('"x"');
  });
});

describe("redactText (a legacy system's answer that is not JSON)", () => {
  test.each([
    ["denied for api_key=abc123&page=2", "denied for api_key=[redacted]&page=2"],
    ['{"error":"bad","password":"hunter2","n":1}', '{"error":"bad","password":"[redacted]","n":1}'],
    [
      '<soap:Fault><wsse:Password Type="x">pw</wsse:Password><faultstring>no</faultstring></soap:Fault>',
      '<soap:Fault><wsse:Password Type="x">[redacted]</wsse:Password><faultstring>no</faultstring></soap:Fault>',
    ],
    ["retry with Bearer abc.def.ghi123", "retry with Bearer [redacted]"],
    ["session eyJhbGciOi.eyJzdWIiOiIx.c2lnbmF0dXJl expired", "session [redacted] expired"],
    ["x-api-key: 'k1' refused", "x-api-key: '[redacted]' refused"],
  ])("%s", (text, expected) => {
    expect(redactText(text)).toBe(expected);
  });

  test("text without anything secret-looking stays as it was", () => {
    const text = "contract number unknown: 2026-0042 (status=rejected)";
    expect(redactText(text)).toBe(text);
  });
});
