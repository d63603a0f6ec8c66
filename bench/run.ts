/**
 * `npm run bench`: the load benchmark, loopback only. Starts every contender, runs wrk against each in
 * turn (the order rotates round by round), and prints and writes bench/RESULTS.md: requests per second
 * (median of rounds), p50/p99, non-2xx, peak RSS, cold start, binary size, the ratios and the targets.
 *
 *   npm run bench                 5 rounds of 10 s per contender
 *   npm run bench -- --quick      2 rounds of 3 s (while developing)
 *   options: --rounds N --duration S --connections C --threads T --out FILE --only a,b  (contender keys)
 *
 * Exits non-zero only when the setup fails (wrk missing and not installable, a contender not starting);
 * missed targets are printed, not fatal. Uses dist/actiongate (built if missing) or $ACTIONGATE_BINARY.
 */
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { type LoadResult, runLoad, writeSignedPool } from "./lib/load.ts";
import { type BenchProcess, freePort, peakRssBytes, run, sleep, startProcess } from "./lib/processes.ts";
import { type ContenderSummary, checkTargets, formatReport } from "./lib/report.ts";

const ROOT = join(import.meta.dir, "..");
const args = parseArgs(process.argv.slice(2));
const BINARY = process.env.ACTIONGATE_BINARY ?? join(ROOT, "dist", "actiongate");
const BUN = process.execPath;

interface Contender {
  readonly key: string;
  readonly label: string;
  /** Calls to it carry unique ids that must not repeat (a gateway); the bare upstream ignores them. */
  readonly needsUniqueIds: boolean;
  process: BenchProcess | undefined;
  path: string;
  start(): Promise<BenchProcess>;
}

async function main(): Promise<number> {
  const work = mkdtempSync(join(tmpdir(), "actiongate-bench-"));
  const started: BenchProcess[] = [];
  try {
    await ensureWrk();
    await ensureBinary();
    const setup = await prepare(work, started);
    const results = await measure(setup.contenders, work, setup.body, setup.privateKey);
    const coldStartMs = await measureColdStart(work, setup.upstreamUrl, setup.whpk);
    const coldStartTracedMs = await measureColdStart(work, setup.upstreamUrl, setup.whpk, setup.sinkUrl);
    const tracing = await describeTracing(setup.sinkUrl, setup.contenders);
    const machine = await describeMachine();
    const summaries: ContenderSummary[] = setup.contenders.map((contender) => ({
      key: contender.key,
      label: contender.label,
      rounds: results.get(contender.key) ?? [],
      peakRssBytes: contender.process ? sumPeakRss(contender.process) : undefined,
      processes: contender.process ? contender.process.pids().length : 0,
    }));
    const targets = checkTargets(summaries, coldStartMs);
    const report = formatReport({
      summaries,
      targets,
      coldStartMs,
      coldStartTracedMs,
      tracing,
      binaryBytes: statSync(BINARY).size,
      machine,
      settings: {
        rounds: args.rounds,
        durationSeconds: args.duration,
        connections: args.connections,
        threads: args.threads,
      },
    });
    process.stdout.write(`\n${report.table}\n`);
    writeFileSync(args.out, report.markdown);
    process.stdout.write(`\nwritten to ${args.out}\n`);
    return 0;
  } catch (error) {
    process.stderr.write(`bench: setup failed: ${(error as Error).message}\n`);
    return 1;
  } finally {
    await Promise.all(started.map((p) => p.stop()));
    rmSync(work, { recursive: true, force: true });
  }
}

async function ensureWrk(): Promise<void> {
  // `wrk -v` exits 1 even when present; 127 is our "could not start it".
  if ((await run("wrk", ["-v"])).code !== 127) return;
  log("wrk is missing; installing it from Debian's packages (apt-get install wrk)");
  const apt = process.getuid?.() === 0 ? ["apt-get"] : ["sudo", "apt-get"];
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  for (const step of [
    ["update", "-qq"],
    ["install", "-y", "-qq", "wrk"],
  ]) {
    const result = await run(apt[0]!, [...apt.slice(1), ...step], env);
    if (result.code !== 0) throw new Error(`${apt.join(" ")} ${step.join(" ")} failed: ${result.stderr.slice(0, 500)}`);
  }
}

async function ensureBinary(): Promise<void> {
  if (existsSync(BINARY)) return;
  if (process.env.ACTIONGATE_BINARY) throw new Error(`ACTIONGATE_BINARY=${BINARY} does not exist`);
  log("dist/actiongate is missing; running npm run build");
  const build = await run("npm", ["run", "build", "--prefix", ROOT]);
  if (build.code !== 0 || !existsSync(BINARY)) throw new Error(`npm run build failed: ${build.stderr.slice(0, 1000)}`);
}

