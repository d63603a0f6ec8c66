import { describe, expect, test } from "bun:test";
import { Batcher } from "./batcher.ts";

class Refused extends Error {}

/** A stand-in database: records every batch it was sent, answers after `delayMs`. */
function fakeDatabase(options: { delayMs?: number; refuse?: (item: number) => boolean; down?: () => boolean } = {}) {
  const sent: number[][] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const send = async (items: readonly number[]) => {
    sent.push([...items]);
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    try {
      await new Promise((resolve) => setTimeout(resolve, options.delayMs ?? 1));
      if (options.down?.()) throw new Error("connection refused");
      if (items.some((item) => options.refuse?.(item))) throw new Refused(`refused ${items.join(",")}`);
      return items.map((item) => item * 10);
    } finally {
      inFlight--;
    }
  };
  return { send, sent, maxInFlight: () => maxInFlight };
}

describe("Batcher", () => {
  test("items submitted together go in one batch; each gets its own answer, in order", async () => {
    const db = fakeDatabase();
    const batcher = new Batcher(db.send, { maxBatch: 100, maxInFlight: 1 });
    expect(await Promise.all([1, 2, 3].map((item) => batcher.submit(item)))).toEqual([10, 20, 30]);
    expect(db.sent).toEqual([[1, 2, 3]]);
  });

  test("what arrives while a batch is in flight goes together in the next; no more than maxInFlight at once", async () => {
    const db = fakeDatabase({ delayMs: 30 });
    const batcher = new Batcher(db.send, { maxBatch: 100, maxInFlight: 1 });
    const first = batcher.submit(1);
    await new Promise((resolve) => setTimeout(resolve, 5));
    const later = [2, 3, 4].map((item) => batcher.submit(item));
    await new Promise((resolve) => setTimeout(resolve, 5));
    const last = batcher.submit(5);
    expect(await Promise.all([first, ...later, last])).toEqual([10, 20, 30, 40, 50]);
    expect(db.sent).toEqual([[1], [2, 3, 4, 5]]);
    expect(db.maxInFlight()).toBe(1);
  });

  test("maxBatch caps a batch; the rest go in the next, two in flight at once", async () => {
    const db = fakeDatabase({ delayMs: 10 });
    const batcher = new Batcher(db.send, { maxBatch: 4, maxInFlight: 2 });
    const items = Array.from({ length: 10 }, (_, i) => i);
    expect(await Promise.all(items.map((item) => batcher.submit(item)))).toEqual(items.map((item) => item * 10));
    expect(db.sent.map((batch) => batch.length)).toEqual([4, 4, 2]);
    expect(db.maxInFlight()).toBe(2);
  });

  test("a batch the database refuses is sent again item by item: only the bad item fails", async () => {
    const db = fakeDatabase({ refuse: (item) => item === 2 });
    const batcher = new Batcher(db.send, {
      maxBatch: 100,
      maxInFlight: 1,
      retryAlone: (error) => error instanceof Refused,
    });
    const results = await Promise.allSettled([1, 2, 3].map((item) => batcher.submit(item)));
    expect(results.map((result) => (result.status === "fulfilled" ? result.value : "refused"))).toEqual([
      10,
      "refused",
      30,
    ]);
    expect(db.sent).toEqual([[1, 2, 3], [1], [2], [3]]);
  });

  test("a lost connection fails the batch at once, without sending each item again", async () => {
    const db = fakeDatabase({ down: () => true });
    const batcher = new Batcher(db.send, {
      maxBatch: 100,
      maxInFlight: 1,
      retryAlone: (error) => error instanceof Refused,
    });
    const results = await Promise.allSettled([1, 2, 3].map((item) => batcher.submit(item)));
    expect(results.map((result) => result.status)).toEqual(["rejected", "rejected", "rejected"]);
    expect(String((results[0] as PromiseRejectedResult).reason)).toContain("connection refused");
    expect(db.sent).toEqual([[1, 2, 3]]);
    // And the next items are sent as usual.
    const healthy = fakeDatabase();
    const next = new Batcher(healthy.send, { maxBatch: 100, maxInFlight: 1 });
    expect(await next.submit(7)).toBe(70);
  });

  test("an answer of the wrong length fails the batch rather than answering items with another's result", async () => {
    const batcher = new Batcher(async (items: readonly number[]) => items.slice(1), {
      maxBatch: 100,
      maxInFlight: 1,
      retryAlone: () => false,
    });
    const results = await Promise.allSettled([1, 2].map((item) => batcher.submit(item)));
    expect(results.map((result) => result.status)).toEqual(["rejected", "rejected"]);
    expect(String((results[0] as PromiseRejectedResult).reason)).toContain("a batch of 2 got 1 answers");
  });

  test("drain waits until every item submitted has its answer", async () => {
    const db = fakeDatabase({ delayMs: 20 });
    const batcher = new Batcher(db.send, { maxBatch: 2, maxInFlight: 1 });
    const answers: number[] = [];
    for (const item of [1, 2, 3, 4, 5]) void batcher.submit(item).then((answer) => answers.push(answer));
    await batcher.drain();
    await Promise.resolve();
    expect(answers).toEqual([10, 20, 30, 40, 50]);
    await batcher.drain(); // nothing left: at once
  });
});
