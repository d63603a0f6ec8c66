import type { LoadResult } from "./load.ts";

/** Everything measured for one contender over all rounds. */
export interface ContenderSummary {
  readonly key: string;
  readonly label: string;
  readonly rounds: readonly LoadResult[];
  readonly peakRssBytes: number | undefined;
  readonly processes: number;
}

export interface TargetCheck {
  readonly name: string;
  readonly measured: string;
  readonly met: boolean | undefined;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const rps = (s: ContenderSummary | undefined) => (s ? median(s.rounds.map((r) => r.rps)) : Number.NaN);
const p99 = (s: ContenderSummary | undefined) => (s ? median(s.rounds.map((r) => r.p99Ms)) : Number.NaN);
const non2xx = (s: ContenderSummary) => s.rounds.reduce((sum, r) => sum + r.non2xx + r.socketErrors, 0);
const mb = (bytes: number | undefined) => (bytes === undefined ? "n/a" : `${(bytes / 2 ** 20).toFixed(1)} MB`);

/**
 * The issue's targets, checked on the medians: actiongate's HTTP route against the reference and the
 * Node receiver, its p99, peak RSS, cold start, and zero non-2xx on every actiongate contender.
 * `met` is undefined when a contender needed for the check was not run (`--only`).
 *
 * @example
 * for (const target of checkTargets(summaries, [120, 130])) console.log(target.met ? "met" : "MISSED", target.name);
 */
export function checkTargets(summaries: readonly ContenderSummary[], coldStartMs: readonly number[]): TargetCheck[] {
  const by = (key: string) => summaries.find((s) => s.key === key);
  const gateway = by("ag-http");
  const reference = by("reference");
  const node = by("node");
  const ratio = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : Number.NaN);
  const check = (value: number, met: (v: number) => boolean) => (Number.isFinite(value) ? met(value) : undefined);
  const vsReference = ratio(rps(gateway), rps(reference));
  const vsNode = ratio(rps(gateway), rps(node));
  const p99Ratio = ratio(p99(gateway), p99(reference));
  const soapVsReference = ratio(rps(by("ag-soap")), rps(reference));
  const storeSync = ratio(rps(by("ag-sqlite-w1")), rps(gateway));
  const storeAsync = ratio(rps(by("ag-async")), rps(gateway));
  const coldStart = median(coldStartMs);
  const actiongates = summaries.filter((s) => s.key.startsWith("ag-"));
  const failures = actiongates.reduce((sum, s) => sum + non2xx(s), 0);
  return [
    {
      name: "HTTP route throughput >= 0.85x reference",
      measured: `${vsReference.toFixed(2)}x`,
      met: check(vsReference, (v) => v >= 0.85),
    },
    {
      name: "HTTP route throughput >= 5x Node receiver",
      measured: `${vsNode.toFixed(2)}x`,
      met: check(vsNode, (v) => v >= 5),
    },
    {
      name: "HTTP route p99 < 2x reference p99",
      measured: `${p99Ratio.toFixed(2)}x`,
      met: check(p99Ratio, (v) => v < 2),
    },
    {
      name: "SOAP route throughput >= 0.6x reference",
      measured: `${soapVsReference.toFixed(2)}x`,
      met: check(soapVsReference, (v) => v >= 0.6),
    },
    {
      name: "SQLite store, sync: >= 0.6x the same route without a store",
      measured: `${storeSync.toFixed(2)}x`,
      met: check(storeSync, (v) => v >= 0.6),
    },
    {
      name: "SQLite store, async (202 after commit): >= 0.6x the route without a store",
      measured: `${storeAsync.toFixed(2)}x`,
      met: check(storeAsync, (v) => v >= 0.6),
    },
    {
      name: "peak RSS < 150 MB",
      measured: mb(gateway?.peakRssBytes),
      met: gateway?.peakRssBytes === undefined ? undefined : gateway.peakRssBytes < 150 * 2 ** 20,
    },
    { name: "cold start < 300 ms", measured: `${coldStart.toFixed(0)} ms`, met: check(coldStart, (v) => v < 300) },
    {
      name: "zero non-2xx (every actiongate contender)",
      measured: String(failures),
      met: actiongates.length ? failures === 0 : undefined,
    },
  ];
}

export interface ReportInput {
  readonly summaries: readonly ContenderSummary[];
  readonly targets: readonly TargetCheck[];
  readonly coldStartMs: readonly number[];
  /** The same starts with a `telemetry` section (the OpenTelemetry chunk loaded). */
  readonly coldStartTracedMs?: readonly number[] | undefined;
  /** What the local collector took from `ag-http-traced`, and its dropped-span log lines. */
  readonly tracing?: { readonly exports: number; readonly bytes: number; readonly dropLines: number } | undefined;
  readonly binaryBytes: number;
  readonly machine: Record<string, string | number>;
  readonly settings: { rounds: number; durationSeconds: number; connections: number; threads: number };
}

/**
 * The results as a plain-text table for the terminal and as bench/RESULTS.md.
 *
 * @example
 * const { table, markdown } = formatReport(input);
 */