async function prepare(work: string, started: BenchProcess[]) {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const publicKeyPem = publicKey.export({ type: "spki", format: "pem" }).toString();
  const whpk = `whpk_${Buffer.from(publicKey.export({ format: "jwk" }).x!, "base64url").toString("base64")}`;
  const body = benchPayload();
  writeFileSync(join(work, "body.json"), body);

  const keep = async (p: Promise<BenchProcess>) => {
    const running = await p;
    started.push(running);
    return running;
  };
  const upstream = await keep(
    startProcess("upstream", BUN, [join(ROOT, "bench", "upstream.ts")], { logFile: join(work, "upstream.log") }),
  );
  const soapUpstream = await keep(
    startProcess("soap-upstream", BUN, [join(ROOT, "bench", "soap-upstream.ts")], {
      logFile: join(work, "soap-upstream.log"),
    }),
  );
  const sink = await keep(
    startProcess("otlp-sink", BUN, [join(ROOT, "bench", "otlp-sink.ts")], { logFile: join(work, "otlp-sink.log") }),
  );
  const sinkUrl = `http://127.0.0.1:${sink.port}`;
  const upstreamUrl = `http://127.0.0.1:${upstream.port}`;
  const soapUrl = `http://127.0.0.1:${soapUpstream.port}/ws/CustomerService`;
  const env = { PUBLIC_KEY_PEM: publicKeyPem, UPSTREAM_URL: `${upstreamUrl}/api/contracts` };

  const actiongate =
    (key: string, yaml: string, readyLines = 1) =>
    () => {
      const dir = mkdtempSync(join(work, `${key}-`));
      writeFileSync(join(dir, "config.yaml"), yaml);
      return keep(
        startProcess(key, BINARY, ["serve", "--config", join(dir, "config.yaml")], {
          cwd: dir,
          logFile: join(dir, "stdout.log"),
          readyLines,
          portFromLine: (line) => (line.includes('"msg":"listening"') ? (JSON.parse(line) as any).port : undefined),
        }),
      );
    };
  const contenders: Contender[] = [
    {
      key: "upstream",
      label: "(a) upstream alone",
      needsUniqueIds: false,
      process: upstream,
      path: "/api/contracts",
      start: async () => upstream,
    },
    {
      key: "reference",
      label: "(b) reference gateway (Bun, ~30 lines)",
      needsUniqueIds: true,
      process: undefined,
      path: "/actions",
      start: () =>
        keep(
          startProcess("reference", BUN, [join(ROOT, "bench", "reference-gateway.ts")], {
            logFile: join(work, "reference.log"),
            env,
          }),
        ),
    },
    {
      key: "node",
      label: "(c) hand-written Node receiver",
      needsUniqueIds: true,
      process: undefined,
      path: "/actions",
      start: () =>
        keep(
          startProcess("node", "node", [join(ROOT, "bench", "node-receiver.mjs")], {
            logFile: join(work, "node.log"),
            env,
          }),
        ),
    },
    {
      key: "ag-http",
      label: "(d) actiongate, HTTP route",
      needsUniqueIds: true,
      process: undefined,
      path: "/actions",
      start: actiongate("ag-http", gatewayConfig(whpk, upstreamUrl, soapUrl)),
    },
    {
      key: "ag-http-traced",
      label: "(i) actiongate, HTTP route, tracing on (every call sampled, OTLP/protobuf to a local collector)",
      needsUniqueIds: true,
      process: undefined,
      path: "/actions",
      start: actiongate("ag-http-traced", gatewayConfig(whpk, upstreamUrl, soapUrl, { telemetryUrl: sinkUrl })),
    },
    {
      key: "ag-http-sampled",
      label: "(j) actiongate, HTTP route, tracing on, sample_ratio 0.1",
      needsUniqueIds: true,
      process: undefined,
      path: "/actions",
      start: actiongate(
        "ag-http-sampled",
        gatewayConfig(whpk, upstreamUrl, soapUrl, { telemetryUrl: sinkUrl, sampleRatio: 0.1 }),
      ),
    },
    {
      key: "ag-soap",
      label: "(e) actiongate, SOAP route",
      needsUniqueIds: true,
      process: undefined,
      path: "/actions/crm-customer",
      start: actiongate("ag-soap", gatewayConfig(whpk, upstreamUrl, soapUrl)),
    },
    {
      key: "ag-sqlite-w1",
      label: "(f) actiongate, HTTP route, SQLite store, 1 worker",
      needsUniqueIds: true,
      process: undefined,
      path: "/actions",
      start: actiongate("ag-sqlite-w1", gatewayConfig(whpk, upstreamUrl, soapUrl, { store: true, workers: 1 })),
    },
    {
      key: "ag-async",
      label: "(h) actiongate, HTTP route, async (202 after commit), SQLite store",
      needsUniqueIds: true,
      process: undefined,
      path: "/actions",
      start: actiongate("ag-async", gatewayConfig(whpk, upstreamUrl, soapUrl, { store: true, async: true })),
    },
    {
      key: "ag-sqlite-w2",
      label: "(g) actiongate, HTTP route, SQLite store, 2 workers",
      needsUniqueIds: true,
      process: undefined,
      path: "/actions",
      start: actiongate("ag-sqlite-w2", gatewayConfig(whpk, upstreamUrl, soapUrl, { store: true, workers: 2 }), 2),
    },
  ].filter((contender) => !args.only || args.only.includes(contender.key));
  for (const contender of contenders) contender.process = await contender.start();
  return { contenders, body, privateKey, upstreamUrl, whpk, sinkUrl };
}

