import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO_DIR } from "../support/signing.ts";

/**
 * A user clones the repository and has nothing beside it: no tracked file may read, link or name the
 * team's notebook folder beside the checkout. Spelled in two parts so that this file does not name it.
 */
const OUTSIDE_FOLDER = ["..", "shared"].join("/");

function trackedFiles(): string[] {
  const listed = spawnSync("git", ["ls-files", "-z"], { cwd: REPO_DIR, encoding: "utf8" });
  if (listed.status !== 0) throw new Error(`git ls-files failed: ${listed.stderr}`);
  return listed.stdout.split("\0").filter((file) => file !== "");
}

describe("the repository stands alone", () => {
  test(`no tracked file names ${OUTSIDE_FOLDER}`, () => {
    const offenders = trackedFiles().filter((file) => {
      let text: string;
      try {
        text = readFileSync(join(REPO_DIR, file), "utf8");
      } catch {
        return false; // deleted in the work tree but still tracked
      }
      return text.includes(OUTSIDE_FOLDER);
    });
    expect(offenders).toEqual([]);
  });

  test("the example payload and the test fixtures are in the repository", () => {
    const files = new Set(trackedFiles());
    for (const file of [
      "examples/payloads/custom-action.json",
      "examples/payloads/poll-message.json",
      "test/fixtures/standard-webhooks-vectors.json",
      "test/fixtures/epilot-public-key.json",
    ]) {
      expect(files.has(file)).toBe(true);
    }
  });
});
