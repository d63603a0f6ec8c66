import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfigText } from "../../src/config/load.ts";
import { compileConfig } from "../../src/gateway/compile.ts";
import { type RunningGateway, startGateway } from "../../src/gateway/start.ts";
import { createLogger } from "../../src/log/logger.ts";

/**
 * The compiled binary that `npm run build` writes; end-to-end tests run exactly this file.
 * ACTIONGATE_BINARY points them at another build (several builds side by side).
 */
export const BINARY = process.env.ACTIONGATE_BINARY ?? join(import.meta.dir, "..", "..", "dist", "actiongate");

/** A fresh temp folder holding `files` (name -> content); returns its path. */
export function tempDir(files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), "actiongate-test-"));
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  return dir;
}

export interface InProcessGateway {
  url: string;
  /** Every JSON log line written so far, parsed. */
  logs: Record<string, any>[];
  /** The raw log text, for "never contains" assertions. */
  logText(): string;
  /** The admin listener's base URL, when the config has `admin`. */
  adminUrl?: string;
  /** The running gateway itself (reload, metrics). */
  gateway: RunningGateway;
  /** The config file the gateway was started from (in a temp folder). */
  file: string;
  stop(): Promise<void>;
}

/** Starts the gateway in this process from YAML text (port 0), with logs captured. */
export async function startInProcessGateway(yaml: string, env: Record<string, string> = {}): Promise<InProcessGateway> {
  const dir = tempDir({ "config.yaml": yaml });
  const file = join(dir, "config.yaml");
  const lines: string[] = [];
  const logger = createLogger({ level: "debug", sink: (line) => lines.push(line) });
  const compiled = compileConfig(loadConfigText(file, yaml, env), { logger, userAgent: "actiongate/test" });
  const gateway = await startGateway(compiled, logger, { userAgent: "actiongate/test" });
  return {
    url: `http://127.0.0.1:${gateway.port}`,
    get logs() {
      return lines.map((line) => JSON.parse(line) as Record<string, any>);
    },
    logText: () => lines.join("\n"),
    ...(gateway.adminPort !== undefined ? { adminUrl: `http://127.0.0.1:${gateway.adminPort}` } : {}),
    gateway,
    file,
    stop: () => gateway.stop(),
  };
}

export interface GatewayProcess {
  url: string;
  /** The public listener's port; 0 when the gateway runs without one (routes of polled messages only). */
  port: number;
  /** The admin listener's port, when the config has `admin`. */
  adminPort?: number;
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Parsed JSON lines of stdout. */
  logs(): Record<string, any>[];
  /** Resolves with the exit code once the process ended. */
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Runs the compiled binary (`dist/actiongate`) from `cwd`, a folder with no node_modules, and
 * waits until it logs that it listens (or that it runs without a public listener). `executable`
 * runs another program instead (`deno`, with `run -A src/main.ts` at the start of `args`).
 */
export async function spawnGateway(
  args: string[],
  options: { cwd: string; env?: Record<string, string>; executable?: string },
): Promise<GatewayProcess> {
  const executable = options.executable ?? BINARY;
  if (!existsSync(executable)) throw new Error(`${executable} is missing: run npm run build first`);
  const child = spawn(executable, args, {
    cwd: options.cwd,
    env: { PATH: process.env.PATH ?? "", ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout!.on("data", (chunk) => (out += chunk));
  child.stderr!.on("data", (chunk) => (err += chunk));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const started = await new Promise<{ port: number; admin_port?: number }>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`gateway did not start in time.\nstdout: ${out}\nstderr: ${err}`)),
      15_000,
    );
    const check = () => {
      const line = out
        .split("\n")
        .find(
          (text) => text.includes('"msg":"listening"') || text.includes('"msg":"running without a public listener"'),
        );
      if (line) {
        clearTimeout(timer);
        const parsed = JSON.parse(line) as any;
        resolve({
          port: parsed.port ?? 0,
          ...(parsed.admin_port !== undefined ? { admin_port: parsed.admin_port } : {}),
        });
      }
    };
    child.stdout!.on("data", check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited with ${code} before listening.\nstdout: ${out}\nstderr: ${err}`));
    });
  });
  const parseLines = () =>
    out
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as Record<string, any>);
  const port = started.port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    ...(started.admin_port !== undefined ? { adminPort: started.admin_port } : {}),
    child,
    stdout: () => out,
    stderr: () => err,
    logs: parseLines,
    exited,
    async stop(signal = "SIGTERM") {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Runs the binary to completion (validate, --help, ...) and returns what it printed. */
export async function runBinary(
  args: string[],
  options: { cwd: string; env?: Record<string, string>; executable?: string },
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(options.executable ?? BINARY, args, {
    cwd: options.cwd,
    env: { PATH: process.env.PATH ?? "", ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk) => (stdout += chunk));
  child.stderr.on("data", (chunk) => (stderr += chunk));
  const code = await new Promise<number | null>((resolve) => child.on("exit", (exitCode) => resolve(exitCode)));
  return { code, stdout, stderr };
}

/** Polls `check` until it returns true (or throws after `timeoutMs`). */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 5_000,
  what = "condition",
): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
