import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { BINARY, waitFor } from "../support/gateway.ts";
import { closedPort, type RecordingServer, startRecordingServer } from "../support/recording-server.ts";
import { REPO_DIR } from "../support/signing.ts";

/**
 * The README's walk-throughs, run verbatim. Each shell block the README marks with
 * `<!-- readme-test: run -->` (must exit 0), `<!-- readme-test: serve -->` (started, must log that it
 * listens, stopped at the end) or `<!-- readme-test: output -->` (a text block: what the run block
 * before it prints) is taken from README.md as it is and run with bash in a copy of the repository:
 * once with the built binary in dist/ (npx actiongate runs it), once without (npx actiongate runs the
 * source with the Bun of node_modules). The ERP is a recording server on 127.0.0.1 (ERP_URL), the
 * gateway's port a free one (PORT): the README's commands read both from the environment.
 */

interface Block {
  readonly kind: "run" | "serve" | "output";
  readonly text: string;
  /** Line of the README the block starts at, for messages. */
  readonly line: number;
}

function markedBlocks(readme: string): Block[] {
  const blocks: Block[] = [];
  const pattern = /<!-- readme-test: (run|serve|output) -->\n```[a-z]*\n([\s\S]*?)```/g;
  for (const match of readme.matchAll(pattern)) {
    const line = readme.slice(0, match.index).split("\n").length;
    blocks.push({ kind: match[1] as Block["kind"], text: match[2]!, line });
  }
  return blocks;
}

/**
 * A copy of the repository as a clone after `npm ci` has it: the files git knows (tracked, and new
 * ones not ignored) with their times, and node_modules re-rooted. Links npm made inside node_modules
 * (node_modules/.bin, the launcher's `file:` link to scripts/npx) are copied as links, so they point
 * into the copy; the installed packages are linked to the originals.
 */
function copyOfRepository(withBinary: boolean): string {
  const root = mkdtempSync(join(tmpdir(), "actiongate-readme-"));
  const listed = spawnSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], {
    cwd: REPO_DIR,
    encoding: "utf8",
  });
  if (listed.status !== 0) throw new Error(`git ls-files failed: ${listed.stderr}`);
  for (const file of listed.stdout.split("\0").filter(Boolean)) {
    const from = join(REPO_DIR, file);
    if (!existsSync(from)) continue;
    const to = join(root, file);
    mkdirSync(dirname(to), { recursive: true });
    copyFileSync(from, to);
    const { atime, mtime, mode } = statSync(from);
    utimesSync(to, atime, mtime);
    if (mode & 0o111) spawnSync("chmod", ["+x", to]);
  }
  const modules = join(REPO_DIR, "node_modules");
  mkdirSync(join(root, "node_modules", ".bin"), { recursive: true });
  for (const entry of readdirSync(modules)) {
    const from = join(modules, entry);
    if (entry === ".bin") {
      for (const bin of readdirSync(from))
        symlinkSync(readlinkSync(join(from, bin)), join(root, "node_modules", ".bin", bin));
    } else if (lstatSync(from).isSymbolicLink()) {
      symlinkSync(readlinkSync(from), join(root, "node_modules", entry));
    } else {
      symlinkSync(from, join(root, "node_modules", entry));
    }
  }
  if (withBinary) {
    mkdirSync(join(root, "dist"));
    // A hard link keeps the build's time, which is newer than every file of src/: the launcher takes it.
    try {
      linkSync(BINARY, join(root, "dist", "actiongate"));
    } catch {
      copyFileSync(BINARY, join(root, "dist", "actiongate"));
      spawnSync("chmod", ["+x", join(root, "dist", "actiongate")]);
    }
  }
  return root;
}

/** The command lines of the processes running now that name `root` (Linux: from /proc). */
function commandLinesUnder(root: string): string[][] {
  const lines: string[][] = [];
  for (const pid of readdirSync("/proc").filter((name) => /^\d+$/.test(name))) {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
      if (argv.some((arg) => arg.startsWith(root))) lines.push(argv);
    } catch {
      // The process ended meanwhile.
    }
  }
  return lines;
}

/** What is printed depends on the port and a fresh webhook-id: the README shows 8080 and `msg_...`. */
function normalised(output: string, port: number): string {
  return output.replaceAll(`127.0.0.1:${port}`, "127.0.0.1:8080").replace(/msg_[A-Za-z0-9_-]+/g, "msg_...");
}

/** The environment of a newcomer's shell: no npm or test variables; the ports the test chose. */
function shellEnv(extra: Record<string, string>): Record<string, string> {
  const path = (process.env.PATH ?? "")
    .split(":")
    .filter((entry) => !entry.includes("node_modules"))
    .join(":");
  return { PATH: path, HOME: process.env.HOME ?? tmpdir(), LANG: "C.UTF-8", ...extra };
}

/** Runs a block to its end; asynchronously, since the ERP it calls is served by this process. */
async function runBlock(block: Block, cwd: string, env: Record<string, string>) {
  const child = spawn("bash", ["-e", "-o", "pipefail", "-c", block.text], {
    cwd,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk) => (stdout += chunk));
  child.stderr.on("data", (chunk) => (stderr += chunk));
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  const code = await new Promise<number | null>((resolve) => child.on("exit", (exitCode) => resolve(exitCode)));
  clearTimeout(timer);
  return { code, stdout, stderr };
}

interface Served {
  readonly child: ChildProcess;
  output(): string;
}