export function formatReport(input: ReportInput): { table: string; markdown: string } {
  const by = (key: string) => input.summaries.find((s) => s.key === key);
  const reference = rps(by("reference"));
  const node = rps(by("node"));
  const ratio = (value: number, base: number) =>
    Number.isFinite(base) && base > 0 ? `${(value / base).toFixed(2)}x` : "n/a";
  const header = ["contender", "req/s (median)", "p50 ms", "p99 ms", "non-2xx", "peak RSS", "vs (b)", "vs (c)"];
  const rows = input.summaries.map((s) => {
    const value = rps(s);
    return [
      s.processes > 1 ? `${s.label} [${s.processes} processes]` : s.label,
      value.toFixed(0),
      median(s.rounds.map((r) => r.p50Ms)).toFixed(2),
      p99(s).toFixed(2),
      String(non2xx(s)) + (s.rounds.some((r) => r.poolExhausted) ? " (pool exhausted)" : ""),
      mb(s.peakRssBytes),
      ratio(value, reference),
      ratio(value, node),
    ];
  });
  const w1 = rps(by("ag-sqlite-w1"));
  const w2 = rps(by("ag-sqlite-w2"));
  const scaling =
    Number.isFinite(w1) && Number.isFinite(w2)
      ? `${(w2 / w1).toFixed(2)}x (${w1.toFixed(0)} -> ${w2.toFixed(0)} req/s)`
      : "not measured";
  const coldStart = median(input.coldStartMs);
  const coldStartTraced = median(input.coldStartTracedMs ?? []);
  const traced = rps(by("ag-http-traced"));
  const untraced = rps(by("ag-http"));
  const tracingCost =
    Number.isFinite(traced) && Number.isFinite(untraced)
      ? `${(traced / untraced).toFixed(2)}x (${untraced.toFixed(0)} -> ${traced.toFixed(0)} req/s; p99 ${p99(by("ag-http")).toFixed(2)} -> ${p99(by("ag-http-traced")).toFixed(2)} ms)${
          input.tracing
            ? `, ${input.tracing.exports} exports (${mb(input.tracing.bytes)}) taken by the collector, ${input.tracing.dropLines} dropped-span log lines`
            : ""
        }`
      : "not measured";
  const sampled = rps(by("ag-http-sampled"));
  const sampledCost =
    Number.isFinite(sampled) && Number.isFinite(untraced)
      ? `${(sampled / untraced).toFixed(2)}x (${sampled.toFixed(0)} req/s; p99 ${p99(by("ag-http-sampled")).toFixed(2)} ms)`
      : "not measured";
  const mark = (met: boolean | undefined) => (met === undefined ? "n/a" : met ? "met" : "MISSED");
  const targetLines = input.targets.map((t) => `${mark(t.met).padEnd(7)} ${t.name}: ${t.measured}`);

  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  const table = [
    line(header),
    line(widths.map((w) => "-".repeat(w))),
    ...rows.map(line),
    "",
    `cold start (spawn to first answer, median of ${input.coldStartMs.length}): ${coldStart.toFixed(0)} ms, with telemetry ${coldStartTraced.toFixed(0)} ms   binary: ${mb(input.binaryBytes)}`,
    `workers 1 -> 2 (SQLite store): ${scaling}`,
    `tracing on (i) vs off (d): ${tracingCost}`,
    `tracing on at sample_ratio 0.1 (j) vs off (d): ${sampledCost}`,
    "",
    "targets:",
    ...targetLines.map((l) => `  ${l}`),
  ].join("\n");

  const m = input.machine;
  const markdown = `# Benchmark results

Produced by \`npm run bench\` (bench/run.ts): ${input.settings.rounds} rounds of ${input.settings.durationSeconds} s per contender, the order
rotating each round; wrk with ${input.settings.threads} threads and ${input.settings.connections} connections, loopback only. Every call carries a
unique \`webhook-id\` and a valid Ed25519 (\`v1a\`) signature from a pre-signed pool, so actiongate's replay guard
does real work. The body is the fixture payload (\`examples/payloads/custom-action.json\`) without the
callback fields. Requests per second and latencies are medians over the rounds; non-2xx is the total (plus
socket errors); peak RSS is VmHWM over the whole run (summed over a supervisor and its workers).

## Machine

| | |
| --- | --- |
| CPU | ${m.cpuModel}, ${m.cores} cores |
| kernel | ${m.kernel} |
| Bun (actiongate binary, reference) | ${m.bun} |
| Node (receiver (c)) | ${m.node} |
| load generator | ${m.wrk} |
| load average at start | ${m.loadAverage} |

The load generator shares the cores with the contender under test.

## Results

| ${header.join(" | ")} |
| ${header.map((_, i) => (i === 0 ? "---" : "---:")).join(" | ")} |
${rows.map((r) => `| ${r.join(" | ")} |`).join("\n")}

- Cold start of the binary (spawn to first answer, median of ${input.coldStartMs.length}): **${coldStart.toFixed(0)} ms** (all: ${input.coldStartMs.map((v) => v.toFixed(0)).join(", ")} ms)
- Cold start with a \`telemetry\` section (the OpenTelemetry chunk loaded): **${coldStartTraced.toFixed(0)} ms** (all: ${(input.coldStartTracedMs ?? []).map((v) => v.toFixed(0)).join(", ")} ms)
- Binary size: **${mb(input.binaryBytes)}**
- \`server.workers\` 1 -> 2 (HTTP route, SQLite store): **${scaling}**
- Tracing on, every call sampled (i) vs off (d): **${tracingCost}**
- Tracing on, \`sample_ratio: 0.1\` (j) vs off (d): **${sampledCost}**

## Targets

| result | target | measured |
| --- | --- | --- |
${input.targets.map((t) => `| ${mark(t.met)} | ${t.name} | ${t.measured} |`).join("\n")}
`;
  return { table, markdown };
}
