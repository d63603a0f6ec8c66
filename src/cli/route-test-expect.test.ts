import { describe, expect, test } from "bun:test";
import type { LocalRunResult } from "../gateway/local-run.ts";
import type { TargetRequest } from "../targets/types.ts";
import { compareExpectation } from "./route-test-expect.ts";

const quote = (value: unknown) => (value === undefined ? "nothing" : JSON.stringify(value));

function request(overrides: Partial<TargetRequest> = {}): TargetRequest {
  return {
    method: "POST",
    url: new URL("http://erp.internal:8081/api/contracts/2026-0042"),
    headers: { authorization: "Bearer t", "content-type": "application/json" },
    body: JSON.stringify({ contract: "2026-0042", items: [{ n: 1 }, { n: 2 }], meta: { a: 1, b: 2 } }),
    secretHeaders: new Set(),
    ...overrides,
  };
}

function result(overrides: Partial<LocalRunResult> = {}): LocalRunResult {
  return {
    route: "erp",
    targetType: "http",
    skipped: false,
    answer: { status: 200, body: { erp_id: "E-1", extra: true } },
    request: request(),
    ...overrides,
  };
}

describe("compareExpectation", () => {
  test("objects match as subsets, deeply: keys not given are not compared", () => {
    expect(
      compareExpectation(
        {
          route: "erp",
          skipped: false,
          request: { body: { meta: { a: 1 } } },
          answer: { status: 200, body: { erp_id: "E-1" } },
        },
        result(),
        quote,
      ),
    ).toEqual([]);
  });

  test("each difference as `path: expected X, got Y`, a missing key named", () => {
    expect(
      compareExpectation(
        {
          route: "crm",
          skipped: true,
          request: { method: "PUT", body: { contract: "2026-0043", meta: { c: 3 } } },
          answer: { status: 502, body: { erp_id: "E-2" } },
        },
        result(),
        quote,
      ),
    ).toEqual([
      'route: expected "crm", got "erp"',
      "skipped: expected true, got false",
      'request.method: expected "PUT", got "POST"',
      'request.body.contract: expected "2026-0043", got "2026-0042"',
      "request.body.meta.c: expected 3, got nothing (no such key)",
      "answer.status: expected 502, got 200",
      'answer.body.erp_id: expected "E-2", got "E-1"',
    ]);
  });

  test("arrays and scalars match exactly: a shorter list or an object inside a list with fewer keys differs", () => {
    expect(compareExpectation({ request: { body: { items: [{ n: 1 }, { n: 2 }] } } }, result(), quote)).toEqual([]);
    expect(compareExpectation({ request: { body: { items: [{ n: 1 }] } } }, result(), quote)).toEqual([
      'request.body.items: expected [{"n":1}], got [{"n":1},{"n":2}]',
    ]);
    expect(compareExpectation({ request: { body: { items: [{ n: 1 }, {}] } } }, result(), quote)).toHaveLength(1);
    expect(compareExpectation({ answer: { body: { erp_id: 1 } } }, result(), quote)).toEqual([
      'answer.body.erp_id: expected 1, got "E-1"',
    ]);
  });

  test("header names without regard to case; a header not sent is `none`; the URL as a URL", () => {
    expect(
      compareExpectation(
        {
          request: {
            url: "HTTP://erp.internal:8081/api/contracts/2026-0042",
            headers: { Authorization: "Bearer t", "Content-Type": "application/json" },
          },
        },
        result(),
        quote,
      ),
    ).toEqual([]);
    expect(compareExpectation({ request: { headers: { "X-Org": "1" } } }, result(), quote)).toEqual([
      'request.headers.x-org: expected "1", got none',
    ]);
  });

  test("request: null means nothing was sent; a request expected when none was sent is named", () => {
    expect(compareExpectation({ request: null }, result({ request: null }), quote)).toEqual([]);
    expect(compareExpectation({ request: null }, result(), quote)).toEqual([
      'request: expected nothing sent, got POST "http://erp.internal:8081/api/contracts/2026-0042"',
    ]);
    expect(compareExpectation({ request: { method: "POST" } }, result({ request: null }), quote)).toEqual([
      "request: expected a request, got nothing sent",
    ]);
    expect(compareExpectation({ route: null }, result({ route: null }), quote)).toEqual([]);
  });

  test("soap: body is the envelope text, exactly; soap_body the operation's content, values as text", () => {
    const envelope =
      '<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><tns:CreateCustomer xmlns:tns="urn:crm"><tns:Name>Jane</tns:Name><tns:Age>42</tns:Age><tns:Vip>true</tns:Vip><tns:Tag>a</tns:Tag><tns:Tag>b</tns:Tag></tns:CreateCustomer></soap:Body></soap:Envelope>';
    const soap = result({ targetType: "soap", request: request({ body: envelope }) });
    expect(
      compareExpectation(
        { request: { body: envelope, soap_body: { Name: "Jane", Age: 42, Vip: true, Tag: ["a", "b"] } } },
        soap,
        quote,
      ),
    ).toEqual([]);
    expect(compareExpectation({ request: { soap_body: { Name: "John", Tag: ["a"] } } }, soap, quote)).toEqual([
      'request.soap_body.Name: expected "John", got "Jane"',
      'request.soap_body.Tag: expected ["a"], got ["a","b"]',
    ]);
    // A long text is shown around the first character where the two part.
    const [difference] = compareExpectation({ request: { body: envelope.replace("Jane", "Jone") } }, soap, quote);
    expect(difference).toBe(
      'request.body: differs from character 171: expected "...mlns:tns=\\"urn:crm\\"><tns:Name>Jone</tns:Name><tns:Age>42</tns:Age><tns:Vip>true</", got "...mlns:tns=\\"urn:crm\\"><tns:Name>Jane</tns:Name><tns:Age>42</tns:Age><tns:Vip>true</"',
    );
    expect(compareExpectation({ request: { soap_body: {} } }, result(), quote)).toEqual([
      "request.soap_body: only a SOAP target's request has one; use body",
    ]);
  });
});
