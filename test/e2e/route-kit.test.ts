import { afterAll, describe, expect, test } from "bun:test";
import { readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runBinary, tempDir } from "../support/gateway.ts";
import { EXAMPLE_PAYLOAD_FILE, REPO_DIR } from "../support/signing.ts";

/**
 * explain and test through the compiled binary, on the examples in examples/ as a user would run
 * them: every example's route tests pass, explain shows each example's request with its
 * credentials hidden, and the exit codes are the documented ones.
 */

const EXAMPLES = readdirSync(join(REPO_DIR, "examples"), { withFileTypes: true })
  .filter((entry) => entry.isDirectory() && readdirSync(join(REPO_DIR, "examples", entry.name)).includes("config.yaml"))
  .map((entry) => entry.name);

/** What the examples read from the environment, as an operator would set them: values that must never show. */
const SECRETS = {
  ERP_TOKEN: "prod-erp-token-1",
  CRM_USER: "crm-gateway",
  CRM_PASSWORD: "prod-crm-password-2",
  BILLING_API_KEY: "prod-billing-key-3",
};

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

test("examples/ holds an HTTP, a SOAP and an async example, each with route tests", () => {
  expect(EXAMPLES).toEqual(expect.arrayContaining(["http-route", "soap-route", "async-route"]));
  for (const example of EXAMPLES) {
    const files = readdirSync(join(REPO_DIR, "examples", example));
    expect(files.some((file) => file.endsWith(".test.yaml"))).toBe(true);
  }
});

describe.each(EXAMPLES)("examples/%s", (example) => {
  const config = `examples/${example}/config.yaml`;

  test("actiongate test: every route test passes, exit 0", async () => {
    const result = await runBinary(["test", "--config", config], { cwd: REPO_DIR });
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: "" });
    const lines = result.stdout.trimEnd().split("\n");
    expect(lines.at(-1)).toMatch(/^[1-9]\d* passed, 0 failed$/);
    for (const line of lines.slice(0, -1))
      expect(line).toMatch(new RegExp(`^PASS examples/${example}/\\S+\\.test\\.yaml: .+`));
  });

  test("actiongate validate --with-tests: the config and its tests in one command, exit 0", async () => {
    const result = await runBinary(["validate", "--config", config, "--with-tests"], { cwd: REPO_DIR, env: SECRETS });
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: "" });
    expect(result.stdout).toStartWith(`${config}: valid, `);
    expect(result.stdout).toMatch(/\n[1-9]\d* passed, 0 failed\n$/);
  });

  test("actiongate explain (text and --json): the request, credentials as ***, exit 0", async () => {
    for (const json of [false, true]) {
      const result = await runBinary(
        [
          "explain",
          "--config",
          config,
          "--payload",
          "examples/payloads/custom-action.json",
          ...(json ? ["--json"] : []),
        ],
        { cwd: REPO_DIR, env: SECRETS },
      );
      expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: "" });
      for (const [name, secret] of Object.entries(SECRETS)) {
        if (name !== "CRM_USER") expect(result.stdout).not.toContain(secret);
      }
      // The payload's secrets that the examples strip.
      expect(result.stdout).not.toContain("user-token-that-must-never-leave-the-gateway");
      expect(result.stdout).not.toContain("app-option-secret-value");
      if (json) {
        const shown = JSON.parse(result.stdout) as { route: string; request: { method: string; body: string } };
        expect(shown.request.method).toBe(example === "http-route" ? "PUT" : "POST");
      } else {
        expect(result.stdout).toMatch(
          /^payload: examples\/payloads\/custom-action\.json: a custom action of org 739224/,
        );
        expect(result.stdout).toContain("\n\nrequest: what the ");
      }
    }
  });
});

