/**
 * `npm run build`: the standalone binary `dist/actiongate` (Bun's runtime included).
 *
 * `--splitting` keeps what is loaded on first use (the epilot SDK for write-back, the PostgreSQL
 * client) in chunks inside the binary that are evaluated only when needed: about 20 MB less memory
 * for a gateway that never writes back (`npm run bench` measured peak RSS 165 → 145 MB). The
 * chunks' source maps that the bundler leaves beside the binary are dropped; the binary keeps its own.
 *
 * The expression worker's module is a second entrypoint: a Worker's script must be in the binary
 * (Bun does not follow `new Worker(...)` by itself). It lands at its path under `src/` inside the
 * binary, `/$bunfs/root/transform/expression-worker.ts`, where runtime/worker-thread.ts looks for it.
 */
import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";

const dist = join(import.meta.dir, "..", "dist");
const build = Bun.spawnSync(
  [
    process.execPath,
    "build",
    "src/main.ts",
    "src/transform/expression-worker.ts",
    "--compile",
    // A gateway reads its environment and its config, nothing else: no .env, and no bunfig.toml from
    // the working folder, whose `preload` would run any script in the gateway's process.
    "--no-compile-autoload-dotenv",
    "--no-compile-autoload-bunfig",
    "--splitting",
    "--minify",
    "--sourcemap",
    "--outfile",
    join(dist, "actiongate"),
  ],
  { cwd: join(import.meta.dir, ".."), stdout: "inherit", stderr: "inherit" },
);
if (build.exitCode !== 0) process.exit(build.exitCode ?? 1);
for (const file of readdirSync(dist)) if (file.endsWith(".js.map")) rmSync(join(dist, file));
