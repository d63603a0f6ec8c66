/**
 * Builds the Deno binary, `dist/actiongate-deno` (`deno compile`), from the same source as the Bun one.
 *
 * `deno compile` copies a base runtime called `denort` and appends the program to it. Deno downloads
 * denort from dl.deno.land for its own version unless `DENORT_BIN` names a local copy; the npm
 * package `deno` ships only `deno`, which cannot stand in for denort (a binary built on it starts
 * Deno's REPL instead of the program). Without network access to dl.deno.land, set DENORT_BIN.
 *
 * @example
 * npm run build:deno                                   # bun scripts/deno-compile.ts
 * DENORT_BIN=/opt/denort bun scripts/deno-compile.ts /tmp/actiongate-deno
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";

export const PROJECT_ROOT = join(import.meta.dirname, "..");
export const DENO = join(PROJECT_ROOT, "node_modules", ".bin", "deno");
export const DENO_BINARY_PATH = join(PROJECT_ROOT, "dist", "actiongate-deno");

/**
 * What `deno compile` must leave out of the embedded node_modules: tools that are only needed to
 * build and test (the bun and deno binaries alone are 200 MB), and bintrees' test data, a 2 MB
 * extensionless file of numbers that deno 2.9.6 parses as one expression until its stack overflows.
 */
export const DENO_COMPILE_EXCLUDES = [
  "node_modules/.bin",
  "node_modules/bun",
  "node_modules/@oven",
  "node_modules/bun-types",
  "node_modules/deno",
  "node_modules/@deno",
  "node_modules/typescript",
  "node_modules/@typescript",
  "node_modules/fast-check",
  "node_modules/bintrees/test",
] as const;

/**
 * The `deno compile` arguments that build `output` from src/main.ts (run them from the project root).
 * Types are checked by `tsc` (npm run typecheck), not again by Deno. A worker's module is not
 * followed from `new Worker(...)`: the expression worker is included by name.
 *
 * @example
 * spawnSync(DENO, denoCompileArguments("/tmp/actiongate-deno"), { cwd: PROJECT_ROOT });
 */
export function denoCompileArguments(output: string): string[] {
  return [
    "compile",
    "--allow-all",
    "--no-check",
    ...DENO_COMPILE_EXCLUDES.flatMap((path) => ["--exclude", path]),
    "--include",
    "src/transform/expression-worker.ts",
    "--output",
    output,
    "src/main.ts",
  ];
}

if (import.meta.main) {
  const output = process.argv[2] ?? DENO_BINARY_PATH;
  if (!process.env.DENORT_BIN) {
    process.stderr.write(
      "DENORT_BIN is not set: deno compile will download denort from dl.deno.land (see scripts/deno-compile.ts)\n",
    );
  }
  const result = spawnSync(DENO, denoCompileArguments(output), { cwd: PROJECT_ROOT, stdio: "inherit" });
  process.exit(result.status ?? 1);
}
