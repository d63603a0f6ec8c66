import { describe, expect, test } from "bun:test";
import { fixturePayload } from "../../test/support/signing.ts";
import { ExpressionEvaluationError, ExpressionSyntaxError } from "./expression.ts";
import { compileTemplate, TemplateValueError } from "./template.ts";

const url = (source: string) => compileTemplate(source, { encode: encodeURIComponent });

async function renderError(source: string, input: unknown): Promise<unknown> {
  try {
    await url(source).render(input);
  } catch (error) {
    return error;
  }
  throw new Error("render did not fail");
}

describe("compileTemplate", () => {
  test("a string without placeholders is static and renders as is", async () => {
    const template = url("http://erp.internal:8081/api/contracts?x=a b");
    expect(template.isStatic).toBe(true);
    expect(template.source).toBe("http://erp.internal:8081/api/contracts?x=a b");
    expect(await template.render({})).toBe("http://erp.internal:8081/api/contracts?x=a b");
    expect(await template.render(undefined)).toBe("http://erp.internal:8081/api/contracts?x=a b");
  });

  test("fills a placeholder from the payload", async () => {
    const template = url("http://erp/api/contracts/{{ data.entity.contract_number }}");
    expect(template.isStatic).toBe(false);
    expect(await template.render(fixturePayload())).toBe("http://erp/api/contracts/2026-0042");
  });

  test("fills several placeholders, with or without spaces inside the braces", async () => {
    const template = url("http://erp/{{data.org_id}}/c/{{  data.entity._id  }}?status={{ data.entity.status }}");
    expect(await template.render(fixturePayload())).toBe(
      "http://erp/739224/c/3f2c1a90-5d7e-4b8a-9c11-2f6e8d0b7a41?status=approved",
    );
  });

  test("percent-encodes values so they cannot change the path, query or host", async () => {
    const template = url("http://erp/api/c/{{ v }}/x");
    const cases: [string, string][] = [
      ["a/b", "http://erp/api/c/a%2Fb/x"],
      ["x?admin=true", "http://erp/api/c/x%3Fadmin%3Dtrue/x"],
      ["with space", "http://erp/api/c/with%20space/x"],
      ["../../admin", "http://erp/api/c/..%2F..%2Fadmin/x"],
      ["a#frag", "http://erp/api/c/a%23frag/x"],
      ["@evil.example", "http://erp/api/c/%40evil.example/x"],
      ["Köln&x=1", "http://erp/api/c/K%C3%B6ln%26x%3D1/x"],
    ];
    for (const [value, expected] of cases) {
      const rendered = await template.render({ v: value });
      expect(rendered).toBe(expected);
      const parsed = new URL(rendered);
      expect(parsed.host).toBe("erp");
      expect(parsed.search).toBe("");
      expect(parsed.hash).toBe("");
      expect(parsed.pathname.startsWith("/api/c/")).toBe(true);
    }
  });

  test("without an encoder the value is placed as is (header values)", async () => {
    const header = compileTemplate("Bearer {{ token }}");
    expect(await header.render({ token: "a/b c" })).toBe("Bearer a/b c");
  });

  test("numbers and booleans are written as text, including 0 and false", async () => {
    const template = url("/{{ n }}/{{ zero }}/{{ flag }}/{{ off }}");
    expect(await template.render({ n: 84.5, zero: 0, flag: true, off: false })).toBe("/84.5/0/true/false");
  });

  test("objects and arrays are JSON-stringified, then encoded", async () => {
    const template = url("http://erp/q?filter={{ data.entity.billing_address }}");
    const address = fixturePayload().data.entity.billing_address;
    expect(await template.render(fixturePayload())).toBe(
      `http://erp/q?filter=${encodeURIComponent(JSON.stringify(address))}`,
    );
    expect(await compileTemplate("{{ list }}").render({ list: [1, "a"] })).toBe('[1,"a"]');
  });

  test("a computed placeholder (JSONata expression) works", async () => {
    expect(await url("/c/{{ $uppercase(data.entity.status) & '-' & data.org_id }}").render(fixturePayload())).toBe(
      "/c/APPROVED-739224",
    );
  });

  test("a missing value fails with TemplateValueError naming the placeholder", async () => {
    const error = await renderError("http://erp/c/{{ data.entity.nope }}", fixturePayload());
    expect(error).toBeInstanceOf(TemplateValueError);
    expect((error as TemplateValueError).name).toBe("TemplateValueError");
    expect((error as TemplateValueError).placeholder).toBe("{{ data.entity.nope }}");
    expect((error as Error).message).toContain("{{ data.entity.nope }}");
  });

  test("null and empty string values fail too, rather than leave an empty path segment", async () => {
    for (const value of [null, ""]) {
      const error = await renderError("http://erp/c/{{ v }}/items", { v: value });
      expect(error).toBeInstanceOf(TemplateValueError);
    }
  });

  test("the second of two placeholders being missing still fails", async () => {
    expect(await renderError("/{{ a }}/{{ b }}", { a: "x" })).toBeInstanceOf(TemplateValueError);
  });

  test("an expression error in a placeholder surfaces as ExpressionEvaluationError", async () => {
    const error = await renderError("/{{ $number(v) }}", { v: "not-a-number-secret" });
    expect(error).toBeInstanceOf(ExpressionEvaluationError);
    expect((error as Error).message).not.toContain("not-a-number-secret");
  });

  test("a syntax error in a placeholder fails at compile time", () => {
    expect(() => url("http://erp/{{ data.entity. }}")).toThrow(ExpressionSyntaxError);
  });
});
