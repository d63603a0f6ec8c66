import { describe, expect, test } from "bun:test";
import { parsedCallOf, parsedMessageOf } from "../../test/support/calls.ts";
import { compileMatch, compileMessageMatch, type MatchRules, type MessageMatchRules } from "./match.ts";
import { createRouter, inputOf, type Routable } from "./router.ts";

/** A route as the router sees it: a name and, with `match`, the predicate compiled from it. */
function route(name: string, match?: MatchRules): Routable {
  const matches = match ? compileMatch(match) : undefined;
  return { name, ...(matches ? { matches: (call) => matches(call.payload) } : {}) };
}

const payload = parsedCallOf;

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

  test("byMatch returns the first route whose match holds", async () => {
    expect(router.byMatch(await payload())).toBe(erpContract);
    expect(router.byMatch(await payload((raw) => (raw.data.entity._schema = "meter")))).toBe(erpAny);
    expect(
      router.byMatch(
        await payload((raw) => {
          raw.data.action_config.component_id = "other";
          raw.data.entity._schema = "opportunity";
        }),
      ),
    ).toBe(orders);
  });

  test("the order of the routes decides when several match", async () => {
    const reversed = createRouter([orders, erpAny, erpContract, byNameOnly]);
    expect(reversed.byMatch(await payload())).toBe(erpAny);
  });

  test("byMatch returns undefined when no match holds", async () => {
    expect(
      router.byMatch(
        await payload((raw) => {
          raw.data.action_config.component_id = "other";
          raw.data.entity._schema = "contact";
        }),
      ),
    ).toBeUndefined();
  });

  test("routes without match are never matched, even when they are the only ones", async () => {
    const onlyNamed = createRouter([route("a"), route("b")]);
    expect(onlyNamed.byMatch(await payload())).toBeUndefined();
    expect(onlyNamed.byName("a")).toBeDefined();
  });

  test("an empty router finds nothing", async () => {
    const empty = createRouter([]);
    expect(empty.byName("erp")).toBeUndefined();
    expect(empty.byMatch(await payload())).toBeUndefined();
    expect(empty.routes).toEqual([]);
  });
});

describe("createRouter with routes of polled messages", () => {
  const messageRoute = (name: string, match: MessageMatchRules): Routable => ({
    name,
    matchesMessage: compileMessageMatch(match),
  });
  const contracts = messageRoute("contracts", { source: "erp-feed", event_name: "contract.updated" });
  const anyFromFeed = messageRoute("feed-rest", { source: "erp-feed" });
  const calls = route("calls", { component_id: "erp-contract-sync" });
  const router = createRouter([contracts, calls, anyFromFeed]);

  test("a polled message goes to the first route of its source whose match holds, never to a call's route", () => {
    expect(router.byMatch(parsedMessageOf())).toBe(contracts);
    expect(router.byMatch(parsedMessageOf((raw) => (raw.event_name = "contract.created")))).toBe(anyFromFeed);
    expect(router.byMatch(parsedMessageOf(() => {}, "other-feed"))).toBeUndefined();
  });

  test("a call never reaches a route of polled messages, not even by its name", async () => {
    expect(router.byMatch(await payload())).toBe(calls);
    expect(router.byName("contracts")).toBeUndefined();
    expect(router.byName("calls")).toBe(calls);
    const onlyMessages = createRouter([contracts]);
    expect(onlyMessages.byMatch(await payload())).toBeUndefined();
  });

  test("byName with input message finds routes of polled messages only (explain and test name them)", () => {
    expect(router.byName("contracts", "message")).toBe(contracts);
    expect(router.byName("calls", "message")).toBeUndefined();
    expect(inputOf(contracts)).toBe("message");
    expect(inputOf(calls)).toBe("call");
  });
});
