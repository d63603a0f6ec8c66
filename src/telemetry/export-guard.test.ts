import { expect, test } from "bun:test";
import { type ExportResult, ExportResultCode } from "@opentelemetry/core";
import type { ReadableSpan } from "@opentelemetry/sdk-trace";
import { DROP_LOG_INTERVAL_MS, ExportGuard } from "./export-guard.ts";

/** The guard's rules on a clock the test moves (otel-tracer.test.ts runs it for real, with the SDK). */
function guarded() {
  let now = 1_000_000;
  const lines: { level: string; msg: string; fields: Record<string, unknown> }[] = [];
  const counted: [string, number][] = [];
  const guard = new ExportGuard({
    maxQueueSize: 2,
    logger: {
      warn: (msg, fields = {}) => lines.push({ level: "warn", msg, fields }),
      info: (msg, fields = {}) => lines.push({ level: "info", msg, fields }),
    },
    onDropped: (reason, count) => counted.push([reason, count]),
    now: () => now,
  });
  let answer: ExportResult = { code: ExportResultCode.FAILED, error: new Error("connect ECONNREFUSED 127.0.0.1:4318") };
  const exporter = guard.counted({ export: (_spans, done) => done(answer), shutdown: async () => {} });
  const settled = () => new Promise((resolve) => setTimeout(resolve, 1));
  return {
    guard,
    lines,
    counted,
    advance: (ms: number) => {
      now += ms;
    },
    answer: (next: ExportResult) => {
      answer = next;
    },
    batch: async (size: number) => {
      exporter.export(Array.from({ length: size }) as ReadableSpan[], () => {});
      await settled();
    },
  };
}

test("a collector that keeps failing is logged once, then at most once a minute with what was lost since", async () => {
  const { lines, counted, advance, batch } = guarded();
  await batch(10);
  advance(30_000);
  await batch(5);
  advance(DROP_LOG_INTERVAL_MS - 30_000);
  await batch(2);
  expect(counted).toEqual([
    ["export_failed", 10],
    ["export_failed", 5],
    ["export_failed", 2],
  ]);
  expect(lines.map((line) => line.fields.dropped_spans)).toEqual([10, 7]);
  expect(lines[0]!.fields).toMatchObject({ reason: "export_failed", error: "connect ECONNREFUSED 127.0.0.1:4318" });
});

test("a collector that works again is said once; the next outage within the minute is counted, not logged", async () => {
  const { lines, counted, advance, answer, batch } = guarded();
  await batch(4);
  answer({ code: ExportResultCode.SUCCESS });
  await batch(3);
  await batch(3);
  answer({ code: ExportResultCode.FAILED, error: new Error("socket hang up") });
  await batch(1);
  expect(lines.map((line) => [line.level, line.msg])).toEqual([
    ["warn", "trace spans dropped: they did not reach the collector (the calls themselves are not affected)"],
    ["info", "trace export works again"],
  ]);
  advance(DROP_LOG_INTERVAL_MS);
  await batch(2);
  expect(lines.at(-1)!.fields).toMatchObject({ reason: "export_failed", error: "socket hang up", dropped_spans: 3 });
  expect(counted.map(([, count]) => count)).toEqual([4, 1, 2]);
});

test("a full queue drops at once (no recovery line when exports work), and a throwing exporter is a failed export", async () => {
  const { guard, lines, counted, answer } = guarded();
  answer({ code: ExportResultCode.SUCCESS });
  const ended: ReadableSpan[] = [];
  const processor = guard.bound({
    onStart: () => {},
    onEnd: (span) => ended.push(span),
    forceFlush: async () => {},
    shutdown: async () => {},
  });
  const sampled = { spanContext: () => ({ traceFlags: 1 }) } as unknown as ReadableSpan;
  const unsampled = { spanContext: () => ({ traceFlags: 0 }) } as unknown as ReadableSpan;
  for (let i = 0; i < 5; i++) processor.onEnd(sampled);
  processor.onEnd(unsampled);
  expect(ended).toHaveLength(2);
  expect(counted).toEqual([
    ["queue_full", 1],
    ["queue_full", 1],
    ["queue_full", 1],
  ]);
  expect(lines.map((line) => line.fields.reason)).toEqual(["queue_full"]);

  const throwing = guard.counted({
    export: () => {
      throw new Error("serializer bug");
    },
    shutdown: async () => {},
  });
  const results: ExportResult[] = [];
  throwing.export(ended, (result) => results.push(result));
  await new Promise((resolve) => setTimeout(resolve, 1));
  expect(results.map((result) => result.code)).toEqual([ExportResultCode.FAILED]);
  expect(counted.at(-1)).toEqual(["export_failed", 2]);
  // The batch left the queue: there is room again.
  processor.onEnd(sampled);
  expect(ended).toHaveLength(3);
});
