import { afterEach, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import jsonata from "jsonata";
import { ExpressionEvaluationError } from "./evaluation-error.ts";
import { ExpressionPool, type ExpressionPoolOptions } from "./expression-pool.ts";

/**
 * The pool with real worker threads, with a short time limit so that the runaway cases stay quick.
 * Each test gets its own pool; afterEach closes it.
 */

let pool: ExpressionPool | undefined;
afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

function startPool(options: Partial<ExpressionPoolOptions> = {}): ExpressionPool {
  pool = new ExpressionPool({ threads: 1, timeLimitMs: 400, maxQueued: 10, ...options });
  return pool;
}

async function failureOf(promise: Promise<unknown>): Promise<ExpressionEvaluationError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(ExpressionEvaluationError);
    return error as ExpressionEvaluationError;
  }
  throw new Error("expected the evaluation to fail");
}

/** Records the longest gap between ticks of a 10 ms interval: how long the event loop was blocked. */
function watchEventLoop(): { stop(): number } {
  let last = performance.now();
  let longest = 0;
  const interval = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 10);
  return {
    stop() {
      clearInterval(interval);
      return Math.max(longest, performance.now() - last);
    },
  };
}

const distinctItems = { items: Array.from({ length: 100_000 }, (_, i) => i) };
const catastrophic = { s: `${"a".repeat(45)}b` };

