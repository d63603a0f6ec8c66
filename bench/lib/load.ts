import type { KeyObject } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { signWebhook } from "../../src/verify/sign.ts";
import { run } from "./processes.ts";

/** What one wrk run measured (from bench/wrk/signed-pool.lua's done()). */
export interface LoadResult {
  readonly requests: number;
  readonly durationUs: number;
  readonly rps: number;
  readonly non2xx: number;
  /** connect, read, write errors and timeouts together. */
  readonly socketErrors: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** The run came close to (or past) the pool's end: some requests may have been replays (409, non-2xx). */
  readonly poolExhausted: boolean;
}

export interface LoadOptions {
  readonly url: string;
  readonly durationSeconds: number;
  readonly connections: number;
  readonly threads: number;
  readonly poolFile: string;
  readonly poolSize: number;
  readonly bodyFile: string;
}

/**
 * Writes `size` pre-signed calls (unique webhook-id, current timestamp, Ed25519 `v1a` signature over
 * `id.timestamp.body`) to a pool file for the wrk script; ids start with `prefix`.
 *
 * @example
 * writeSignedPool("/tmp/pool.txt", "r1_ag", 50_000, body, privateKey);
 */
export function writeSignedPool(file: string, prefix: string, size: number, body: Buffer, privateKey: KeyObject): void {
  const timestamp = Math.floor(Date.now() / 1000);
  const lines: string[] = new Array(size);
  for (let i = 0; i < size; i++) {
    const id = `msg_${prefix}_${i}`;
    lines[i] = `${id} ${timestamp} ${signWebhook(body, { id, timestamp, privateKey })["webhook-signature"]}`;
  }
  writeFileSync(file, `${lines.join("\n")}\n`);
}

/**
 * Runs wrk with the signed-pool script against `url` and parses its JSON summary.
 *
 * @example
 * const result = await runLoad({ url: "http://127.0.0.1:8080/actions", durationSeconds: 10, connections: 64, threads: 2, poolFile, poolSize, bodyFile });
 */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const url = new URL(options.url);
  const script = join(import.meta.dir, "..", "wrk", "signed-pool.lua");
  const { code, stdout, stderr } = await run(
    "wrk",
    [
      "-t",
      String(options.threads),
      "-c",
      String(options.connections),
      "-d",
      `${options.durationSeconds}s`,
      "--timeout",
      "10s",
      "-s",
      script,
      `${url.protocol}//${url.host}`,
    ],
    {
      ...process.env,
      BENCH_POOL: options.poolFile,
      BENCH_BODY: options.bodyFile,
      BENCH_THREADS: String(options.threads),
      BENCH_PATH: url.pathname,
    },
  );
  const summaryLine = stdout.split("\n").find((line) => line.startsWith('{"requests"'));
  if (code !== 0 || !summaryLine) throw new Error(`wrk failed (exit ${code}): ${stderr || stdout}`);
  const summary = JSON.parse(summaryLine) as Record<string, number>;
  const requests = summary.requests!;
  return {
    requests,
    durationUs: summary.duration_us!,
    rps: requests / (summary.duration_us! / 1e6),
    non2xx: summary.non2xx!,
    socketErrors: summary.connect_errors! + summary.read_errors! + summary.write_errors! + summary.timeouts!,
    p50Ms: summary.p50_us! / 1000,
    p99Ms: summary.p99_us! / 1000,
    // Threads use disjoint slices of the pool and do not advance evenly, so a thread may wrap before the total reaches the size.
    poolExhausted: requests * 1.25 > options.poolSize,
  };
}