function serveBlock(block: Block, cwd: string, env: Record<string, string>): Served {
  // Its own process group, so that stopping it reaches bash, npx and the launcher, as Ctrl-C would.
  const child = spawn("bash", ["-e", "-c", block.text], {
    cwd,
    env,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.on("data", (chunk) => (out += chunk));
  child.stderr!.on("data", (chunk) => (out += chunk));
  return { child, output: () => out };
}

async function stop(served: Served): Promise<void> {
  const { child } = served;
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  // Ctrl-C: SIGINT to every process of the terminal's group (bash, npx, the launcher), as the README says.
  process.kill(-child.pid, "SIGINT");
  await exited;
}

const readme = readFileSync(join(REPO_DIR, "README.md"), "utf8");
const blocks = markedBlocks(readme);

let erp: RecordingServer;
const cleanups: (() => unknown)[] = [];
beforeAll(async () => {
  erp = await startRecordingServer({ body: { id: "E-1", success: true } });
});
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await erp.close();
});

describe("README.md", () => {
  test("marks its walk-through: init, validate, serve, send, and the examples", () => {
    const commands = blocks.filter((block) => block.kind !== "output").map((block) => block.text.trim());
    expect(commands.some((text) => text.startsWith("npx actiongate init "))).toBe(true);
    expect(commands.some((text) => /npx actiongate validate --config my-gateway\/config\.yaml$/.test(text))).toBe(true);
    expect(blocks.some((block) => block.kind === "serve")).toBe(true);
    expect(commands.some((text) => text.startsWith("npx actiongate send "))).toBe(true);
    expect(commands.join("\n")).toContain("--config examples/soap-route/config.yaml");
    // Every output block follows a block that runs.
    blocks.forEach((block, index) => {
      if (block.kind === "output") expect(blocks[index - 1]?.kind).toBe("run");
    });
  });

  test("the binary is in dist/ (npm run build ran)", () => {
    expect(existsSync(BINARY)).toBe(true);
  });

  for (const variant of ["the built binary", "the source (no dist/)"] as const) {
    test(`the walk-through works verbatim in a copy of the repository, npx actiongate running ${variant}`, async () => {
      const withBinary = variant === "the built binary";
      const root = copyOfRepository(withBinary);
      cleanups.push(() => rmSync(root, { recursive: true, force: true }));
      const port = await closedPort();
      const env = shellEnv({ PORT: String(port), ERP_URL: erp.url });
      const before = erp.requests.length;
      const servers: Served[] = [];
      cleanups.push(async () => {
        for (const served of servers) await stop(served);
      });

      let previous: { stdout: string; line: number } | undefined;
      for (const block of blocks) {
        if (block.kind === "output") {
          expect({ line: block.line, output: normalised(previous!.stdout, port) }).toEqual({
            line: block.line,
            output: block.text,
          });
          continue;
        }
        if (block.kind === "serve") {
          const served = serveBlock(block, root, env);
          servers.push(served);
          await waitFor(
            () => served.output().includes('"msg":"listening"'),
            20_000,
            `README line ${block.line} to listen`,
          );

          // What serves: the binary in dist/, or src/main.ts run by Bun.
          const programs = commandLinesUnder(root);
          if (withBinary) expect(programs.some((argv) => argv[0] === join(root, "dist", "actiongate"))).toBe(true);
          else expect(programs.some((argv) => argv.includes(join(root, "src", "main.ts")))).toBe(true);
          continue;
        }
        const result = await runBlock(block, root, env);
        expect({
          line: block.line,
          code: result.code,
          stderr: result.stderr,
          ...(result.code ? { stdout: result.stdout } : {}),
        }).toEqual({
          line: block.line,
          code: 0,
          stderr: withBinary ? "" : expect.any(String),
        });
        previous = { stdout: result.stdout, line: block.line };
      }

      // What the ERP received for the send of step 4.
      const received = erp.requests.slice(before);
      expect(received).toHaveLength(1);
      expect(received[0]).toMatchObject({
        method: "POST",
        url: "/api/contracts/2026-0042",
        json: { contract: "2026-0042", status: "approved" },
      });
      expect(received[0]!.headers.authorization).toBe("Bearer test-token");

      // Stopped with Ctrl-C: the gateway shuts down gracefully (one SIGINT reached it, not three).
      for (const served of servers) {
        await stop(served);
        expect(served.output()).toContain('"msg":"stopped"');
      }
      // The secret half of the key pair is in a 0600 file and nowhere in what was printed.
      const secret = readFileSync(join(root, "my-gateway", "signing-key"), "utf8").trim();
      expect(statSync(join(root, "my-gateway", "signing-key")).mode & 0o777).toBe(0o600);
      expect(servers.map((served) => served.output()).join("")).not.toContain(secret);
    }, 120_000);
  }

  test("the mistake the README shows is the message validate prints for it", async () => {
    const root = mkdtempSync(join(tmpdir(), "actiongate-readme-mistake-"));
    cleanups.push(() => rmSync(root, { recursive: true, force: true }));
    const init = spawnSync(BINARY, ["init", "my-gateway"], { cwd: root, encoding: "utf8" });
    expect(init.status).toBe(0);
    const file = join(root, "my-gateway", "config.yaml");
    writeFileSync(file, readFileSync(file, "utf8").replace("Bearer ${ERP_TOKEN}", "Bearer $ERP_TOKEN"));
    const validate = spawnSync(BINARY, ["validate", "--config", "my-gateway/config.yaml"], {
      cwd: root,
      encoding: "utf8",
      env: { PATH: process.env.PATH ?? "" },
    });
    expect(validate.status).toBe(1);
    const shown = readme.split("\n").find((line) => line.includes('"$ERP_TOKEN" is not read from the environment'));
    expect(validate.stderr.trim()).toBe(shown!);
  });
});
