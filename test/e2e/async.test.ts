import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { BINARY, type GatewayProcess, runBinary, spawnGateway, tempDir, waitFor } from "../support/gateway.ts";
import { testPostgres } from "../support/postgres.ts";
import { closedPort, type RecordingServer, startRecordingServer } from "../support/recording-server.ts";
import { fixturePayload, generateTestKeyPair, signedHeaders, uniqueWebhookId } from "../support/signing.ts";

/**
 * Durable async delivery through the compiled binary: a real SQLite store, a legacy HTTP system that
 * fails on command, and a local server standing in for epilot's resume and entity endpoints.
 */
const keys = generateTestKeyPair();
/** The PostgreSQL store needs a shared key; the SQLite config ignores the variable. */
const STORE_ENV = { STORE_KEY: Buffer.alloc(32, 13).toString("base64") };
const SQLITE_STORE = "store: { path: ./data/actiongate.db }";

/** The store lines of the config for the store kind under test (a fresh PostgreSQL database each time). */
async function storeFor(kind: "sqlite" | "postgres"): Promise<string> {
  if (kind === "sqlite") return SQLITE_STORE;
  const url = await (await testPostgres()).createDatabase("async");
  return `store: { url: "${url}", encryption_key: "\${STORE_KEY}", lease: 3s }`;
}

/** A JWT-shaped x-epilot-token (epilot's is one); only its `exp` claim is read by the gateway. */
function epilotToken(expiresInSeconds: number): string {
  const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
  return `${encode({ alg: "RS256", typ: "JWT" })}.${encode({ sub: "epilot", exp: Math.floor(Date.now() / 1000) + expiresInSeconds })}.signature-not-checked`;
}

interface Setup {
  dir: string;
  legacy: RecordingServer;
  epilot: RecordingServer;
  config: string;
}

async function setup(
  options: {
    legacyUrl?: string;
    maxAttempts?: number;
    callbackHosts?: string[];
    extraRoutes?: string;
    store?: string;
  } = {},
): Promise<Setup> {
  const legacy = await startRecordingServer();
  const epilot = await startRecordingServer({ status: 200, body: {} });
  const dir = tempDir();
  mkdirSync(join(dir, "data"));
  const hosts = options.callbackHosts ?? [`127.0.0.1:${epilot.port}`];
  const config = `
server: { host: 127.0.0.1, port: 0, shutdown_timeout: 3s }
verification: { public_key: "${keys.whpk}" }
${options.store ?? SQLITE_STORE}
epilot:
  callback_hosts: ${JSON.stringify(hosts)}
  entity_api_url: ${epilot.url}
  timeout: 2s
routes:
  - name: erp-async
    transform: '{ "contract": data.entity.contract_number }'
    target: { type: http, url: "${options.legacyUrl ?? legacy.url}/api/contracts", timeout: 1s }
    delivery:
      mode: async
      max_attempts: ${options.maxAttempts ?? 10}
      backoff: { initial: 50ms, max: 200ms }
      concurrency: 4
    response:
      write_back: '{ "erp_id": body.erp_id, "erp_status": status }'
${options.extraRoutes ?? ""}`;
  return { dir, legacy, epilot, config };
}

function payloadFor(epilotUrl: string, mutate?: (payload: Record<string, any>) => void) {
  const payload = fixturePayload();
  payload.data.callback_post_url = `${epilotUrl}/v1/automation/public/executions:resume`;
  mutate?.(payload);
  return payload;
}

async function send(
  gatewayUrl: string,
  route: string,
  payload: object,
  extra: Record<string, string> = {},
): Promise<Response> {
  const text = JSON.stringify(payload);
  return fetch(`${gatewayUrl}/actions/${route}`, {
    method: "POST",
    body: text,
    headers: { ...signedHeaders(text, { privateKey: keys.privateKey }), "x-epilot-token": epilotToken(600), ...extra },
  });
}

async function start(s: Setup, file = "config.yaml"): Promise<GatewayProcess> {
  await Bun.write(join(s.dir, file), s.config);
  return spawnGateway(["--config", file], { cwd: s.dir, env: STORE_ENV });
}

