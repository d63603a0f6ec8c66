import { expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_DIR } from "../support/signing.ts";

/**
 * forgeries.ts holds one forgery per line marked `@ts-expect-error FORGERY <name>`. Here the markers
 * are removed from a copy and the compiler must refuse exactly those lines: proof that each forgery
 * fails for itself, not for a typo next to it.
 */
test("each forgery of VerifiedCall, ParsedCall, ParsedMessage and OutboundMessage is a compile error", () => {
  const source = readFileSync(join(REPO_DIR, "test", "architecture", "forgeries.ts"), "utf8");
  const lines = source.split("\n");
  const forged: { name: string; line: number }[] = [];
  const stripped = lines.map((line, index) => {
    const marker = /\/\/ @ts-expect-error FORGERY (\S+)/.exec(line);
    if (!marker) return line;
    forged.push({ name: marker[1]!, line: index + 2 });
    return "";
  });
  expect(forged.map((forgery) => forgery.name)).toEqual([
    "json-parse",
    "spread-copy",
    "hand-built-parsed-call",
    "plain-message",
    "deliver-sync-hand-built",
    "unsigned-as-verified",
    "hand-built-parsed-message",
    "prepare-hand-built-message",
  ]);

  const dir = mkdtempSync(join(tmpdir(), "actiongate-forgeries-"));
  try {
    const file = join(dir, "forgeries.ts");
    writeFileSync(file, stripped.join("\n").replaceAll('"../../src/', `"${REPO_DIR}/src/`));
    const config = JSON.parse(readFileSync(join(REPO_DIR, "tsconfig.json"), "utf8")) as { compilerOptions: object };
    writeFileSync(
      join(dir, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: { ...config.compilerOptions, types: [join(REPO_DIR, "node_modules", "bun-types")] },
        files: [file, join(REPO_DIR, "src", "types.d.ts")],
      }),
    );
    const result = spawnSync(join(REPO_DIR, "node_modules", ".bin", "tsc"), ["--noEmit", "-p", dir], {
      encoding: "utf8",
    });
    const errorLines = [...result.stdout.matchAll(/forgeries\.ts\((\d+),\d+\): error/g)].map((match) =>
      Number(match[1]),
    );
    expect([...new Set(errorLines)].sort((a, b) => a - b)).toEqual(forged.map((forgery) => forgery.line));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
