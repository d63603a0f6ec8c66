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