beforeAll(() => {
  if (!existsSync(BINARY)) throw new Error(`${BINARY} is missing: run \`npm run build\``);
});

// The core cases run on both durable stores: same config, same answers, same deliveries.
describe.each(["sqlite", "postgres"] as const)("async delivery (%s store)", (kind) => {
  let s: Setup;
  let gateway: GatewayProcess;

  beforeAll(async () => {
    s = await setup({ store: await storeFor(kind) });
    gateway = await start(s);
  }, 120_000);

  afterAll(async () => {
    await gateway.stop();
    await s.legacy.close();
    await s.epilot.close();
  });

  test("202 once stored; retried through 503s; then write-back onto the entity; then the workflow resumes", async () => {
    let calls = 0;
    s.legacy.respondWith(() =>
      ++calls <= 2 ? { status: 503, body: "maintenance" } : { status: 200, body: { erp_id: "ERP-77" } },
    );
    const token = epilotToken(600);
    const response = await send(gateway.url, "erp-async", payloadFor(s.epilot.url), { "x-epilot-token": token });
    expect(response.status).toBe(202);
    expect(await response.json()).toEqual({});

    await waitFor(() => s.epilot.requests.some((r) => r.url.includes("executions:resume")), 10_000, "resume call");
    expect(s.legacy.requests).toHaveLength(3);
    expect(new Set(s.legacy.requests.map((r) => r.headers["idempotency-key"])).size).toBe(1);
    expect(s.legacy.requests[2]!.json).toEqual({ contract: "2026-0042" });

    const patch = s.epilot.requests.find((r) => r.method === "PATCH")!;
    expect(patch.url).toBe("/v1/entity/contract/3f2c1a90-5d7e-4b8a-9c11-2f6e8d0b7a41");
    expect(patch.headers.authorization).toBe(`Bearer ${token}`);
    expect(patch.json).toEqual({ erp_id: "ERP-77", erp_status: 200 });

    const resume = s.epilot.requests.find((r) => r.url.includes("executions:resume"))!;
    expect(resume.method).toBe("POST");
    expect(resume.json).toEqual({ resume_token: fixturePayload().data.resume_token });
    // Write-back first, so the resumed workflow sees the written fields.
    expect(s.epilot.requests.indexOf(patch)).toBeLessThan(s.epilot.requests.indexOf(resume));

    await waitFor(() => gateway.logs().some((l) => l.msg === "event done"), 5_000, "event done log");
    const log = gateway.stdout();
    expect(log).not.toContain(token);
    expect(log).not.toContain(fixturePayload().data.resume_token);
  });

  test("a 400 from the target goes to the dead letters at once, and dlq replay delivers it", async () => {
    s.legacy.requests.length = 0;
    s.legacy.respondWith({ status: 400, body: { error: "unknown company code" } });
    const id = uniqueWebhookId();
    const payload = payloadFor(s.epilot.url);
    const text = JSON.stringify(payload);
    const response = await fetch(`${gateway.url}/actions/erp-async`, {
      method: "POST",
      body: text,
      headers: { ...signedHeaders(text, { privateKey: keys.privateKey, id }), "x-epilot-token": epilotToken(600) },
    });
    expect(response.status).toBe(202);
    await waitFor(
      () => gateway.logs().some((l) => l.msg === "dead letter" && l.webhook_id === id),
      5_000,
      "dead letter",
    );
    expect(s.legacy.requests).toHaveLength(1);

    const list = await runBinary(["dlq", "list", "--config", "config.yaml"], { cwd: s.dir, env: STORE_ENV });
    expect(list.code).toBe(0);
    expect(list.stdout).toContain(id);
    const show = await runBinary(["dlq", "show", id, "--config", "config.yaml"], { cwd: s.dir, env: STORE_ENV });
    expect(show.code).toBe(0);
    expect(show.stdout).toContain("HTTP 400");
    expect(show.stdout).not.toContain("signature-not-checked");

    s.legacy.respondWith({ status: 200, body: { erp_id: "ERP-78" } });
    const replay = await runBinary(["dlq", "replay", id, "--config", "config.yaml"], { cwd: s.dir, env: STORE_ENV });
    expect(replay.code).toBe(0);
    await waitFor(() => s.legacy.requests.length === 2, 5_000, "replayed delivery");
    expect(s.legacy.requests[1]!.headers["idempotency-key"]).toBe(id);
    const after = await runBinary(["dlq", "list", "--config", "config.yaml"], { cwd: s.dir, env: STORE_ENV });
    expect(after.stdout).not.toContain(id);
  });

  test("a callback URL outside epilot.callback_hosts is never called", async () => {
    const stranger = await startRecordingServer();
    try {
      s.legacy.respondWith({ status: 200, body: { erp_id: "ERP-79" } });
      const id = uniqueWebhookId();
      const payload = payloadFor(stranger.url);
      const text = JSON.stringify(payload);
      await fetch(`${gateway.url}/actions/erp-async`, {
        method: "POST",
        body: text,
        headers: { ...signedHeaders(text, { privateKey: keys.privateKey, id }), "x-epilot-token": epilotToken(600) },
      });
      await waitFor(
        () => gateway.logs().some((l) => l.msg === "dead letter" && l.webhook_id === id),
        5_000,
        "refused resume",
      );
      expect(stranger.requests).toHaveLength(0);
      const line = gateway.logs().find((l) => l.msg === "dead letter" && l.webhook_id === id)!;
      expect(line.stage).toBe("resume");
      expect(line.reason).toMatch(/not in epilot\.callback_hosts|not allowed/);
    } finally {
      await stranger.close();
    }
  });

  test("an expired x-epilot-token is a clear dead-letter reason, and the entity API is not called", async () => {
    s.epilot.requests.length = 0;
    s.legacy.respondWith({ status: 200, body: { erp_id: "ERP-80" } });
    const id = uniqueWebhookId();
    const text = JSON.stringify(payloadFor(s.epilot.url));
    await fetch(`${gateway.url}/actions/erp-async`, {
      method: "POST",
      body: text,
      headers: { ...signedHeaders(text, { privateKey: keys.privateKey, id }), "x-epilot-token": epilotToken(-5) },
    });
    await waitFor(
      () => gateway.logs().some((l) => l.msg === "dead letter" && l.webhook_id === id),
      5_000,
      "expired token dead letter",
    );
    const line = gateway.logs().find((l) => l.msg === "dead letter" && l.webhook_id === id)!;
    expect(line.reason).toContain("x-epilot-token expired");
    expect(s.epilot.requests.filter((r) => r.method === "PATCH")).toHaveLength(0);
  });
});