describe("through the binary: what a user sees when things go wrong", () => {
  test("explain of the SOAP example: the whole envelope with WS-Security, its password ***", async () => {
    const result = await runBinary(
      ["explain", "--config", "examples/soap-route/config.yaml", "--payload", EXAMPLE_PAYLOAD_FILE, "--json"],
      { cwd: REPO_DIR, env: SECRETS },
    );
    expect(result.code).toBe(0);
    const body = (JSON.parse(result.stdout) as { request: { body: string } }).request.body;
    expect(body).toMatch(/^<\?xml version="1\.0" encoding="utf-8"\?><soap:Envelope /);
    expect(body).toContain("<wsse:Username>crm-gateway</wsse:Username>");
    expect(body).toMatch(/<wsse:Password Type="[^"]+#PasswordText">\*\*\*<\/wsse:Password>/);
    expect(body).toContain("<tns:CustomerNumber>C-100017</tns:CustomerNumber>");
  });

  test("explain of the async example shows its retry schedule", async () => {
    const result = await runBinary(
      ["explain", "--config", "examples/async-route/config.yaml", "--payload", EXAMPLE_PAYLOAD_FILE],
      { cwd: REPO_DIR, env: SECRETS },
    );
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("delivery: async; epilot gets 202 once the call is stored, then up to 8 attempts");
    expect(result.stdout).toContain("attempts 7-8  after a random wait of up to 1m each");
  });

  test("a failing route test: FAIL with the difference, the count, exit 1", async () => {
    const dir = tempDir({
      "wrong.test.yaml": `env: { ERP_TOKEN: test-token }
tests:
  - name: the ERP gets another contract number
    payload: ${EXAMPLE_PAYLOAD_FILE}
    expect: { request: { body: { contract: "2026-0099" } } }
`,
    });
    dirs.push(dir);
    const result = await runBinary(
      ["test", "--config", "examples/http-route/config.yaml", join(dir, "wrong.test.yaml")],
      { cwd: REPO_DIR },
    );
    expect(result).toEqual({
      code: 1,
      stdout: `FAIL ${dir}/wrong.test.yaml: the ERP gets another contract number
  request.body.contract: expected "2026-0099", got "2026-0042"
0 passed, 1 failed
`,
      stderr: "",
    });
  });

  test("exit 2: a test file with unknown keys, a payload that is not JSON, arguments that are wrong", async () => {
    const dir = tempDir({
      "bad.test.yaml": "tests:\n  - name: x\n    payload: nope.json\n    expect: {}\n    extra: 1\n",
    });
    dirs.push(dir);
    writeFileSync(join(dir, "payload.json"), "{ not json");
    const badFile = await runBinary(
      ["test", "--config", "examples/http-route/config.yaml", join(dir, "bad.test.yaml")],
      {
        cwd: REPO_DIR,
      },
    );
    expect(badFile).toEqual({
      code: 2,
      stdout: "",
      stderr: `${dir}/bad.test.yaml:5:5 tests[0].extra: unknown key (known here: name, payload, set, route, target_response, expect)\n`,
    });
    const badPayload = await runBinary(
      ["explain", "--config", "examples/http-route/config.yaml", "--payload", join(dir, "payload.json")],
      { cwd: REPO_DIR, env: SECRETS },
    );
    expect(badPayload.code).toBe(2);
    expect(badPayload.stderr).toStartWith(`actiongate: ${dir}/payload.json is not valid JSON`);
    const noPayload = await runBinary(["explain", "--config", "examples/http-route/config.yaml"], { cwd: REPO_DIR });
    expect(noPayload).toMatchObject({
      code: 2,
      stderr: expect.stringContaining("explain needs --payload <file.json>"),
    });
  });

  test("exit 1: explain of a payload no route takes", async () => {
    const dir = tempDir({
      "order.json": JSON.stringify({
        type: "external_integration",
        data: { org_id: "1", entity: { _schema: "order" }, action_config: { component_id: "order-sync" } },
      }),
    });
    dirs.push(dir);
    const result = await runBinary(
      ["explain", "--config", "examples/soap-route/config.yaml", "--payload", join(dir, "order.json")],
      { cwd: REPO_DIR, env: SECRETS },
    );
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(
      `crm-customer  component_id: wants "crm-customer-sync" or "erp-contract-sync", the payload has "order-sync"`,
    );
  });
});