/** The fixture payload, without the callback fields: a call that does not wait, so nothing goes to epilot. */
function benchPayload(): Buffer {
  const payload = JSON.parse(readFileSync(join(ROOT, "examples", "payloads", "custom-action.json"), "utf8")) as any;
  delete payload.data.resume_token;
  delete payload.data.callback_post_url;
  payload.data.app_config.wait_for_callback = false;
  return Buffer.from(JSON.stringify(payload));
}

function gatewayConfig(
  whpk: string,
  upstreamUrl: string,
  soapUrl: string,
  options: { store?: boolean; workers?: number; async?: boolean; telemetryUrl?: string; sampleRatio?: number } = {},
): string {
  return `
server: { host: 127.0.0.1, port: 0, max_body_size: 1mb${options.workers ? `, workers: ${options.workers}` : ""} }
verification: { public_key: "${whpk}", tolerance: 5m }
epilot: { callback_hosts: ["127.0.0.1:9"] }   # never epilot's real host from a benchmark
log: { level: info }                           # one line per call, as in production
${options.store ? "store: { path: ./state/actiongate.db }" : ""}
${options.telemetryUrl ? `telemetry: { otlp_endpoint: "${options.telemetryUrl}", sample_ratio: ${options.sampleRatio ?? 1} }` : ""}
routes:
  - name: erp-contract
    match: { component_id: erp-contract-sync }
    strip: [data.trigger_event, data.app_options.api_key]
    transform: '{ "contract": data.entity.contract_number, "status": data.entity.status, "customer": data.entity.customer_number }'
    target: { type: http, url: ${upstreamUrl}/api/contracts, timeout: 10s }${options.async ? "\n    delivery: { mode: async, concurrency: 64 }" : ""}
  - name: crm-customer
    match: { component_id: never-matched-crm }
    strip: [data.trigger_event, data.app_options.api_key]
    transform: '{ "Name": data.entity._title, "CustomerNumber": data.entity.customer_number }'
    target: { type: soap, url: ${soapUrl}, version: "1.1", operation: CreateCustomer, namespace: "urn:crm", soap_action: "urn:crm#CreateCustomer", timeout: 10s }
`;
}