describe("durability", () => {
  test("kill -9 with 30 events pending: after a restart all 30 are delivered", async () => {
    const targetPort = await closedPort();
    const s = await setup({ legacyUrl: `http://127.0.0.1:${targetPort}` });
    s.config = s.config.replace('write_back: \'{ "erp_id": body.erp_id, "erp_status": status }\'', "transform: '{}'");
    let gateway = await start(s);
    const ids: string[] = [];
    try {
      const answers = await Promise.all(
        Array.from({ length: 30 }, async (_, i) => {
          const payload = payloadFor(s.epilot.url, (p) => {
            p.data.entity.contract_number = `C-${i}`;
            delete p.data.callback_post_url;
            delete p.data.resume_token;
          });
          const id = uniqueWebhookId();
          ids.push(id);
          const text = JSON.stringify(payload);
          const response = await fetch(`${gateway.url}/actions/erp-async`, {
            method: "POST",
            body: text,
            headers: signedHeaders(text, { privateKey: keys.privateKey, id }),
          });
          return response.status;
        }),
      );
      expect(answers).toEqual(Array(30).fill(202));
      gateway.child.kill("SIGKILL");
      await gateway.exited;

      // The legacy system comes back on the same port; the gateway restarts on the same store.
      const legacy = await startRecordingServerOn(targetPort);
      try {
        gateway = await start(s);
        await waitFor(
          () => new Set(legacy.requests.map((r) => r.headers["idempotency-key"])).size === 30,
          15_000,
          "30 deliveries",
        );
        expect(new Set(legacy.requests.map((r) => r.headers["idempotency-key"]))).toEqual(new Set(ids));
        expect(new Set(legacy.requests.map((r) => r.json.contract)).size).toBe(30);
      } finally {
        await legacy.close();
      }
    } finally {
      await gateway.stop();
      await s.legacy.close();
      await s.epilot.close();
    }
  }, 40_000);

  test("a webhook-id is refused even after a restart (persistent replay guard)", async () => {
    const s = await setup();
    let gateway = await start(s);
    try {
      const payload = payloadFor(s.epilot.url);
      const text = JSON.stringify(payload);
      const headers = signedHeaders(text, { privateKey: keys.privateKey });
      expect((await fetch(`${gateway.url}/actions/erp-async`, { method: "POST", body: text, headers })).status).toBe(
        202,
      );
      await gateway.stop();
      gateway = await start(s);
      const again = await fetch(`${gateway.url}/actions/erp-async`, { method: "POST", body: text, headers });
      expect(again.status).toBe(409);
    } finally {
      await gateway.stop();
      await s.legacy.close();
      await s.epilot.close();
    }
  });
});

