import { expect, test } from "bun:test";
import { type ExportResult, ExportResultCode } from "@opentelemetry/core";
import type { ReadableSpan, SpanExporter } from "@opentelemetry/sdk-trace";
import { DROP_LOG_INTERVAL_MS, ExportGuard } from "./export-guard.ts";

/** The once-a-minute rule of the drop log line, on a clock the test moves (otel-tracer.test.ts runs the guard for real). */
test("a collector that keeps failing is logged once, then at most once a minute with what was lost since", () => {
  let now = 1_000_000;
  const lines: { msg: string; fields: Record<string, unknown> }[] = [];
  const counted: number[] = [];
  const guard = new ExportGuard({
    maxQueueSize: 100,
    logger: {
      warn: (msg, fields = {}) => lines.push({ msg, fields }),
      info: (msg, fields = {}) => lines.push({ msg, fields }),
    },
    onDropped: (_reason, count) => counted.push(count),
    now: () => now,
  });
  let answer: ExportResult = { code: ExportResultCode.FAILED, error: new Error("connect ECONNREFUSED 127.0.0.1:4318") };
  const failing: SpanExporter = {
    export: (_spans, done) => done(answer),
    shutdown: async () => {},
  };
  const exporter = guard.counted(failing);
  const batch = (size: number) => exporter.export(Array.from({ length: size }) as ReadableSpan[], () => {});

  batch(10);
  now += 30_000;
  batch(5);
  now += DROP_LOG_INTERVAL_MS - 30_000;
  batch(2);
  expect(counted).toEqual([10, 5, 2]);
  expect(lines.map((line) => line.fields.dropped_spans)).toEqual([10, 7]);

  // A throwing exporter is a failed export too, never an exception in the caller.
  const throwing = guard.counted({
    export: () => {
      throw new Error("serializer bug");
    },
    shutdown: async () => {},
  });
  const results: ExportResult[] = [];
  throwing.export([{}] as ReadableSpan[], (result) => results.push(result));
  expect(results.map((result) => result.code)).toEqual([ExportResultCode.FAILED]);
  expect(counted).toEqual([10, 5, 2, 1]);

  answer = { code: ExportResultCode.SUCCESS };
  batch(3);
  expect(lines.at(-1)).toEqual({ msg: "trace export works again", fields: { dropped_spans_not_yet_reported: 1 } });
  // After a recovery, the next failure is logged at once again.
  answer = { code: ExportResultCode.FAILED, error: new Error("socket hang up") };
  batch(4);
  expect(lines.at(-1)!.fields).toMatchObject({ reason: "export_failed", dropped_spans: 4, error: "socket hang up" });
});
