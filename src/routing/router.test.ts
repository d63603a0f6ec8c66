import { describe, expect, test } from "bun:test";
import { checkedFixture } from "../../test/support/payloads.ts";
import type { OutboundMessage, Target, TargetOutcome } from "../targets/types.ts";
import { compileMatch, type MatchRules } from "./match.ts";
import type { CompiledRoute } from "./route.ts";
import { createRouter } from "./router.ts";

const dummyTarget: Target = {
  type: "dummy",
  async deliver(_message: OutboundMessage): Promise<TargetOutcome> {
    return { kind: "delivered", response: { status: 200, headers: {}, body: {} } };
  },
  async close() {},
};

/**
 * A route as the router sees it. Delivery settings (mode, breaker, ...) are not the router's
 * business, so they are left out and the object is cast; the fields given are type-checked.
 */
function route(name: string, match?: MatchRules): CompiledRoute {
  const partial: Partial<CompiledRoute> = {
    name,
    ...(match ? { matches: compileMatch(match) } : {}),
    strip: [],
    forwardHeaders: [],
    response: {},
    target: dummyTarget,
    targetType: "dummy",
  };
  return partial as CompiledRoute;
}

const payload = checkedFixture;

describe("createRouter", () => {
  const byNameOnly = route("by-name-only");
  const erpContract = route("erp-contract", { component_id: "erp-contract-sync", entity_schema: "contract" });
  const erpAny = route("erp-any", { component_id: "erp-contract-sync" });
  const orders = route("orders", { entity_schema: ["order", "opportunity"] });
  const router = createRouter([byNameOnly, erpContract, erpAny, orders]);

  test("keeps the routes in order", () => {
    expect(router.routes.map((r) => r.name)).toEqual(["by-name-only", "erp-contract", "erp-any", "orders"]);
  });

  test("byName finds a route by its name, with or without match", () => {
    expect(router.byName("by-name-only")).toBe(byNameOnly);
    expect(router.byName("erp-any")).toBe(erpAny);
    expect(router.byName("orders")).toBe(orders);
  });

  test("byName does not find unknown or almost-equal names", () => {
    expect(router.byName("nope")).toBeUndefined();
    expect(router.byName("ERP-ANY")).toBeUndefined();
    expect(router.byName("")).toBeUndefined();
    expect(router.byName("toString")).toBeUndefined();
    expect(router.byName("__proto__")).toBeUndefined();
  });

  test("byMatch returns the first route whose match holds", () => {
    expect(router.byMatch(payload())).toBe(erpContract);
    expect(router.byMatch(payload((raw) => (raw.data.entity._schema = "meter")))).toBe(erpAny);
    expect(
      router.byMatch(
        payload((raw) => {
          raw.data.action_config.component_id = "other";
          raw.data.entity._schema = "opportunity";
        }),
      ),
    ).toBe(orders);
  });

  test("the order of the routes decides when several match", () => {
    const reversed = createRouter([orders, erpAny, erpContract, byNameOnly]);
    expect(reversed.byMatch(payload())).toBe(erpAny);
  });

  test("byMatch returns undefined when no match holds", () => {
    expect(
      router.byMatch(
        payload((raw) => {
          raw.data.action_config.component_id = "other";
          raw.data.entity._schema = "contact";
        }),
      ),
    ).toBeUndefined();
  });

  test("routes without match are never matched, even when they are the only ones", () => {
    const onlyNamed = createRouter([route("a"), route("b")]);
    expect(onlyNamed.byMatch(payload())).toBeUndefined();
    expect(onlyNamed.byName("a")).toBeDefined();
  });

  test("an empty router finds nothing", () => {
    const empty = createRouter([]);
    expect(empty.byName("erp")).toBeUndefined();
    expect(empty.byMatch(payload())).toBeUndefined();
    expect(empty.routes).toEqual([]);
  });
});
