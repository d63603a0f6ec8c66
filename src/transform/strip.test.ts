import { describe, expect, test } from "bun:test";
import { fixturePayload } from "../../test/support/signing.ts";
import { parseStripPath, type StripPath, stripPaths, strippedPaths } from "./strip.ts";

const paths = (...texts: string[]) => texts.map(parseStripPath);
/** stripPaths types its result as its input; the tests compare against the stripped shape. */
const strip = (value: unknown, list: StripPath[]): any => stripPaths(value, list);

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object") {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

describe("parseStripPath", () => {
  test("splits a dot path into segments", () => {
    expect(parseStripPath("data.app_options.api_key")).toEqual(["data", "app_options", "api_key"]);
    expect(parseStripPath("data.items.*.secret")).toEqual(["data", "items", "*", "secret"]);
    expect(parseStripPath("token")).toEqual(["token"]);
  });
});

describe("stripPaths", () => {
  test("removes plain paths and keeps their siblings", () => {
    const input = { data: { app_options: { api_key: "s", erp: "1" }, entity: { _id: "e" } }, type: "x" };
    expect(strip(input, paths("data.app_options.api_key"))).toEqual({
      data: { app_options: { erp: "1" }, entity: { _id: "e" } },
      type: "x",
    });
  });

  test("removes a whole subtree and a top-level key", () => {
    const input = { data: { trigger_event: { caller: { token: "t" } }, org_id: "1" }, secret: "s" };
    expect(strip(input, paths("data.trigger_event", "secret"))).toEqual({ data: { org_id: "1" } });
  });

  test("removes a key whose value is null or falsy", () => {
    expect(strip({ a: null, b: 0, c: false, d: "" }, paths("a", "b", "c"))).toEqual({ d: "" });
  });

  test("`*` goes over every key of an object", () => {
    const input = {
      users: { jane: { name: "Jane", token: "t1" }, joe: { name: "Joe", token: "t2" }, bot: "not-an-object" },
    };
    expect(strip(input, paths("users.*.token"))).toEqual({
      users: { jane: { name: "Jane" }, joe: { name: "Joe" }, bot: "not-an-object" },
    });
  });

  test("`*` goes over every index of an array", () => {
    const input = { items: [{ id: 1, secret: "a" }, { id: 2, secret: "b" }, { id: 3 }] };
    expect(strip(input, paths("items.*.secret"))).toEqual({ items: [{ id: 1 }, { id: 2 }, { id: 3 }] });
  });

  test("`*` as the last segment empties the container", () => {
    expect(strip({ a: { x: 1, y: 2 }, b: [1, 2], c: 1 }, paths("a.*", "b.*"))).toEqual({ a: {}, b: [], c: 1 });
  });

  test("nested `*` over arrays of objects of arrays", () => {
    const input = {
      orders: [
        {
          lines: [
            { sku: "a", price: 1 },
            { sku: "b", price: 2 },
          ],
        },
        { lines: [{ sku: "c", price: 3 }] },
      ],
    };
    expect(strip(input, paths("orders.*.lines.*.price"))).toEqual({
      orders: [{ lines: [{ sku: "a" }, { sku: "b" }] }, { lines: [{ sku: "c" }] }],
    });
  });

  test("a numeric index removes that array element or a key inside it", () => {
    const input = {
      items: [
        { id: 1, secret: "a" },
        { id: 2, secret: "b" },
        { id: 3, secret: "c" },
      ],
    };
    expect(strip(input, paths("items.1.secret"))).toEqual({
      items: [{ id: 1, secret: "a" }, { id: 2 }, { id: 3, secret: "c" }],
    });
    expect(strip(input, paths("items.0"))).toEqual({
      items: [
        { id: 2, secret: "b" },
        { id: 3, secret: "c" },
      ],
    });
  });

  test("several numeric indexes of one array remove exactly the listed elements", () => {
    const input = { items: ["a", "b", "c", "d"] };
    expect(strip(input, paths("items.0", "items.1"))).toEqual({ items: ["c", "d"] });
    expect(strip(input, paths("items.1", "items.0"))).toEqual({ items: ["c", "d"] });
    expect(strip(input, paths("items.0", "items.2"))).toEqual({ items: ["b", "d"] });
  });

  test("removing an element does not shift a later path into its neighbour", () => {
    const input = { items: [{ token: "t0" }, { token: "t1" }, { token: "t2" }] };
    expect(strip(input, paths("items.0", "items.1.token"))).toEqual({ items: [{}, { token: "t2" }] });
  });

  test("index and `*` paths combine without leaving removed elements behind", () => {
    const input = { items: [{ token: "t0", id: 0 }, { token: "t1", id: 1 }, [{ token: "n0" }, { token: "n1" }]] };
    const out = strip(input, paths("items.0", "items.*.token", "items.2.0", "items.0.id", "items.2.*.token"));
    expect(out).toEqual({ items: [{ id: 1 }, [{}]] });
    expect(JSON.stringify(out)).toBe('{"items":[{"id":1},[{}]]}');
  });

  test("a numeric segment on an object is a key name", () => {
    expect(strip({ codes: { "0": "zero", "1": "one" } }, paths("codes.0"))).toEqual({ codes: { "1": "one" } });
  });

  test("missing paths are a no-op", () => {
    const input = deepFreeze({ data: { entity: { _id: "e" }, list: [1, 2] }, n: 1 });
    const out = strip(
      input,
      paths(
        "data.app_options.api_key",
        "nope",
        "data.entity._id.deeper",
        "data.list.5",
        "data.list.-1",
        "data.list.x",
        "data.list.1.5",
        "n.inner",
      ),
    );
    expect(out).toEqual({ data: { entity: { _id: "e" }, list: [1, 2] }, n: 1 });
    // A path missing from the top is not even a copy.
    expect(strip(input, paths("nope.deeper", "missing"))).toBe(input);
  });

  test("strips nothing from primitives and null", () => {
    expect(strip("text", paths("a"))).toBe("text");
    expect(strip(null, paths("a"))).toBeNull();
    expect(strip({ a: null }, paths("a.b"))).toEqual({ a: null });
  });

  test("does not touch inherited properties", () => {
    const input = { a: 1 };
    expect(strip(input, paths("toString", "__proto__.x"))).toBe(input);
  });

  test("leaves the original untouched (copy-on-write) and shares untouched branches", () => {
    const input = deepFreeze({
      data: {
        app_options: { api_key: "s", erp: "1" },
        entity: { _id: "e", nested: { x: 1 } },
        items: [{ secret: "a" }, { secret: "b" }],
      },
    });
    const snapshot = structuredClone(input);
    const out = strip(input, paths("data.app_options.api_key", "data.items.*.secret", "data.items.0"));
    expect(input).toEqual(snapshot);
    expect(out).not.toBe(input);
    expect(out.data.app_options).toEqual({ erp: "1" });
    expect(out.data.items).toEqual([{}]);
    expect(out.data.entity).toBe(input.data.entity);
  });

  test("the fixture payload without data.trigger_event.caller and data.app_options.api_key", () => {
    const payload = fixturePayload();
    const snapshot = structuredClone(payload);
    const out = strip(payload, paths("data.trigger_event.caller", "data.app_options.api_key"));

    expect(payload).toEqual(snapshot);
    expect(out.data.trigger_event.caller).toBeUndefined();
    expect("caller" in out.data.trigger_event).toBe(false);
    expect(out.data.trigger_event).toEqual({
      type: "manual",
      org_id: "739224",
      entity_id: "3f2c1a90-5d7e-4b8a-9c11-2f6e8d0b7a41",
    });
    expect(out.data.app_options).toEqual({ erp_client: "100" });
    const text = JSON.stringify(out);
    expect(text).not.toContain("user-token-that-must-never-leave-the-gateway");
    expect(text).not.toContain("jane.doe@example.com");
    expect(text).not.toContain("app-option-secret-value");
    // Everything else is as sent.
    expect(out.data.entity).toEqual(snapshot.data.entity);
    expect(out.data.exection_action_id).toBe("a1b2c3d4e5");
    expect(out.data.resume_token).toBe(snapshot.data.resume_token);
    expect(payload.data.trigger_event.caller.EpilotAuth.token).toContain("user-token");
  });
});

describe("strippedPaths", () => {
  const payload = {
    data: {
      app_options: { api_key: "s", erp: "1" },
      items: [{ secret: 1, n: 1 }, { n: 2 }, { secret: 3 }],
      trigger_event: { caller: { token: "t" } },
    },
  };

  test("each path strip removes, written out, in the order strip applies them", () => {
    expect(
      strippedPaths(
        payload,
        ["data.items.*.secret", "data.app_options.api_key", "data.missing.key"].map(parseStripPath),
      ),
    ).toEqual(["data.items.0.secret", "data.items.2.secret", "data.app_options.api_key"]);
  });

  test("a path inside one removed before is not listed again; a trailing * lists every key", () => {
    expect(
      strippedPaths(
        payload,
        ["data.trigger_event", "data.trigger_event.caller", "data.app_options.*"].map(parseStripPath),
      ),
    ).toEqual(["data.trigger_event", "data.app_options.api_key", "data.app_options.erp"]);
  });

  test("nothing listed for a payload without those paths", () => {
    expect(strippedPaths({ data: {} }, [parseStripPath("data.app_options.api_key")])).toEqual([]);
  });
});
