import { afterEach, expect, test } from "bun:test";
import { createLogger } from "./logger.ts";

const realWrite = process.stdout.write.bind(process.stdout);
afterEach(() => {
  process.stdout.write = realWrite;
});

function recordStdout(): string[] {
  const writes: string[] = [];
  process.stdout.write = ((chunk: string | Uint8Array) => {
    writes.push(typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8"));
    return true;
  }) as typeof process.stdout.write;
  return writes;
}

test("lines logged in one tick reach stdout in order, in writes of whole lines of at most 4 KB (atomic on a pipe shared by workers)", async () => {
  const writes = recordStdout();
  const logger = createLogger({ level: "info" });
  for (let i = 0; i < 200; i++) logger.info("call", { route: "erp", n: i, note: "é".repeat(40) });
  expect(writes).toHaveLength(0);
  await new Promise((resolve) => setTimeout(resolve, 5));
  process.stdout.write = realWrite;

  expect(writes.length).toBeGreaterThan(1);
  for (const chunk of writes) {
    expect(Buffer.byteLength(chunk)).toBeLessThanOrEqual(4096);
    expect(chunk.endsWith("\n")).toBe(true);
  }
  const lines = writes
    .join("")
    .trimEnd()
    .split("\n")
    .map((line) => JSON.parse(line) as { n: number });
  expect(lines.map((line) => line.n)).toEqual([...Array(200).keys()]);
  expect(lines[0]).toMatchObject({ level: "info", msg: "call", route: "erp" });
});

test("a single line longer than 4 KB is written whole, not split", async () => {
  const writes = recordStdout();
  const logger = createLogger({ level: "info" });
  logger.warn("big", { detail: "x".repeat(10_000) });
  logger.info("after");
  await new Promise((resolve) => setTimeout(resolve, 5));
  process.stdout.write = realWrite;
  expect(writes).toHaveLength(2);
  expect((JSON.parse(writes[0]!) as any).detail).toHaveLength(10_000);
  expect((JSON.parse(writes[1]!) as any).msg).toBe("after");
});

test("child loggers (one per traced call) write through their parent's stdout batch, in order, and add no exit handler", async () => {
  const writes = recordStdout();
  const logger = createLogger({ level: "info" });
  const exitHandlers = process.listenerCount("exit");
  for (let i = 0; i < 15; i++) {
    logger.child({ trace_id: `t${i}`, span_id: `s${i}` }).info("inside", { n: i });
    logger.info("outside", { n: i });
  }
  expect(process.listenerCount("exit")).toBe(exitHandlers);
  await new Promise((resolve) => setTimeout(resolve, 5));
  process.stdout.write = realWrite;
  // One batch for all of them (under 4 KB), not one write per child.
  expect(writes).toHaveLength(1);
  const lines = writes[0]!
    .trimEnd()
    .split("\n")
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  expect(lines).toHaveLength(30);
  expect(lines[0]).toMatchObject({ msg: "inside", trace_id: "t0", span_id: "s0", n: 0 });
  expect(lines[1]).toMatchObject({ msg: "outside", n: 0 });
  expect(lines[1]).not.toHaveProperty("trace_id");
  expect(lines[29]).toMatchObject({ msg: "outside", n: 14 });
});
