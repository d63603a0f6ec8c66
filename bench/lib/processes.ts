import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { createServer } from "node:net";

/** A server process of the benchmark, with its stdout going to a file (as a log would in production). */
export interface BenchProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly port: number;
  /** Where its stdout goes. */
  readonly logFile: string;
  /** Every process whose memory counts: the process itself, or a supervisor's workers. */
  pids(): number[];
  stop(): Promise<void>;
}

/**
 * Starts `command` with stdout in `logFile` and waits until `portFromLine` finds the port in a line
 * of it (a `{"port": N}` line, or actiongate's `listening` log line).
 *
 * @example
 * const upstream = await startProcess("upstream", "bun", ["bench/upstream.ts"], { logFile: "/tmp/x.log" });
 */
export async function startProcess(
  name: string,
  command: string,
  args: string[],
  options: {
    logFile: string;
    env?: Record<string, string>;
    cwd?: string;
    timeoutMs?: number;
    portFromLine?: (line: string) => number | undefined;
    readyLines?: number;
  },
): Promise<BenchProcess> {
  const out = openSync(options.logFile, "w");
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: { PATH: process.env.PATH ?? "", ...options.env },
    stdio: ["ignore", out, "pipe"],
  });
  closeSync(out);
  let stderr = "";
  child.stderr!.on("data", (chunk) => (stderr += chunk));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const portFromLine =
    options.portFromLine ??
    ((line: string) => (line.startsWith('{"port"') ? (JSON.parse(line) as any).port : undefined));
  const until = Date.now() + (options.timeoutMs ?? 15_000);
  let port: number | undefined;
  while (port === undefined) {
    if (child.exitCode !== null)
      throw new Error(`${name} exited with ${child.exitCode} before it listened: ${stderr.slice(0, 2000)}`);
    if (Date.now() > until)
      throw new Error(`${name} did not listen within ${options.timeoutMs ?? 15_000} ms: ${stderr.slice(0, 2000)}`);
    const lines = readFileSync(options.logFile, "utf8").split("\n");
    const ports = lines.map(portFromLine).filter((p): p is number => p !== undefined);
    if (ports.length >= (options.readyLines ?? 1)) port = ports[0];
    else await sleep(20);
  }
  return {
    name,
    child,
    port,
    logFile: options.logFile,
    pids: () => [child.pid!, ...childPids(child.pid!)],
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const killed = setTimeout(() => child.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(killed);
    },
  };
}

/** The direct children of `pid` (a supervisor's workers), from /proc. */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Peak resident memory (VmHWM) of `pid` in bytes, or undefined once it is gone. */
export function peakRssBytes(pid: number): number | undefined {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** A TCP port free right now on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs a command to completion; resolves with its exit code and output. */
export function run(
  command: string,
  args: string[],
  env: Record<string, string | undefined> = process.env,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stderr.on("data", (chunk) => (stderr += chunk));
    child.once("error", (error) => resolve({ code: 127, stdout, stderr: stderr + error.message }));
    child.once("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}
