import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import jsonata from "jsonata";
import { compileDirectEvaluator, NOT_DIRECT } from "./direct-evaluation.ts";
import { compileExpression } from "./expression.ts";

const direct = (source: string) => compileDirectEvaluator(jsonata(source).ast());

describe("which expressions are evaluated directly", () => {
  test("object constructors of string keys over plain paths and literals, and lone plain paths", () => {
    for (const source of [
      '{ "contract": data.entity.contract_number, "status": data.entity.status }',
      '{ "n": 1, "m": -1, "s": "x", "t": true, "f": false, "z": null, "p": data }',
      '{ "a": `weird key`.x }',
      "data.entity",
      "data",
      "{}",
    ]) {
      expect(direct(source), source).toBeDefined();
    }
  });

  test("anything else is JSONata's: filters, [], variables, functions, operators, computed or duplicate keys", () => {
    for (const source of [
      '{ "a": data.items[0] }',
      '{ "a": data.items[] }',
      '{ "a": $x }',
      '{ "a": $string(data.n) }',
      '{ "a": data.n + 1 }',
      '{ "a": data.s & "!" }',
      "{ data.key: data.value }",
      '{ "a": data.x, "a": data.y }',
      '{ "a": data.{ "b": c } }',
      "data.items.name",
      '{ "a": data.* }',
      "$",
      '"literal"',
    ]) {
      // A path like data.items.name is plain in shape: it is direct until an array shows up in the input.
      const evaluator = direct(source);
      if (evaluator && source === "data.items.name") {
        expect(evaluator({ data: { items: [{ name: "a" }] } })).toBe(NOT_DIRECT);
        continue;
      }
      expect(evaluator, source).toBeUndefined();
    }
  });
});

describe("the same result as JSONata", () => {
  const EXPRESSIONS = [
    '{ "contract": data.entity.contract_number, "status": data.entity.status, "customer": data.entity.customer_number }',
    '{ "entity": data.entity, "missing": data.nope.deeper, "lit": 42, "t": true, "z": null }',
    '{ "a": a, "b": a.b, "c": a.b.c, "d": d }',
    "a.b",
    "a",
    "{}",
    '{ "ctor": a.constructor, "proto": a.__proto__, "str": a.toString }',
  ];

  // JSON-like values, arrays and nulls included, so the fallback paths are exercised too.
  const leaf = fc.oneof(
    fc.string({ maxLength: 6 }),
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.boolean(),
    fc.constant(null),
  );
  const { json } = fc.letrec((tie) => ({
    json: fc.oneof({ depthSize: "small" }, leaf, tie("object"), fc.array(tie("json"), { maxLength: 3 })),
    object: fc.dictionary(
      fc.constantFrom("a", "b", "c", "d", "data", "entity", "status", "contract_number", "customer_number", "nope"),
      tie("json"),
      {
        maxKeys: 5,
      },
    ),
  }));
  const input = fc.oneof(json, fc.record({ data: fc.record({ entity: json }) }));

  test.each(EXPRESSIONS)("%s", async (source) => {
    const reference = jsonata(source);
    const ours = compileExpression(source);
    await fc.assert(
      fc.asyncProperty(input, async (value) => {
        let expected: unknown;
        let expectedError: unknown;
        try {
          expected = await reference.evaluate(value);
        } catch (error) {
          expectedError = error;
        }
        if (expectedError) {
          await expect(ours.evaluate(value)).rejects.toBeDefined();
          return;
        }
        const actual = await ours.evaluate(value);
        // JSONata marks its result arrays as sequences; compare as JSON-like data.
        expect(normalise(actual)).toEqual(normalise(expected));
      }),
      { numRuns: 300 },
    );
  });

  test("a direct result is the evaluated value itself, keys in the constructor's order, missing fields left out", async () => {
    const entity = { contract_number: "C-1", status: "active" };
    const result = await compileExpression(
      '{ "status": data.entity.status, "gone": data.entity.gone, "entity": data.entity }',
    ).evaluate({ data: { entity } });
    expect(Object.keys(result as object)).toEqual(["status", "entity"]);
    expect((result as { entity: unknown }).entity).toBe(entity);
  });
});

function normalise(value: unknown): unknown {
  return value === undefined
    ? "<undefined>"
    : JSON.parse(JSON.stringify(value, (_key, inner) => (typeof inner === "function" ? "<function>" : inner)));
}