async function measure(contenders: Contender[], work: string, body: Buffer, privateKey: KeyObject) {
  const results = new Map<string, LoadResult[]>();
  const bodyFile = join(work, "body.json");
  const poolFile = join(work, "pool.txt");
  const estimatedRps = new Map<string, number>();
  const load = async (contender: Contender, tag: string, durationSeconds: number, record: boolean) => {
    // Sized from the fastest run so far with room to spare: wrk's threads each walk their own slice and
    // do not finish evenly. An undersized pool shows up as replays (409, non-2xx), flagged in the table.
    const poolSize = contender.needsUniqueIds
      ? Math.ceil(Math.max(estimatedRps.get(contender.key) ?? 40_000, 2_000) * durationSeconds * 2.5) + args.connections
      : 1_000;
    writeSignedPool(poolFile, `${tag}_${contender.key}`, poolSize, body, privateKey);
    const measured = await runLoad({
      url: `http://127.0.0.1:${contender.process!.port}${contender.path}`,
      durationSeconds,
      connections: args.connections,
      threads: args.threads,
      poolFile,
      poolSize,
      bodyFile,
    });
    const result = { ...measured, poolExhausted: measured.poolExhausted && contender.needsUniqueIds };
    if (record) results.set(contender.key, [...(results.get(contender.key) ?? []), result]);
    estimatedRps.set(contender.key, Math.max(estimatedRps.get(contender.key) ?? 0, result.rps));
    log(
      `${tag.padEnd(8)} ${contender.key.padEnd(14)} ${result.rps.toFixed(0).padStart(7)} req/s  p50 ${result.p50Ms.toFixed(2)} ms  p99 ${result.p99Ms.toFixed(2)} ms  non-2xx ${result.non2xx}${result.poolExhausted ? "  (pool exhausted!)" : ""}`,
    );
    await sleep(300); // let connections close and the gateway settle before the next contender
  };
  for (const contender of contenders) await load(contender, "warmup", Math.min(3, args.duration), false);
  for (let round = 0; round < args.rounds; round++) {
    // Alternate the order, so that no contender always runs right after the same neighbour.
    const order = contenders.map((_, i) => contenders[(i + round) % contenders.length]!);
    for (const contender of order) await load(contender, `round${round + 1}`, args.duration, true);
  }
  return results;
}

/** Spawn of the binary to its first answer (any status), median of several starts; with tracing on when `telemetryUrl` is given. */
async function measureColdStart(
  work: string,
  upstreamUrl: string,
  whpk: string,
  telemetryUrl?: string,
): Promise<number[]> {
  const timings: number[] = [];
  for (let i = 0; i < 7; i++) {
    const port = await freePort();
    const dir = mkdtempSync(join(work, "cold-"));
    writeFileSync(
      join(dir, "config.yaml"),
      gatewayConfig(whpk, upstreamUrl, "http://127.0.0.1:9/", telemetryUrl ? { telemetryUrl } : {}).replace(
        "port: 0",
        `port: ${port}`,
      ),
    );
    const startedAt = performance.now();
    const child = Bun.spawn([BINARY, "serve", "--config", join(dir, "config.yaml")], {
      cwd: dir,
      stdout: "ignore",
      stderr: "ignore",
    });
    let answered: number | undefined;
    while (answered === undefined && performance.now() - startedAt < 10_000) {
      try {
        await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(500) });
        answered = performance.now() - startedAt;
      } catch {
        await sleep(2);
      }
    }
    child.kill("SIGTERM");
    await child.exited;
    if (answered === undefined) throw new Error("the binary did not answer within 10 s of its start");
    timings.push(answered);
  }
  return timings;
}

/** What the collector took from the traced contender, and how often that contender logged dropped spans. */
async function describeTracing(sinkUrl: string, contenders: readonly Contender[]) {
  const traced = contenders.find((contender) => contender.key === "ag-http-traced");
  if (!traced?.process) return undefined;
  const received = (await (await fetch(`${sinkUrl}/count`)).json()) as { exports: number; bytes: number };
  const log = readFileSync(traced.process.logFile, "utf8");
  const dropLines = log.split("\n").filter((line) => line.includes("trace spans dropped")).length;
  return { exports: received.exports, bytes: received.bytes, dropLines };
}

function sumPeakRss(process: BenchProcess): number | undefined {
  const values = process
    .pids()
    .map(peakRssBytes)
    .filter((v): v is number => v !== undefined);
  // A supervisor's own memory counts too; the total is what the box must hold.
  return values.length ? values.reduce((a, b) => a + b, 0) : undefined;
}

async function describeMachine() {
  const cpu = cpus();
  return {
    cpuModel: cpu[0]?.model ?? "unknown",
    cores: cpu.length,
    kernel: (await run("uname", ["-sr"])).stdout.trim(),
    bun: Bun.version,
    node: (await run("node", ["--version"])).stdout.trim(),
    wrk: ((await run("wrk", ["-v"])).stdout.split("\n")[0] ?? "").trim(),
    loadAverage: loadavg()
      .map((v) => v.toFixed(2))
      .join(" "),
  };
}

function parseArgs(argv: string[]) {
  const quick = argv.includes("--quick");
  const value = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  return {
    rounds: Number(value("--rounds") ?? (quick ? 2 : 5)),
    duration: Number(value("--duration") ?? (quick ? 3 : 10)),
    connections: Number(value("--connections") ?? 64),
    threads: Number(value("--threads") ?? 2),
    out: value("--out") ?? join(ROOT, "bench", "RESULTS.md"),
    only: value("--only")?.split(","),
  };
}

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

process.exit(await main());
