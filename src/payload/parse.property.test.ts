import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { verifiedCallOf } from "../../test/support/calls.ts";
import { fixturePayload } from "../../test/support/signing.ts";
import { parseCustomAction } from "./parse.ts";

/**
 * Properties of the payload parser over generated bodies: it never throws, it answers a bounded,
 * readable reason, it accepts only what has the fields routing relies on, and it keeps unknown fields.
 */
const encode = (value: unknown) => new TextEncoder().encode(typeof value === "string" ? value : JSON.stringify(value));

/** Keys that look like the payload's own, so that generated objects come close to valid ones. */
const key = fc.oneof(
  fc.constantFrom(
    "type",
    "data",
    "org_id",
    "entity",
    "action_config",
    "_schema",
    "component_id",
    "app_options",
    "__proto__",
    "constructor",
  ),
  fc.string({ maxLength: 8 }),
);
const jsonish = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    fc.constant("external_integration"),
    fc.jsonValue({ maxDepth: 1 }),
    fc.dictionary(key, tie("value"), { maxKeys: 5 }),
    fc.array(tie("value"), { maxLength: 3 }),
  ),
})).value;

describe("parseCustomAction properties", () => {
  test("arbitrary bytes never throw; a refusal is a short message", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), async (bytes) => {
        const result = parseCustomAction(await verifiedCallOf(bytes));
        if (!result.ok) {
          expect(typeof result.message).toBe("string");
          expect(result.message.length).toBeLessThan(2_000);
        }
      }),
      { numRuns: 300 },
    );
  });

  test("arbitrary JSON never throws, and anything accepted has the fields routing relies on", async () => {
    await fc.assert(
      fc.asyncProperty(jsonish, async (value) => {
        const result = parseCustomAction(await verifiedCallOf(encode(value)));
        if (result.ok) {
          expect(result.parsed.payload.type).toBe("external_integration");
          expect(typeof result.parsed.payload.data.org_id).toBe("string");
          expect(typeof result.parsed.payload.data.entity).toBe("object");
        } else {
          expect(result.message.length).toBeLessThan(2_000);
        }
      }),
      { numRuns: 400 },
    );
  });

  test("a real payload with unknown fields added anywhere still parses and keeps them", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<string[]>([], ["data"], ["data", "entity"], ["data", "action_config"]),
        fc.stringMatching(/^x_[a-z]{1,10}$/),
        fc.jsonValue({ maxDepth: 2 }),
        async (path, name, extra) => {
          const payload = fixturePayload();
          let node: Record<string, any> = payload;
          for (const segment of path) node = node[segment];
          node[name] = extra;
          const result = parseCustomAction(await verifiedCallOf(encode(payload)));
          expect(result.ok).toBe(true);
          if (!result.ok) return;
          let kept: any = result.parsed.payload;
          for (const segment of path) kept = kept[segment];
          expect(kept[name]).toEqual(JSON.parse(JSON.stringify(extra)));
        },
      ),
      { numRuns: 100 },
    );
  });

  test("removing a required field or breaking `type` is always refused with the field's path", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom("type", "data", "data.org_id", "data.entity"),
        fc.constantFrom("remove", "null", "wrong type"),
        async (field, how) => {
          const payload = fixturePayload();
          const segments = field.split(".");
          const parent = segments.slice(0, -1).reduce<Record<string, any>>((node, segment) => node[segment], payload);
          const last = segments.at(-1)!;
          if (how === "remove") delete parent[last];
          else parent[last] = how === "null" ? null : [true];
          const result = parseCustomAction(await verifiedCallOf(encode(payload)));
          expect(result.ok).toBe(false);
          if (!result.ok) expect(result.message).toContain(field);
        },
      ),
      { numRuns: 40 },
    );
  });
});
