import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { type GatewayProcess, runBinary, spawnGateway, tempDir, waitFor } from "../support/gateway.ts";
import { closedPort, type RecordingServer, startRecordingServer } from "../support/recording-server.ts";
import { fixturePayload, generateTestKeyPair, signedHeaders } from "../support/signing.ts";

/**
 * End-to-end: the compiled binary (dist/actiongate), run from a folder without node_modules,
 * against a real legacy HTTP server and a real key server on 127.0.0.1.
 */
const keys = generateTestKeyPair();
const packageVersion = (JSON.parse(readFileSync(join(import.meta.dir, "..", "..", "package.json"), "utf8")) as any)
  .version;

/** Serves epilot's public-key document; can be started late to simulate a CDN that is unreachable at first. */
async function startKeyServer(
  port = 0,
): Promise<{ url: string; port: number; hits: () => number; close(): Promise<void> }> {
  let hits = 0;
  const server: Server = createServer((_, res) => {
    hits++;
    res.writeHead(200, { "content-type": "application/json" });
    res.end(keys.keyDocument);
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  const bound = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${bound}/v1/.well-known/public-key`,
    port: bound,
    hits: () => hits,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function configYaml(keyUrl: string, legacyUrl: string, extra = ""): string {
  return `
server: { host: 127.0.0.1, port: 0, max_body_size: 32kb, shutdown_timeout: 5s }
verification:
  public_key_url: ${keyUrl}
routes:
  - name: erp-contract
    match: { component_id: erp-contract-sync }
    strip: [data.app_options.api_key]
    transform: '{ "contract": data.entity.contract_number, "status": data.entity.status }'
    target:
      type: http
      url: ${legacyUrl}/api/contracts/{{ data.entity.contract_number }}
      headers: { Authorization: "Bearer \${ERP_TOKEN}" }
      timeout: 1s
${extra}`;
}

function signedCall(url: string, payload = fixturePayload(), extraHeaders: Record<string, string> = {}) {
  const text = JSON.stringify(payload);
  return fetch(url, {
    method: "POST",
    body: text,
    headers: { ...signedHeaders(text, { privateKey: keys.privateKey }), ...extraHeaders },
  });
}

beforeAll(() => {
  if (!existsSync(join(import.meta.dir, "..", "..", "dist", "actiongate")))
    throw new Error("dist/actiongate is missing: run `npm run build` (npm test does it first)");
});

describe("command line", () => {
  const cwd = tempDir();

  test("--help prints usage and exits 0", async () => {
    const result = await runBinary(["--help"], { cwd });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("actiongate validate [--config <file>]");
  });

  test("--version prints the package version", async () => {
    const result = await runBinary(["--version"], { cwd });
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toBe(`actiongate ${packageVersion}`);
  });

  test("an unknown command or option exits 2 with a clear message", async () => {
    const command = await runBinary(["deploy"], { cwd });
    expect(command.code).toBe(2);
    expect(command.stderr).toContain('unknown command "deploy"');
    const option = await runBinary(["serve", "--port", "1"], { cwd });
    expect(option.code).toBe(2);
    expect(option.stderr).toContain("Unknown option '--port'");
  });

  test("validate accepts a good config with a summary: the routes, and what is trusted", async () => {
    const dir = tempDir({ "config.yaml": configYaml("http://127.0.0.1:1/key", "http://127.0.0.1:2") });
    const result = await runBinary(["validate", "--config", "config.yaml"], { cwd: dir, env: { ERP_TOKEN: "t" } });
    expect(result.code).toBe(0);
    expect(result.stdout.trim().split("\n")).toEqual([
      "config.yaml: valid, 1 route: erp-contract (http)",
      "config.yaml: trusts v1a (Ed25519) with the key fetched from http://127.0.0.1:1/key; not epilot's key (add public_key_url: epilot for calls from epilot)",
    ]);
  });

  test("validate lists every problem with file:line:col and key path, and exits 1", async () => {
    const dir = tempDir({
      "config.yaml": `server:
  port: eighty
routes:
  - name: erp
    transfrom: "x"
    transform: '{ "a": '
    target:
      type: http
      url: not-a-url
      timeout: 10 seconds
`,
    });
    const result = await runBinary(["validate", "--config", "config.yaml"], { cwd: dir });
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split("\n")).toEqual([
      "config.yaml:2:9 server.port: must be a number",
      'config.yaml:5:5 routes[0] (erp).transfrom: unknown key, did you mean "transform"?',
      'config.yaml:10:16 routes[0] (erp).target.timeout: must be a duration such as 500ms, 10s or 5m (got "10 seconds")',
    ]);
  });

  test("validate reports compile problems (JSONata, URL) once the schema holds", async () => {
    const dir = tempDir({
      "config.yaml": `routes:
  - name: erp
    transform: '{ "a": '
    target:
      type: http
      url: not-a-url
`,
    });
    const result = await runBinary(["validate", "--config", "config.yaml"], { cwd: dir });
    expect(result.code).toBe(1);
    const lines = result.stderr.trim().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toBe(
      'config.yaml:3:22 routes[0] (erp).transform: JSONata syntax error: Expected "}" before end of expression',
    );
    expect(lines[1]).toBe(
      'config.yaml:6:12 routes[0] (erp).target.url: must be an absolute http(s) URL (got "not-a-url")',
    );
  });

  test("a missing environment variable is named", async () => {
    const dir = tempDir({ "config.yaml": configYaml("http://127.0.0.1:1/key", "http://127.0.0.1:2") });
    const result = await runBinary(["validate", "-c", "config.yaml"], { cwd: dir });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      "config.yaml:13:33 routes[0] (erp-contract).target.headers.Authorization: environment variable ERP_TOKEN is not set",
    );
  });

  test("a .env or bunfig.toml in the working folder is not read: no preload runs, no variable is set", async () => {
    const dir = tempDir({
      "config.yaml": configYaml("http://127.0.0.1:1/key", "http://127.0.0.1:2"),
      ".env": "ERP_TOKEN=from-a-dotenv-file\n",
      "bunfig.toml": 'preload = ["./planted.js"]\n',
      "planted.js": 'console.error("PLANTED PRELOAD RAN");\n',
    });
    const launcher = join(import.meta.dir, "..", "..", "scripts", "npx", "actiongate.mjs");
    for (const result of [
      await runBinary(["validate", "-c", "config.yaml"], { cwd: dir }),
      // `npx actiongate` running the source (no binary) reads neither either.
      await runBinary([launcher, "validate", "-c", "config.yaml"], {
        cwd: dir,
        executable: "node",
        env: { ACTIONGATE_FROM_SOURCE: "1" },
      }),
    ]) {
      expect(result.stderr).not.toContain("PLANTED PRELOAD RAN");
      // ERP_TOKEN comes from the environment only: the .env beside the config is not the environment.
      expect(result.code).toBe(1);
      expect(result.stderr).toContain("environment variable ERP_TOKEN is not set");
    }
  });

  test("a missing config file exits 1", async () => {
    const result = await runBinary(["validate", "--config", "nope.yaml"], { cwd });
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toBe("nope.yaml: file not found");
  });

  test("serve refuses a broken config with every problem and exits 1 without listening", async () => {
    const dir = tempDir({ "config.yaml": "routes: []\nbogus: 1\n" });
    const result = await runBinary(["--config", "config.yaml"], { cwd: dir });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("config.yaml:1:9 routes: must list at least one route");
    expect(result.stderr).toContain("config.yaml:2:1 bogus: unknown key");
    expect(result.stdout).not.toContain("listening");
  });

  test("ACTIONGATE_CONFIG names the config file", async () => {
    const dir = tempDir({ "prod.yaml": configYaml("http://127.0.0.1:1/key", "http://127.0.0.1:2") });
    const result = await runBinary(["validate"], { cwd: dir, env: { ACTIONGATE_CONFIG: "prod.yaml", ERP_TOKEN: "t" } });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("prod.yaml: valid");
  });
});

describe("serving", () => {
  let legacy: RecordingServer;
  let keyServer: Awaited<ReturnType<typeof startKeyServer>>;
  let gateway: GatewayProcess;

  beforeAll(async () => {
    legacy = await startRecordingServer();
    keyServer = await startKeyServer();
    const dir = tempDir({ "config.yaml": configYaml(keyServer.url, legacy.url) });
    gateway = await spawnGateway(["serve", "--config", "config.yaml"], {
      cwd: dir,
      env: { ERP_TOKEN: "erp-secret-token" },
    });
    await waitFor(() => gateway.stdout().includes("verification key loaded"), 5_000, "key load");
  });

  afterAll(async () => {
    await gateway.stop();
    await legacy.close();
    await keyServer.close();
  });

  test("a signed call is verified, transformed and delivered; epilot gets 200 {}", async () => {
    legacy.requests.length = 0;
    const response = await signedCall(`${gateway.url}/actions/erp-contract`, fixturePayload(), {
      "x-epilot-token": "epilot-short-lived-token",
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({});
    expect(legacy.requests).toHaveLength(1);
    expect(legacy.requests[0]!.url).toBe("/api/contracts/2026-0042");
    expect(legacy.requests[0]!.json).toEqual({ contract: "2026-0042", status: "approved" });
    expect(legacy.requests[0]!.headers.authorization).toBe("Bearer erp-secret-token");
    expect(legacy.requests[0]!.headers["x-epilot-token"]).toBeUndefined();
  });

  test("bad inputs get their status codes and nothing is forwarded", async () => {
    legacy.requests.length = 0;
    const url = `${gateway.url}/actions/erp-contract`;
    const unsigned = await fetch(url, { method: "POST", body: JSON.stringify(fixturePayload()) });
    expect(unsigned.status).toBe(401);
    const other = fixturePayload();
    other.data.entity.notes = "y".repeat(40 * 1024);
    expect((await signedCall(url, other)).status).toBe(413);
    const notJson = "not json";
    expect(
      (
        await fetch(url, {
          method: "POST",
          body: notJson,
          headers: signedHeaders(notJson, { privateKey: keys.privateKey }),
        })
      ).status,
    ).toBe(400);
    expect((await signedCall(`${gateway.url}/actions/unknown`)).status).toBe(404);
    expect(legacy.requests).toHaveLength(0);
  });

  test("a target failure and a slow target answer 502 and 504 in epilot's error shape", async () => {
    legacy.respondWith({ status: 500, body: "boom" });
    const failed = await signedCall(`${gateway.url}/actions/erp-contract`);
    expect(failed.status).toBe(502);
    expect(((await failed.json()) as any).error_output.error_code).toBe("CUSTOM_ACTION_ERROR");
    legacy.respondWith({ delayMs: 1_500 });
    const slow = await signedCall(`${gateway.url}/actions/erp-contract`);
    expect(slow.status).toBe(504);
    expect(((await slow.json()) as any).error_output.error_reason).toBe(
      "The target of route erp-contract did not answer within 1s",
    );
    legacy.respondWith({});
  });

  test("every call is one JSON log line, and no secret is in the log", async () => {
    // Log lines are written in batches after the answer, so give the last one a moment.
    await waitFor(() => gateway.logs().filter((line) => line.msg === "call").length >= 7, 2_000, "7 call log lines");
    const lines = gateway.logs().filter((line) => line.msg === "call");
    for (const line of lines) {
      expect(Object.keys(line)).toEqual(
        expect.arrayContaining(["time", "level", "msg", "outcome", "status", "duration_ms"]),
      );
    }
    expect(lines.map((line) => line.outcome)).toEqual(
      expect.arrayContaining([
        "delivered",
        "unauthorized",
        "too_large",
        "bad_request",
        "unknown_route",
        "target_failed",
        "target_timeout",
      ]),
    );
    const output = gateway.stdout() + gateway.stderr();
    for (const secret of [
      "epilot-short-lived-token",
      "erp-secret-token",
      "app-option-secret-value",
      "user-token-that-must-never-leave-the-gateway",
      "jane.doe@example.com",
    ]) {
      expect(output).not.toContain(secret);
    }
  });
});

describe("resilience", () => {
  test("starts without a reachable key URL, answers 503 until the key arrives, then heals by itself", async () => {
    const legacy = await startRecordingServer();
    const keyPort = await closedPort();
    const dir = tempDir({
      "config.yaml": configYaml(`http://127.0.0.1:${keyPort}/v1/.well-known/public-key`, legacy.url),
    });
    const gateway = await spawnGateway(["--config", "config.yaml"], { cwd: dir, env: { ERP_TOKEN: "t" } });
    try {
      await waitFor(() => gateway.stdout().includes("verification key fetch failed"), 5_000, "failed key fetch log");
      const early = await signedCall(`${gateway.url}/actions/erp-contract`);
      expect(early.status).toBe(503);
      expect(((await early.json()) as any).error_output.error_reason).toContain(
        "verification key is not available yet",
      );
      const keyServer = await startKeyServer(keyPort);
      try {
        await waitFor(() => gateway.stdout().includes("verification key loaded"), 10_000, "key load after retry");
        expect((await signedCall(`${gateway.url}/actions/erp-contract`)).status).toBe(200);
      } finally {
        await keyServer.close();
      }
    } finally {
      await gateway.stop();
      await legacy.close();
    }
  });

  test("SIGTERM during a slow call still answers it, then exits 0", async () => {
    const legacy = await startRecordingServer({ delayMs: 600 });
    const keyServer = await startKeyServer();
    const dir = tempDir({ "config.yaml": configYaml(keyServer.url, legacy.url) });
    const gateway = await spawnGateway(["--config", "config.yaml"], { cwd: dir, env: { ERP_TOKEN: "t" } });
    try {
      await waitFor(() => gateway.stdout().includes("verification key loaded"), 5_000, "key load");
      const inFlight = signedCall(`${gateway.url}/actions/erp-contract`);
      await waitFor(() => legacy.requests.length === 1, 5_000, "call to reach the legacy system");
      gateway.child.kill("SIGTERM");
      const response = await inFlight;
      expect(response.status).toBe(200);
      expect(await gateway.exited).toBe(0);
      expect(gateway.stdout()).toContain('"msg":"stopped"');
    } finally {
      await gateway.stop();
      await legacy.close();
      await keyServer.close();
    }
  });

  test("a port already in use is a clear error and exit 1", async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const port = (blocker.address() as AddressInfo).port;
    const dir = tempDir({
      "config.yaml": configYaml("http://127.0.0.1:1/key", "http://127.0.0.1:2").replace("port: 0", `port: ${port}`),
    });
    const result = await runBinary(["--config", "config.yaml"], { cwd: dir, env: { ERP_TOKEN: "t" } });
    blocker.close();
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`cannot listen on 127.0.0.1:${port}`);
  });
});
