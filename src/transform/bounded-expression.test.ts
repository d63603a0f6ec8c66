import { describe, expect, test } from "bun:test";
import jsonata from "jsonata";
import { checkBounded } from "./bounded-expression.ts";
import { compileExpression } from "./expression.ts";

const check = (source: string) => checkBounded(jsonata(source).ast());

/** What route configs write most: all of it stays in the gateway's thread. */
const IN_PROCESS = [
  '{ "contract": data.entity.contract_number, "status": data.entity.status }',
  'data.entity.status != "approved"',
  '"contract " & data.entity.contract_number & " is not approved yet"',
  "body.success = false",
  '{ "erp_contract_id": body.id }',
  '"ERP refused the contract: " & body.message',
  '{ "customer": $uppercase(data.entity.customer_number), "yearly": $round(data.entity.monthly_amount * 12, 2) }',
  "$string(data.entity.monthly_amount)",
  'data.items[type = "a"][0].name',
  "data.items[price > 5].name",
  "data.items[-1]",
  "data.items.(price * quantity)",
  "data.items.[name, price]",
  "$sum(data.items.price)",
  "$count(data.items[active])",
  '$join(data.tags, ", ")',
  '$split(data.name, " ")[0]',
  '$contains(data.name, "GmbH")',
  '$replace(data.phone, " ", "")',
  '$substringBefore(data.email, "@")',
  "data.name ~> $substring(0, 40) ~> $trim()",
  "data.a ?: data.b",
  "data.a ?? data.b",
  "data.flag ? data.a : data.b",
  "(data.a; data.b)",
  'data.status in ["approved", "signed"]',
  "$exists(data.entity.email) and $not(data.entity.blocked)",
  '$merge([data.entity, { "source": "epilot" }])',
  "$keys(data.entity)",
  '$lookup(data.entity, "status")',
  "$now()",
  '$fromMillis($millis(), "[Y0001]-[M01]-[D01]")',
  "$body.CustomerRef",
  "$$.data.entity._id",
  "$",
  "data.items.$",
  "-data.n",
  "[data.a, data.b][0]",
  '{ "nested": { "deeper": data.x } }',
];

