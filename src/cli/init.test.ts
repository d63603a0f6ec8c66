import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { tempDir } from "../../test/support/gateway.ts";
import { startRecordingServer } from "../../test/support/recording-server.ts";
import { EXAMPLE_PAYLOAD_FILE } from "../../test/support/signing.ts";
import { loadConfigFile } from "../config/load.ts";
import { compileConfig, describeTrustedKeys } from "../gateway/compile.ts";
import { startGateway } from "../gateway/start.ts";
import { silentLogger } from "../log/logger.ts";
import { parseSigningKey, signWebhook } from "../verify/sign.ts";
import { verifySignature } from "../verify/signature.ts";
import { parseCliArguments, UsageError } from "./args.ts";
import { INIT_FILES, initCommand } from "./init.ts";

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function init(folder: string, cwd: string, command?: string) {
  let stdout = "";
  let stderr = "";
  const code = initCommand(
    { folder, cwd, ...(command ? { command } : {}) },
    { stdout: (text) => (stdout += text), stderr: (text) => (stderr += text) },
  );
  return { code, stdout, stderr };
}

function freshDir(): string {
  const dir = tempDir();
  dirs.push(dir);
  return dir;
}

describe("actiongate init", () => {
  test("writes config, key, payload, route test and .gitignore, and prints the three commands", () => {
    const cwd = freshDir();
    const result = init("my-gateway", cwd, "npx actiongate");
    expect(result.code).toBe(0);
    expect(result.stderr).toBe("");
    expect(result.stdout).toBe(`Wrote a starter gateway:
  my-gateway/config.yaml             one route, erp-contract, to an ERP at http://127.0.0.1:8081 (or $ERP_URL)
  my-gateway/signing-key             the secret half of a new key pair (mode 0600); config.yaml trusts its public half
  my-gateway/custom-action.json      a custom action call as epilot sends it (one that resumes no workflow)
  my-gateway/erp-contract.test.yaml  a route test: what the ERP receives for that call, and what epilot gets back
  my-gateway/.gitignore              keeps signing-key (and store files) out of git

Serve it (ERP_TOKEN is the token it sends the ERP as "Bearer \${ERP_TOKEN}"):
  ERP_TOKEN=test-token npx actiongate serve --config my-gateway/config.yaml
Send it the example call, signed as epilot signs, from a second terminal:
  npx actiongate send --config my-gateway/config.yaml --route erp-contract --payload my-gateway/custom-action.json --key my-gateway/signing-key
Test the route without a server or an ERP:
  npx actiongate test --config my-gateway/config.yaml
`);
    const folder = join(cwd, "my-gateway");
    expect(readFileSync(join(folder, ".gitignore"), "utf8").split("\n")).toContain("signing-key");
    // The example call, without what would make the gateway resume a workflow at epilot while one tries it.
    const example = JSON.parse(readFileSync(EXAMPLE_PAYLOAD_FILE, "utf8")) as { data: Record<string, any> };
    delete example.data.resume_token;
    delete example.data.callback_post_url;
    example.data.app_config.wait_for_callback = false;
    expect(JSON.parse(readFileSync(join(folder, INIT_FILES.payload), "utf8"))).toEqual(example);
  });

  test("the secret half is in a 0600 file and never printed; the config trusts its public half, and only it", async () => {
    const cwd = freshDir();
    const result = init(".", cwd);
    const secret = readFileSync(join(cwd, INIT_FILES.signingKey), "utf8").trim();
    expect(secret).toMatch(/^whsk_[A-Za-z0-9+/]{86}==$/);
    expect(statSync(join(cwd, INIT_FILES.signingKey)).mode & 0o777).toBe(0o600);
    expect(result.stdout).not.toContain(secret);
    expect(result.stdout).not.toContain(secret.slice(5, 30));
    expect(result.stdout).toContain("  ERP_TOKEN=test-token actiongate serve --config config.yaml\n");

    const loaded = loadConfigFile(join(cwd, INIT_FILES.config), { ERP_TOKEN: "test-token" });
    const compiled = compileConfig(loaded, { logger: silentLogger, userAgent: "t" });
    try {
      expect(compiled.verification.remoteKeySource).toBeUndefined();
      expect(describeTrustedKeys(compiled.verification.trusted)).toBe(
        "trusts v1a (Ed25519) with verification.public_key; not epilot's key (add public_key_url: epilot for calls from epilot)",
      );
      const body = Buffer.from('{"type":"external_integration"}');
      const headers = new Headers(signWebhook(body, { privateKey: parseSigningKey(secret) }));
      const verified = await verifySignature(
        { headers, body },
        { keySource: compiled.verification.keySource, toleranceMs: 60_000 },
      );
      expect(verified.ok).toBe(true);
    } finally {
      await compiled.close();
    }
  });

  test("two inits make two different key pairs", () => {
    const [a, b] = [freshDir(), freshDir()];
    init(".", a);
    init(".", b);
    expect(readFileSync(join(a, INIT_FILES.signingKey), "utf8")).not.toBe(
      readFileSync(join(b, INIT_FILES.signingKey), "utf8"),
    );
  });

  test("the route test is in the route-test format and matches the starter config", () => {
    const cwd = freshDir();
    init(".", cwd);
    const routeTest = parse(readFileSync(join(cwd, INIT_FILES.routeTest), "utf8")) as any;
    expect(routeTest.env).toEqual({ ERP_TOKEN: "test-token" });
    expect(routeTest.tests.map((one: any) => one.name)).toEqual([
      "an approved contract reaches the ERP",
      "a contract that is not approved yet is skipped, and nothing is sent",
    ]);
    const [reaches, skipped] = routeTest.tests;
    expect(reaches).toEqual({
      name: "an approved contract reaches the ERP",
      payload: "custom-action.json",
      route: "erp-contract",
      target_response: { status: 200, body: { id: "E-1" } },
      expect: {
        route: "erp-contract",
        request: {
          method: "POST",
          url: "http://127.0.0.1:8081/api/contracts/2026-0042",
          headers: { authorization: "Bearer test-token" },
          body: { contract: "2026-0042", status: "approved" },
        },
        answer: { status: 200, body: { erp_contract_id: "E-1" } },
      },
    });
    expect(skipped.set).toEqual({ "data.entity.status": "draft" });
    // Every key the config reads without a default is given by the test file's env.
    expect(() => loadConfigFile(join(cwd, INIT_FILES.config), routeTest.env)).not.toThrow();
    expect(() => loadConfigFile(join(cwd, INIT_FILES.config), {})).toThrow("environment variable ERP_TOKEN is not set");
  });

  test("the starter route test holds: each case run through the starter config gives what it expects", async () => {
    const cwd = freshDir();
    init(".", cwd);
    const routeTest = parse(readFileSync(join(cwd, INIT_FILES.routeTest), "utf8")) as any;
    const erp = await startRecordingServer();
    const loaded = loadConfigFile(join(cwd, INIT_FILES.config), { ...routeTest.env, ERP_URL: erp.url, PORT: "0" });
    const compiled = compileConfig(loaded, { logger: silentLogger, userAgent: "t" });
    const gateway = await startGateway(compiled, silentLogger, { userAgent: "t" });
    const secret = parseSigningKey(readFileSync(join(cwd, INIT_FILES.signingKey), "utf8"));
    try {
      for (const one of routeTest.tests) {
        const payload = JSON.parse(readFileSync(join(cwd, one.payload), "utf8")) as any;
        for (const [path, value] of Object.entries(one.set ?? {})) {
          const keys = path.split(".");
          let node: any = payload;
          for (const key of keys.slice(0, -1)) node = node[key];
          node[keys.at(-1)!] = value;
        }
        erp.respondWith(one.target_response ?? { status: 200, body: {} });
        const before = erp.requests.length;
        const body = JSON.stringify(payload);
        const answer = await fetch(`http://127.0.0.1:${gateway.port}/actions/${one.route ?? one.expect.route}`, {
          method: "POST",
          body,
          headers: { ...signWebhook(Buffer.from(body), { privateKey: secret }), "content-type": "application/json" },
        });
        expect({ name: one.name, status: answer.status, body: await answer.json() }).toEqual({
          name: one.name,
          status: one.expect.answer.status,
          body: one.expect.answer.body,
        });
        const sent = erp.requests.slice(before);
        if (!one.expect.request) {
          expect(sent).toEqual([]);
          continue;
        }
        expect(sent).toHaveLength(1);
        const expected = one.expect.request;
        // The stand-in ERP listens elsewhere than the config's default address; the rest is as written.
        expect(`http://127.0.0.1:8081${sent[0]!.url}`).toBe(expected.url);
        expect(sent[0]!.method).toBe(expected.method);
        expect(sent[0]!.json).toEqual(expected.body);
        for (const [name, value] of Object.entries(expected.headers))
          expect(sent[0]!.headers[name]).toBe(value as string);
      }
    } finally {
      await gateway.stop();
      await erp.close();
    }
  });

  test("refuses to write over existing files: exit 2, naming each, and nothing written", () => {
    const cwd = freshDir();
    mkdirSync(join(cwd, "gw"));
    writeFileSync(join(cwd, "gw", "config.yaml"), "mine\n");
    writeFileSync(join(cwd, "gw", "signing-key"), "mine too\n");
    const result = init("gw", cwd);
    expect(result).toEqual({
      code: 2,
      stdout: "",
      stderr:
        "actiongate: init writes nothing over existing files: gw/config.yaml, gw/signing-key (move them away, or init another folder)\n",
    });
    expect(readFileSync(join(cwd, "gw", "config.yaml"), "utf8")).toBe("mine\n");
    for (const name of [INIT_FILES.payload, INIT_FILES.routeTest, ".gitignore"])
      expect(() => statSync(join(cwd, "gw", name))).toThrow();
  });

  test("an existing .gitignore is kept as it is, and not listed", () => {
    const cwd = freshDir();
    writeFileSync(join(cwd, ".gitignore"), "node_modules/\n");
    const result = init(".", cwd);
    expect(result.code).toBe(0);
    expect(result.stdout).not.toContain(".gitignore");
    expect(readFileSync(join(cwd, ".gitignore"), "utf8")).toBe("node_modules/\n");
  });

  test("a file where the folder should be: exit 2, saying so", () => {
    const cwd = freshDir();
    writeFileSync(join(cwd, "gw"), "");
    expect(init("gw", cwd)).toEqual({
      code: 2,
      stdout: "",
      stderr: "actiongate: gw is a file, not a folder: init writes into a folder\n",
    });
  });

  test("a folder that cannot be created: exit 1, nothing left behind", () => {
    const cwd = freshDir();
    writeFileSync(join(cwd, "a-file"), "");
    const result = init("a-file/gw", cwd);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe("actiongate: cannot write the starter files in a-file/gw (ENOTDIR)\n");
  });
});

describe("parseCliArguments: init", () => {
  test("init takes one folder, or none", () => {
    expect(parseCliArguments(["init"], {})).toEqual({ command: "init", configFile: "config.yaml" });
    expect(parseCliArguments(["init", "my-gateway"], {})).toEqual({
      command: "init",
      configFile: "config.yaml",
      initFolder: "my-gateway",
    });
  });

  test("a second folder or --config are usage errors", () => {
    expect(() => parseCliArguments(["init", "a", "b"], {})).toThrow(new UsageError('unexpected argument "b"'));
    expect(() => parseCliArguments(["init", "--config", "x.yaml"], {})).toThrow(UsageError);
  });
});
