import { describe, expect, test } from "bun:test";
import { sourceFiles } from "./source-files.ts";

/**
 * A gateway without `telemetry` loads nothing of OpenTelemetry: the SDK is imported by the two
 * files of src/telemetry/ that implement our Tracer, and those are reached only through the one
 * dynamic import in telemetry/setup.ts, which the bundler (`--splitting`) turns into a chunk that is
 * evaluated only when tracing is configured.
 */
const SDK_FILES = ["src/telemetry/export-guard.ts", "src/telemetry/otel-tracer.ts"];
const files = sourceFiles("src", { withTests: false });

describe("OpenTelemetry stays off the start-up path", () => {
  test("only the tracer's implementation imports @opentelemetry/*", () => {
    const importers = files.filter((file) => /from\s+["']@opentelemetry\//.test(file.text)).map((file) => file.path);
    expect(importers.sort()).toEqual(SDK_FILES);
  });

  test("that implementation is reached only by setup.ts's dynamic import (type imports aside)", () => {
    const edges = files.flatMap((file) =>
      file.imports
        .filter((edge) => SDK_FILES.includes(edge.target) && !SDK_FILES.includes(file.path) && !edge.typeOnly)
        .map((edge) => {
          const line = file.text.split("\n")[edge.line - 1] ?? "";
          return `${file.path} ${/\bimport\s*\(/.test(line) ? "import()" : "static import"} ${edge.target}`;
        }),
    );
    expect(edges).toEqual(["src/telemetry/setup.ts import() src/telemetry/otel-tracer.ts"]);
  });
});