/** Each of these can take long (or grow quadratically) on some payload: a worker thread runs it. */
const IN_WORKER: [source: string, reason: RegExp][] = [
  ["$distinct(data.items)", /\$distinct/],
  ["$sort(data.items)", /\$sort/],
  ["data.items^(price)", /sorts/],
  ["$match(data.s, /(a+)+$/)", /regular expression|\$match/],
  ["$contains(data.s, /(a+)+$/)", /computed argument|regular expression/],
  ['$replace(data.s, /a/, "b")', /computed argument|regular expression/],
  ["$split(data.s, data.separator)", /computed argument 2/],
  ["$join(data.items, data.separator)", /computed argument 2/],
  ["$substringAfter(data.s, data.marker)", /computed argument 2/],
  ["$now(data.picture)", /computed argument 1/],
  ["$pad(data.s, data.n)", /\$pad/],
  ["$eval(data.expression)", /\$eval/],
  ["$formatNumber(data.n, data.picture)", /\$formatNumber/],
  ["$toMillis(data.timestamp)", /\$toMillis/],
  ["$spread(data.items)", /\$spread/],
  ["$map(data.items, function($v) { $v.price })", /\$map/],
  ["data.items ~> function($v) { $v }", /function value/],
  ["($f := function($n) { $n }; $f(1))", /binds a variable|defines a function/],
  ["$x(data)", /\$x/],
  ["[1..data.n]", /range/],
  ["data.*", /wildcard/],
  ["data.**.name", /descendant/],
  ["data.items.%.name", /parent/],
  ["data.items@$i.name", /@/],
  ["data.items#$i.name", /#/],
  ["data.items{ type: $sum(price) }", /groups/],
  ['data.items.{ "name": name }', /builds an object inside a path step/],
  ['data.items[$count({ "a": a }) > 0]', /builds an object inside a path step/],
  ["data.items.$body", /reads \$body inside a path step/],
  ["data.items[id = $$.data.entity._id]", /reads \$\$ inside a path step/],
  ['data ~> | entity | { "x": 1 } |', /function value/],
  ["$string(data, data.pretty, 3)", /3 arguments/],
];

describe("the static check of an expression's cost", () => {
  test("common route expressions are proven linear and run in the gateway's thread", () => {
    for (const source of IN_PROCESS) {
      expect({ source, check: check(source).bounded }).toEqual({ source, check: true });
      expect(compileExpression(source).runsIn).toBe("process");
    }
  });

  test("anything that can run long goes to a worker thread, with the reason named", () => {
    for (const [source, reason] of IN_WORKER) {
      const result = check(source);
      expect({ source, bounded: result.bounded }).toEqual({ source, bounded: false });
      if (!result.bounded) expect(result.reason).toMatch(reason);
      expect(compileExpression(source).runsIn).toBe("worker");
    }
  });

  test("an expression that builds objects is marked: over an array input it would group, quadratically", () => {
    expect(check('{ "a": data.x }')).toEqual({ bounded: true, needsObjectInput: true });
    expect(check("[data.x, data.y]")).toEqual({ bounded: true, needsObjectInput: false });
    expect(check('$merge([{ "a": 1 }, data])')).toEqual({ bounded: true, needsObjectInput: true });
  });

  test("a field the check does not know sends the expression to a worker", () => {
    const ast = jsonata("data.x").ast() as unknown as { steps: Record<string, unknown>[] };
    ast.steps[0]!.futureFlag = true;
    expect(checkBounded(ast)).toEqual({ bounded: false, reason: "has a part this check does not know (futureFlag)" });
  });

  test("what the check accepts stays fast on a 1 MB input, in the gateway's thread", async () => {
    const items = Array.from({ length: 10_000 }, (_, i) => ({
      id: `item-${i}`,
      type: i % 3 === 0 ? "a" : "b",
      price: i % 100,
      quantity: 2,
      active: i % 2 === 0,
      name: `  Item number ${i} GmbH  `,
      tags: ["x", "y"],
    }));
    const input = { data: { items, tags: items.map((item) => item.id), name: "x ".repeat(100_000) } };
    expect(JSON.stringify(input).length).toBeGreaterThan(1_000_000);
    for (const source of [
      "data.items[price > 5].name",
      "$sum(data.items.(price * quantity))",
      '$join(data.tags, ", ")',
      '$split(data.name, " ")[0]',
      '$count(data.items[$contains(name, "GmbH")])',
      "data.items.$trim($uppercase(name))",
      "$string(data.items)",
      "$keys(data.items)",
      "data.items.[id, tags]",
      'data.items[type in ["a"]].id',
      '{ "all": data.items, "n": $count(data.items) }',
    ]) {
      const expression = compileExpression(source);
      expect(expression.runsIn).toBe("process");
      const started = performance.now();
      await expression.evaluate(input);
      expect({ source, fast: performance.now() - started < 500 }).toEqual({ source, fast: true });
    }
  });

  test("an expression that builds objects runs in a worker when its input is an array", async () => {
    // JSONata groups an array's items by copying the group once per item: 40,000 items take about
    // a second. In the gateway's thread that second would block every other call.
    const expression = compileExpression('{ "x": { "y": 1 } }');
    expect(expression.runsIn).toBe("process");
    const items = Array.from({ length: 40_000 }, (_, i) => ({ i }));
    const started = performance.now();
    let timerFiredAfter = Number.POSITIVE_INFINITY;
    const timer = setTimeout(() => (timerFiredAfter = performance.now() - started), 20);
    expect(await expression.evaluate(items)).toEqual({ x: { y: 1 } });
    clearTimeout(timer);
    expect(timerFiredAfter).toBeLessThan(300);
    // Over the one object a route's input is, the same expression stays in this thread.
    expect(await expression.evaluate({ items })).toEqual({ x: { y: 1 } });
  });
});