describe("circuit breaker and sync follow-ups", () => {
  test("opens after consecutive failures (503 at once, target not called), then one probe closes it", async () => {
    const s = await setup({
      extraRoutes: `
  - name: erp-sync
    target: { type: http, url: "PLACEHOLDER/sync", timeout: 1s }
    delivery: { circuit_breaker: { failure_threshold: 2, cooldown: 400ms } }
`,
    });
    s.config = s.config.replace("PLACEHOLDER", s.legacy.url);
    const gateway = await start(s);
    try {
      s.legacy.respondWith({ status: 500, body: "down" });
      const plain = () => {
        const p = fixturePayload();
        delete p.data.callback_post_url;
        delete p.data.resume_token;
        return p;
      };
      expect((await send(gateway.url, "erp-sync", plain())).status).toBe(502);
      expect((await send(gateway.url, "erp-sync", plain())).status).toBe(502);
      const open = await send(gateway.url, "erp-sync", plain());
      expect(open.status).toBe(503);
      expect(((await open.json()) as any).error_output.error_reason).toContain("circuit breaker open");
      expect(s.legacy.requests).toHaveLength(2);

      s.legacy.respondWith({ status: 200, body: {} });
      await new Promise((resolve) => setTimeout(resolve, 450));
      expect((await send(gateway.url, "erp-sync", plain())).status).toBe(200);
      expect((await send(gateway.url, "erp-sync", plain())).status).toBe(200);
      expect(s.legacy.requests).toHaveLength(4);
      expect(
        gateway
          .logs()
          .filter((l) => l.msg === "circuit breaker")
          .map((l) => l.state),
      ).toEqual(["open", "half_open", "closed"]);
    } finally {
      await gateway.stop();
      await s.legacy.close();
      await s.epilot.close();
    }
  });

  test("a sync call that waits for a callback answers 200, then the workflow is resumed", async () => {
    const s = await setup({
      extraRoutes: `
  - name: erp-sync
    target: { type: http, url: "PLACEHOLDER/sync", timeout: 1s }
`,
    });
    s.config = s.config.replace("PLACEHOLDER", s.legacy.url);
    const gateway = await start(s);
    try {
      const response = await send(gateway.url, "erp-sync", payloadFor(s.epilot.url));
      expect(response.status).toBe(200);
      await waitFor(
        () => s.epilot.requests.some((r) => r.url.includes("executions:resume")),
        5_000,
        "resume after sync delivery",
      );
      expect(s.epilot.requests.filter((r) => r.method === "PATCH")).toHaveLength(0);
    } finally {
      await gateway.stop();
      await s.legacy.close();
      await s.epilot.close();
    }
  });
});

/** A recording server bound to a given port (the legacy system coming back up where it was). */
async function startRecordingServerOn(port: number): Promise<RecordingServer> {
  return startRecordingServer({ status: 200, body: { ok: true } }, port);
}