describe("ExpressionPool", () => {
  test("gives what JSONata gives, bindings and a missing value included", async () => {
    const pool = startPool({ threads: 2 });
    const input = { items: [3, 1, 2], nested: { a: [{ b: 1 }, { b: 2 }] }, s: "x" };
    for (const source of [
      "$sort(items)",
      "$map(items, function($v) { $v * 2 })",
      "nested.a.b",
      "$distinct([1, 1, 2])",
      '$match("ab12", /[0-9]+/).match',
      "nope.deeper",
      '{ "s": s, "n": $count(items) }',
    ]) {
      expect({ source, result: await pool.evaluate(source, input) }).toEqual({
        source,
        result: await jsonata(source).evaluate(input),
      });
    }
    expect(await pool.evaluate("$body.id & ':' & $route", {}, { body: { id: 7 }, route: "erp" })).toBe("7:erp");
    expect(await pool.evaluate("$", undefined)).toBeUndefined();
  });

  test("$distinct over 100,000 items is stopped at the limit while the event loop runs on; the next call works", async () => {
    const pool = startPool({ maxWaitMs: 5_000 });
    const loop = watchEventLoop();
    const started = performance.now();
    const error = await failureOf(pool.evaluate("$distinct(items)", distinctItems));
    const elapsed = performance.now() - started;
    expect(loop.stop()).toBeLessThan(250);
    expect(error.code).toBe("timeout");
    expect(error.message).toBe("the expression ran longer than 400 ms and was stopped");
    expect(elapsed).toBeGreaterThanOrEqual(390);
    expect(elapsed).toBeLessThan(1_000);
    // The stuck thread is being replaced; the next evaluation runs on a fresh one.
    expect(await pool.evaluate("$distinct([1, 2, 2])", {})).toEqual([1, 2]);
    expect(pool.stats()).toEqual({ threads: 1, busy: 0, stopping: 0, queued: 0 });
  });

  test("a catastrophic regex is stopped the same way", async () => {
    // Stopping a thread in the middle of a regex takes Bun up to a few hundred ms: wait for the new one.
    const pool = startPool({ maxWaitMs: 5_000 });
    const loop = watchEventLoop();
    const error = await failureOf(pool.evaluate("$match(s, /(a+)+$/)", catastrophic));
    expect(loop.stop()).toBeLessThan(250);
    expect(error.code).toBe("timeout");
    expect(await pool.evaluate('$match("a1", /[0-9]/).match', {})).toBe("1");
  });

  test("an error in the worker keeps its JSONata code and loses the payload value", async () => {
    const pool = startPool();
    const error = await failureOf(pool.evaluate("(function($v) { $number($v) })(secret)", { secret: "s3cr3t-value" }));
    expect(error.code).toBe("D3030");
    expect(error.message).toBe("Unable to cast value to a number: <value>");
    expect(typeof error.position).toBe("number");
  });

  test("at most maxQueued evaluations wait; one more fails at once with busy", async () => {
    const pool = startPool({ maxQueued: 2, timeLimitMs: 600, maxWaitMs: 5_000 });
    const running = pool.evaluate("$distinct(items)", distinctItems).catch((error: unknown) => error);
    const waiting = [pool.evaluate("1", {}), pool.evaluate("2", {})];
    const started = performance.now();
    const refused = await failureOf(pool.evaluate("3", {}));
    expect(performance.now() - started).toBeLessThan(50);
    expect(refused.code).toBe("busy");
    expect(refused.message).toBe("2 evaluations are already waiting for a worker");
    expect(pool.stats()).toMatchObject({ busy: 1, queued: 2 });
    // Once the stuck thread is replaced, the waiting ones run.
    expect(((await running) as ExpressionEvaluationError).code).toBe("timeout");
    expect(await Promise.all(waiting)).toEqual([1, 2]);
  });

  test("an evaluation waits for a thread at most maxWaitMs, then fails with busy", async () => {
    const pool = startPool({ timeLimitMs: 1_000, maxWaitMs: 100 });
    const running = pool.evaluate("$distinct(items)", distinctItems).catch((error: unknown) => error);
    const started = performance.now();
    const error = await failureOf(pool.evaluate("1", {}));
    expect(performance.now() - started).toBeLessThan(400);
    expect(error.code).toBe("busy");
    expect(error.message).toBe("no expression worker was free within 100 ms");
    expect(pool.stats().queued).toBe(0);
    await running;
  });

  test("a result nested too deep or too large fails in the worker, not in the gateway's thread", async () => {
    const pool = startPool({ timeLimitMs: 5_000 });
    const deep = await failureOf(pool.evaluate('$reduce([1..2000], function($acc, $v) { { "a": $acc } }, {})', {}));
    expect(deep.code).toBe("result_too_large");
    expect(deep.message).toBe("the result is nested deeper than 1000 levels");
    const large = await failureOf(pool.evaluate('$pad("", 17000000)', {}));
    expect(large.code).toBe("result_too_large");
    expect(large.message).toBe("the result is larger than 16 MB as JSON");
  }, 20_000);

  test("a worker that cannot start fails the evaluation with worker_failed instead of hanging", async () => {
    const pool = startPool({ entry: "transform/no-such-worker.ts" });
    const error = await failureOf(pool.evaluate("$sort([2, 1])", {}));
    expect(error.code).toBe("worker_failed");
    expect(error.message).toStartWith("the expression worker failed:");
    // The broken thread does not hold its place: the next evaluation tries a new one.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(pool.stats()).toEqual({ threads: 0, busy: 0, stopping: 0, queued: 0 });
    expect((await failureOf(pool.evaluate("1", {}))).code).toBe("worker_failed");
  });

  test("close fails what runs and waits with closed, stops every thread, and refuses what comes after", async () => {
    const pool = startPool({ timeLimitMs: 5_000 });
    const running = failureOf(pool.evaluate("$distinct(items)", distinctItems));
    const waiting = failureOf(pool.evaluate("1", {}));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const started = performance.now();
    await pool.close();
    expect(performance.now() - started).toBeLessThan(1_100);
    expect((await running).code).toBe("closed");
    expect((await waiting).code).toBe("closed");
    expect(pool.stats()).toEqual({ threads: 0, busy: 0, stopping: 0, queued: 0 });
    expect((await failureOf(pool.evaluate("1", {}))).code).toBe("closed");
  });

  test("idle threads do not keep the process alive", () => {
    // Without unref() on idle threads this script would never exit by itself.
    const dir = mkdtempSync(join(tmpdir(), "actiongate-pool-"));
    try {
      const script = join(dir, "script.ts");
      writeFileSync(
        script,
        `import { ExpressionPool } from ${JSON.stringify(join(import.meta.dir, "expression-pool.ts"))};
const pool = new ExpressionPool({ threads: 2, timeLimitMs: 2000, maxQueued: 10 });
console.log(JSON.stringify(await Promise.all([pool.evaluate("$sort([2, 1])", {}), pool.evaluate("$reverse([1, 2])", {})])));
`,
      );
      const run = spawnSync(process.execPath, [script], { encoding: "utf8", timeout: 10_000 });
      expect({ status: run.status, stdout: run.stdout.trim() }).toEqual({ status: 0, stdout: "[[1,2],[2,1]]" });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
