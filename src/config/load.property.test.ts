import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { compileConfig } from "../gateway/compile.ts";
import { ConfigError } from "../kit/config-errors.ts";
import { silentLogger } from "../log/logger.ts";
import { loadConfigText } from "./load.ts";

/**
 * Properties of the config loader over generated files: whatever the text, loading and compiling
 * either succeed or throw a ConfigError whose every line names the file (never a crash, never a
 * stack trace), and an environment value is never echoed into a problem as a secret.
 */
const FILE = "/nonexistent/config.yaml";

/** Loads and compiles; returns the problems, or [] when the config is usable. */
function problemsOf(text: string, env: Record<string, string> = {}): string[] {
  try {
    const compiled = compileConfig(loadConfigText(FILE, text, env), { logger: silentLogger, userAgent: "t" });
    void compiled.close();
    return [];
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return error.message.split("\n");
  }
}

const validRoute = { name: "erp", target: { type: "http", url: "http://127.0.0.1:1/x" } };
const validConfig = { verification: { secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"] }, routes: [validRoute] };

/** YAML-ish text: fragments that make the YAML parser, the interpolation and the schema work. */
const yamlFragment = fc.oneof(
  fc.constantFrom(
    "server:",
    "  port: ",
    "routes:",
    "  - name: ",
    "    target: {type: http, url: ",
    "${",
    "${X:-",
    "}",
    "*a",
    "&a ",
    "<<: ",
    "- ",
    ": ",
    "\n",
    "  ",
    "'",
    '"',
    "#",
    "{",
    "[",
    "]",
    "tls:",
    "allowed_ips: [",
    "::1/129",
    "10.0.0.0/8",
  ),
  fc.string({ maxLength: 6 }),
);
const yamlText = fc.array(yamlFragment, { maxLength: 40 }).map((parts) => parts.join(""));

/** A valid config with one key set to a generated value at a generated place. */
const configKeys = [
  ["server", "port"],
  ["server", "max_body_size"],
  ["server", "body_timeout"],
  ["server", "allowed_ips"],
  ["server", "max_header_count"],
  ["server", "tls"],
  ["verification", "tolerance"],
  ["verification", "secrets"],
  ["routes", 0, "name"],
  ["routes", 0, "transform"],
  ["routes", 0, "target", "url"],
  ["routes", 0, "target", "tls"],
  ["routes", 0, "delivery", "mode"],
  ["routes", 0, "match"],
  ["store"],
  ["unknown_key"],
] as const;

describe("config loader properties", () => {
  test("any text loads or fails with ConfigError lines that name the file", () => {
    fc.assert(
      fc.property(yamlText, (text) => {
        for (const line of problemsOf(text)) {
          expect(line.startsWith(FILE)).toBe(true);
          expect(line).not.toContain("    at ");
        }
      }),
      { numRuns: 400 },
    );
  });

  test("any JSON value at any key of a valid config loads or fails with ConfigError lines, never a crash", () => {
    fc.assert(
      fc.property(fc.constantFrom(...configKeys), fc.jsonValue({ maxDepth: 2 }), (path, value) => {
        const config = structuredClone(validConfig) as Record<string, any>;
        let node = config;
        for (const segment of path.slice(0, -1)) node = node[segment] ??= {};
        node[path.at(-1)!] = value;
        const problems = problemsOf(JSON.stringify(config));
        for (const line of problems) expect(line.startsWith(FILE)).toBe(true);
      }),
      { numRuns: 400 },
    );
  });

  test("server.allowed_ips: a bad entry is reported at its own index; good ones load", () => {
    const octet = fc.integer({ min: 0, max: 255 });
    const goodCidr = fc.oneof(
      fc
        .tuple(octet, octet, octet, octet, fc.integer({ min: 0, max: 32 }))
        .map(([a, b, c, d, p]) => `${a}.${b}.${c}.${d}/${p}`),
      fc
        .tuple(
          fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 }),
          fc.integer({ min: 0, max: 128 }),
        )
        .map(([groups, p]) => `${groups.map((g) => g.toString(16)).join(":")}/${p}`),
    );
    const badCidr = fc.oneof(
      fc.tuple(octet, fc.integer({ min: 33, max: 999 })).map(([a, p]) => `${a}.0.0.0/${p}`),
      fc.integer({ min: 256, max: 9999 }).map((n) => `10.0.0.${n}`),
      fc.stringMatching(/^[g-z]{1,8}$/),
    );
    fc.assert(
      fc.property(fc.array(goodCidr, { maxLength: 4 }), fc.option(badCidr, { nil: undefined }), (good, bad) => {
        const list = bad === undefined ? good : [...good, bad];
        const problems = problemsOf(JSON.stringify({ ...validConfig, server: { allowed_ips: list } }));
        if (bad === undefined) expect(problems).toEqual([]);
        else
          expect(problems).toEqual([
            expect.stringMatching(
              new RegExp(`server\\.allowed_ips\\[${good.length}\\]: .*(not an IPv4 or IPv6|bad prefix length)`),
            ),
          ]);
      }),
      { numRuns: 150 },
    );
  });

  test("an environment value that fails a check is never echoed in the problem", () => {
    fc.assert(
      // Not base64 (`!`, `-`) or too short: each is refused by the HMAC secret check.
      fc.property(
        fc.oneof(fc.stringMatching(/^whsec_S3CRET[a-zA-Z!-]{8,20}-$/), fc.stringMatching(/^S3CRET[a-z]{0,9}$/)),
        (secret) => {
          const text = JSON.stringify({ ...validConfig, verification: { secrets: ["${HMAC}"] } });
          const problems = problemsOf(text, { HMAC: secret });
          expect(problems.length).toBeGreaterThan(0);
          expect(problems.join("\n")).not.toContain(secret);
        },
      ),
      { numRuns: 30 },
    );
  });
});
