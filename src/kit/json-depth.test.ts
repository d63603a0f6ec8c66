import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { exceedsJsonDepth } from "./json-depth.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

/** The nesting depth of a parsed value, the slow and obvious way. */
function depthOf(value: unknown): number {
  if (value === null || typeof value !== "object") return 0;
  const children = Array.isArray(value) ? value : Object.values(value);
  return 1 + children.reduce((most: number, child) => Math.max(most, depthOf(child)), 0);
}

describe("exceedsJsonDepth", () => {
  test("counts arrays and objects, nothing else", () => {
    for (const [text, depth] of [
      ["1", 0],
      ['"x"', 0],
      ["{}", 1],
      ["[]", 1],
      ['{"a":[1,{"b":null}]}', 3],
      ['[[], [[]], {"a": {}}]', 3],
    ] as const) {
      for (const form of [text, bytes(text)]) {
        expect({ text, exceeds: exceedsJsonDepth(form, depth) }).toEqual({ text, exceeds: false });
        expect({ text, exceeds: exceedsJsonDepth(form, depth - 1) }).toEqual({ text, exceeds: depth > 0 });
      }
    }
  });

  test("brackets inside strings do not count, escaped quotes do not end a string", () => {
    const text = JSON.stringify({ a: '[[[{{{"\\"]]]', b: "\\", c: ["\\\\[", '"{'] });
    expect(depthOf(JSON.parse(text))).toBe(2);
    expect(exceedsJsonDepth(text, 2)).toBe(false);
    expect(exceedsJsonDepth(bytes(text), 2)).toBe(false);
    expect(exceedsJsonDepth(text, 1)).toBe(true);
  });

  test("UTF-8 text outside ASCII is read correctly as bytes", () => {
    const text = JSON.stringify({ city: "Köln", emoji: "🙂[", nested: [{ x: "ß" }] });
    expect(exceedsJsonDepth(bytes(text), 3)).toBe(false);
    expect(exceedsJsonDepth(bytes(text), 2)).toBe(true);
  });

  test("100,000 levels are refused at once, without reading the rest", () => {
    const deep = `${"[".repeat(100_000)}${"]".repeat(100_000)}`;
    const started = performance.now();
    expect(exceedsJsonDepth(bytes(deep), 64)).toBe(true);
    expect(exceedsJsonDepth(deep, 64)).toBe(true);
    expect(performance.now() - started).toBeLessThan(20);
  });

  test("agrees with the parsed value's depth for any JSON (strings full of brackets, quotes and backslashes)", () => {
    const tricky = fc.string({ unit: fc.constantFrom("[", "]", "{", "}", '"', "\\", "a", "ö", "🙂"), maxLength: 8 });
    const { json } = fc.letrec((tie) => ({
      json: fc.oneof(
        { depthSize: "medium" },
        tricky,
        fc.integer(),
        fc.constant(null),
        fc.array(tie("json"), { maxLength: 3 }),
        fc.dictionary(tricky, tie("json"), { maxKeys: 3 }),
      ),
    }));
    fc.assert(
      fc.property(json, fc.integer({ min: 0, max: 8 }), fc.boolean(), (value, limit, pretty) => {
        const text = JSON.stringify(value, null, pretty ? 2 : undefined);
        const expected = depthOf(value) > limit;
        expect(exceedsJsonDepth(text, limit)).toBe(expected);
        expect(exceedsJsonDepth(bytes(text), limit)).toBe(expected);
      }),
      { numRuns: 2_000 },
    );
  });
});
