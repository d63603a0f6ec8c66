import { describe, expect, test } from "bun:test";
import { parsedMessageOf } from "../../test/support/calls.ts";
import { checkedFixture } from "../../test/support/payloads.ts";
import { compileMatch, compileMessageMatch, firstUnmetRule } from "./match.ts";

const payload = checkedFixture;

describe("compileMatch", () => {
  const cases: [string, string, string, (raw: Record<string, any>) => void][] = [
    [
      "component_id",
      "erp-contract-sync",
      "other-component",
      (raw) => (raw.data.action_config.component_id = "other-component"),
    ],
    [
      "app_id",
      "b5b2f0de-7c4a-4a39-8f56-1d3b7b6e2c10",
      "another-app",
      (raw) => (raw.data.action_config.app_id = "another-app"),
    ],
    ["action_name", "Sync contract to ERP", "Sync order", (raw) => (raw.data.action_config.name = "Sync order")],
    ["entity_schema", "contract", "order", (raw) => (raw.data.entity._schema = "order")],
    ["org_id", "739224", "1", (raw) => (raw.data.org_id = "1")],
  ];

  for (const [key, value, otherValue, makeOther] of cases) {
    describe(key, () => {
      test("matches the payload holding the value", () => {
        expect(compileMatch({ [key]: value })(payload())).toBe(true);
      });

      test("does not match another value", () => {
        expect(compileMatch({ [key]: value })(payload(makeOther))).toBe(false);
        expect(compileMatch({ [key]: otherValue })(payload())).toBe(false);
      });

      test("a list matches any of its values", () => {
        const rule = compileMatch({ [key]: ["something-else", value] });
        expect(rule(payload())).toBe(true);
        expect(rule(payload(makeOther))).toBe(false);
        expect(compileMatch({ [key]: ["something-else", otherValue] })(payload(makeOther))).toBe(true);
      });

      test("an empty list matches nothing", () => {
        expect(compileMatch({ [key]: [] })(payload())).toBe(false);
      });

      test("comparison is exact (case and whitespace matter)", () => {
        const otherCase = value.toUpperCase() === value ? value.toLowerCase() : value.toUpperCase();
        // org_id is digits only: no other case to try.
        if (otherCase !== value) expect(compileMatch({ [key]: otherCase })(payload())).toBe(false);
        expect(compileMatch({ [key]: ` ${value}` })(payload())).toBe(false);
      });
    });
  }

  test("a numeric org_id in the payload matches its string form", () => {
    const numeric = payload((raw) => (raw.data.org_id = 739224));
    expect(compileMatch({ org_id: "739224" })(numeric)).toBe(true);
    expect(compileMatch({ org_id: ["1", "739224"] })(numeric)).toBe(true);
  });

  test("every listed key must hold", () => {
    const rule = compileMatch({
      component_id: "erp-contract-sync",
      entity_schema: "contract",
      org_id: ["739224", "1"],
    });
    expect(rule(payload())).toBe(true);
    expect(rule(payload((raw) => (raw.data.entity._schema = "order")))).toBe(false);
    expect(rule(payload((raw) => (raw.data.org_id = "2")))).toBe(false);
    expect(rule(payload((raw) => (raw.data.action_config.component_id = "x")))).toBe(false);
  });

  test("a field missing from the payload never matches", () => {
    expect(compileMatch({ component_id: "erp-contract-sync" })(payload((raw) => delete raw.data.action_config))).toBe(
      false,
    );
    expect(
      compileMatch({ component_id: "erp-contract-sync" })(payload((raw) => delete raw.data.action_config.component_id)),
    ).toBe(false);
    expect(compileMatch({ action_name: "Sync contract to ERP" })(payload((raw) => delete raw.data.action_config))).toBe(
      false,
    );
    expect(compileMatch({ entity_schema: "contract" })(payload((raw) => delete raw.data.entity._schema))).toBe(false);
  });

  test("a rule naming the literal text undefined does not match a missing field", () => {
    expect(compileMatch({ app_id: "undefined" })(payload((raw) => delete raw.data.action_config.app_id))).toBe(false);
  });

  test("no rules at all hold for every payload", () => {
    expect(compileMatch({})(payload())).toBe(true);
    expect(compileMatch({ component_id: undefined })(payload())).toBe(true);
  });
});

describe("firstUnmetRule", () => {
  test("undefined when every key holds, as compileMatch says true", () => {
    const rules = { component_id: "erp-contract-sync", org_id: ["1", "739224"] };
    expect(firstUnmetRule(rules, payload())).toBeUndefined();
    expect(compileMatch(rules)(payload())).toBe(true);
  });

  test("the first key that does not hold, with the field it reads, what the route wants and what the payload has", () => {
    const rules = { component_id: "erp-contract-sync", entity_schema: ["order", "invoice"], org_id: "1" };
    expect(firstUnmetRule(rules, payload())).toEqual({
      key: "entity_schema",
      field: "data.entity._schema",
      expected: ["order", "invoice"],
      actual: "contract",
    });
    expect(compileMatch(rules)(payload())).toBe(false);
  });

  test("a field the payload lacks is reported as undefined", () => {
    const lacking = payload();
    delete (lacking.data as Record<string, unknown>).action_config;
    expect(firstUnmetRule({ component_id: "erp-contract-sync" }, lacking)).toEqual({
      key: "component_id",
      field: "data.action_config.component_id",
      expected: ["erp-contract-sync"],
      actual: undefined,
    });
  });
});

describe("compileMessageMatch", () => {
  const message = parsedMessageOf;
  test("source, use_case_id, event_name and org_id each read the message; every listed key must hold", () => {
    const rule = compileMessageMatch({
      source: "erp-feed",
      use_case_id: "5b0c7a4e-2f1d-4e6a-9c3b-8d7e6f5a4b21",
      event_name: ["contract.created", "contract.updated"],
      org_id: "739224",
    });
    expect(rule(message())).toBe(true);
    expect(rule(message(() => {}, "other-feed"))).toBe(false);
    expect(rule(message((raw) => (raw.use_case_id = "another-use-case")))).toBe(false);
    expect(rule(message((raw) => (raw.event_name = "contract.deleted")))).toBe(false);
    expect(rule(message((raw) => (raw.org_id = 1)))).toBe(false);
    expect(compileMessageMatch({ source: "erp-feed", org_id: "739224" })(message((raw) => (raw.org_id = 739224)))).toBe(
      true,
    );
  });

  test("a key that cannot be read from a message is refused when compiled, never ignored", () => {
    expect(() => compileMessageMatch({ component_id: "x" } as never)).toThrow("component_id");
    expect(() => compileMatch({ source: "feed" } as never)).toThrow("source");
  });
});
