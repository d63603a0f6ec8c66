import { describe, expect, test } from "bun:test";
import jsonata from "jsonata";
import { fixturePayload } from "../../test/support/signing.ts";
import { compileExpression, ExpressionEvaluationError, ExpressionSyntaxError } from "./expression.ts";

async function evaluationError(
  source: string,
  input: unknown,
  bindings?: Record<string, unknown>,
): Promise<ExpressionEvaluationError> {
  const expression = compileExpression(source);
  let thrown: unknown;
  try {
    await expression.evaluate(input, bindings);
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(ExpressionEvaluationError);
  return thrown as ExpressionEvaluationError;
}

function syntaxError(source: string): ExpressionSyntaxError {
  let thrown: unknown;
  try {
    compileExpression(source);
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(ExpressionSyntaxError);
  return thrown as ExpressionSyntaxError;
}

describe("compileExpression", () => {
  test("evaluates against the payload and keeps its source", async () => {
    const source =
      '{ "contract": data.entity.contract_number, "status": data.entity.status, "city": data.entity.billing_address.city }';
    const expression = compileExpression(source);
    expect(expression.source).toBe(source);
    expect(await expression.evaluate(fixturePayload())).toEqual({
      contract: "2026-0042",
      status: "approved",
      city: "Köln",
    });
  });

  test("the same compiled expression serves many payloads", async () => {
    const expression = compileExpression("data.entity.monthly_amount * 12");
    const a = fixturePayload();
    const b = fixturePayload();
    b.data.entity.monthly_amount = 10;
    expect(await Promise.all([expression.evaluate(a), expression.evaluate(b)])).toEqual([1014, 120]);
  });

  test("passes bindings as variables", async () => {
    expect(await compileExpression("$route & ':' & id").evaluate({ id: "7" }, { route: "erp" })).toBe("erp:7");
  });

  test("a missing field evaluates to undefined, not an error", async () => {
    expect(await compileExpression("data.nope.deeper").evaluate(fixturePayload())).toBeUndefined();
  });

  test("a syntax error throws ExpressionSyntaxError with the position", () => {
    const error = syntaxError('{ "a": data.entity. }');
    expect(error.name).toBe("ExpressionSyntaxError");
    expect(typeof error.position).toBe("number");
    expect(error.position).toBeGreaterThan(0);
    expect(error.message.length).toBeGreaterThan(0);

    const unclosed = syntaxError("{ a: ");
    expect(unclosed.position).toBe(5);
    expect(unclosed.message).toContain("}");
  });

  test("an evaluation error does not carry the offending payload value", async () => {
    const error = await evaluationError("$number(secret)", { secret: "s3cr3t-value" });
    expect(error.name).toBe("ExpressionEvaluationError");
    expect(error.code).toBe("D3030");
    expect(error.position).toBeGreaterThan(0);
    expect(error.message).toContain("Unable to cast value to a number");
    expect(error.message).not.toContain("s3cr3t-value");
    expect(error.stack ?? "").not.toContain("s3cr3t-value");
  });

  test("a value with quotes and backslashes does not leak in its JSON-escaped form", async () => {
    const secret = 'pa"ss\\word-4711';
    const error = await evaluationError("$number(secret)", { secret });
    expect(error.message).not.toContain("pa");
    expect(error.message).not.toContain("word-4711");
  });

  test("neither side of a failed comparison leaks", async () => {
    const left = await evaluationError("a < b", { a: "left-secret", b: 4711 });
    expect(left.code).toBe("T2009");
    expect(left.message).not.toContain("left-secret");
    expect(left.message).not.toContain("4711");
    const right = await evaluationError("a < b", { a: 4711, b: "right-secret" });
    expect(right.message).not.toContain("right-secret");
    expect(right.message).not.toContain("4711");
  });

  test("an object value does not leak either", async () => {
    const error = await evaluationError("-data.app_options", fixturePayload());
    expect(error.code).toBe("D1002");
    expect(error.message).not.toContain("app-option-secret-value");
  });

  test("a short value does not mangle the rest of the message", async () => {
    const error = await evaluationError("$number(x)", { x: "a" });
    expect(error.message).toBe("Unable to cast value to a number: <value>");
  });

  test("infinite recursion fails at the time limit instead of hanging", async () => {
    const started = Date.now();
    const error = await evaluationError("($f := function(){ $f() }; $f())", {});
    expect(error.code).toBe("timeout");
    expect(error.message).toBe("the expression ran longer than 2000 ms and was stopped");
    expect(Date.now() - started).toBeLessThan(3_000);
  }, 5_000);

  test("an expression that can run long is evaluated in a worker, and the result is the same", async () => {
    const expression = compileExpression("$sort(data.entity.billing_address.*)");
    expect(expression.runsIn).toBe("worker");
    expect(await expression.evaluate(fixturePayload())).toEqual(["50667", "DE", "Hauptstraße 5", "Köln"]);
  });

  test("an evaluation error in a worker does not carry the payload value either", async () => {
    const error = await evaluationError("(function($v) { $number($v) })(secret)", { secret: "s3cr3t-value" });
    expect(error.code).toBe("D3030");
    expect(error.message).toBe("Unable to cast value to a number: <value>");
  });

  test("a binding named like a built-in replaces it, as in JSONata (the call then goes to a worker)", async () => {
    const expression = compileExpression("$string(x)");
    expect(expression.runsIn).toBe("process");
    const reference = await jsonata("$string(x)")
      .evaluate({ x: 1 }, { string: "shadowed" })
      .catch((error: { code: string }) => error.code);
    expect(reference).toBe("T1006");
    expect((await evaluationError("$string(x)", { x: 1 }, { string: "shadowed" })).code).toBe("T1006");
  });

  test("deep non-tail recursion fails on the stack limit", async () => {
    const error = await evaluationError("($f := function($n){ $n + $f($n) }; $f(1))", {});
    expect(error.code).toBe("D1011");
  });
});
