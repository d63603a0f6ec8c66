#!/usr/bin/env node
/**
 * `npx actiongate <command>` in a clone of the repository, right after `npm ci`.
 *
 * npm does not link a package's own `bin` into its own node_modules/.bin, so the root package.json
 * names this folder as a dev dependency (`file:scripts/npx`): `npm ci` links it like any other
 * package and puts this script at node_modules/.bin/actiongate, where `npx` finds it (from any
 * folder inside the clone).
 *
 * It runs the built binary, dist/actiongate, when there is one that is newer than every file of
 * src/; otherwise the source, src/main.ts, with the Bun that `npm ci` installed. So a fresh clone
 * works before `npm run build`, and an edit of src/ is never hidden behind an old binary.
 * ACTIONGATE_FROM_SOURCE=1 runs the source even when the binary is up to date.
 *
 * Signals: the program runs in its own process group, and the first SIGINT, SIGTERM or SIGHUP of a
 * burst is passed on to it once. Ctrl-C reaches this script twice (from the terminal and again from
 * npx); the gateway would take a second SIGINT as "stop now", so it must get one.
 */
import { spawn } from "node:child_process";
import { accessSync, constants, readdirSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const binary = join(root, "dist", "actiongate");
const args = process.argv.slice(2);

/** The newest modification time of any file under `dir` (ms since epoch), 0 when it has none. */
function newestChange(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestChange(path) : statSync(path).mtimeMs);
  }
  return newest;
}

function executable(path) {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** The Bun binary of node_modules/bun (its postinstall puts the platform's binary there). */
function bunFromNodeModules() {
  try {
    const require = createRequire(import.meta.url);
    const manifest = require.resolve("bun/package.json");
    const bin = require("bun/package.json").bin?.bun ?? "bin/bun.exe";
    const path = join(dirname(manifest), bin);
    return executable(path) ? path : undefined;
  } catch {
    return undefined;
  }
}

function chooseProgram() {
  if (process.env.ACTIONGATE_FROM_SOURCE !== "1" && executable(binary)) {
    if (statSync(binary).mtimeMs >= newestChange(join(root, "src"))) return { command: binary, args };
    process.stderr.write("actiongate: dist/actiongate is older than src/ (npm run build rebuilds it); running the source\n");
  }
  const bun = bunFromNodeModules();
  if (!bun) {
    process.stderr.write(
      "actiongate: found neither dist/actiongate nor Bun in node_modules: run npm ci (and npm run build for the binary)\n",
    );
    process.exit(1);
  }
  // As the binary (scripts/build.ts): no .env, and the repository's bunfig.toml, never one from the
  // working folder (its `preload` would run in the gateway).
  return {
    command: bun,
    args: ["--no-env-file", `--config=${join(root, "bunfig.toml")}`, join(root, "src", "main.ts"), ...args],
  };
}

const program = chooseProgram();
const posix = process.platform !== "win32";
const child = spawn(program.command, program.args, { stdio: "inherit", detached: posix });

const FORWARDED = ["SIGINT", "SIGTERM", "SIGHUP"];
const BURST_MS = 300;
const lastForwarded = new Map();
for (const signal of FORWARDED) {
  process.on(signal, () => {
    const now = Date.now();
    if (now - (lastForwarded.get(signal) ?? 0) < BURST_MS) return;
    lastForwarded.set(signal, now);
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  });
}

child.on("error", (error) => {
  process.stderr.write(`actiongate: cannot run ${program.command}: ${error.message}\n`);
  process.exit(1);
});

child.on("exit", (code, signal) => {
  if (signal) {
    // Ended by a signal: end the same way, so that the caller sees it.
    for (const forwarded of FORWARDED) process.removeAllListeners(forwarded);
    process.kill(process.pid, signal);
    return;
  }
  process.exit(code ?? 1);
});
