import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";

/**
 * DESIGN.md: only src/runtime/ may know which runtime it is on, so the same source runs under Deno.
 * Tests (`*.test.ts`) may use bun:test and are exempt.
 */
const SRC = join(import.meta.dir, "..", "src");
const RUNTIME_SPECIFIC = /\bBun\.|from\s+["']bun:|\bDeno\.|import\.meta\.(dir|path|file)\b/;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts") ? [path] : [];
  });
}

test("only src/runtime/ touches Bun or Deno APIs", () => {
  const offenders = sourceFiles(SRC)
    .filter((file) => !relative(SRC, file).startsWith("runtime"))
    .flatMap((file) =>
      readFileSync(file, "utf8")
        .split("\n")
        .map((line, index) => ({ line, index }))
        .filter(
          ({ line }) => RUNTIME_SPECIFIC.test(line) && !line.trim().startsWith("*") && !line.trim().startsWith("//"),
        )
        .map(({ index }) => `${relative(SRC, file)}:${index + 1}`),
    );
  expect(offenders).toEqual([]);
});

test("the bare 'undici' specifier is never imported (Bun replaces it with a stub without pools)", () => {
  const offenders = sourceFiles(SRC).filter((file) => /from\s+["']undici["']/.test(readFileSync(file, "utf8")));
  expect(offenders).toEqual([]);
});
