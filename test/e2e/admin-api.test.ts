import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type GatewayProcess, runBinary, spawnGateway, tempDir, waitFor } from "../support/gateway.ts";
import { testPostgres } from "../support/postgres.ts";
import { type RecordingServer, startRecordingServer } from "../support/recording-server.ts";
import { fixturePayload, generateTestKeyPair, signedHeaders, uniqueWebhookId } from "../support/signing.ts";

/**
 * The admin API from the compiled binary: on PostgreSQL (list, show with the target's answer,
 * replay, and `dlq list --json` beside it), and with `server.workers: 2` on SQLite, where either
 * worker's admin API sees the shared store and a replay asked of worker 1 is delivered by worker 0.
 */
const TOKEN = "e2e-admin-token-0123456789abcdef";
const keys = generateTestKeyPair();
let legacy: RecordingServer;

beforeAll(async () => {
  legacy = await startRecordingServer();
});
afterAll(() => legacy.close());

async function signedCall(url: string, route: string, id: string): Promise<Response> {
  const payload = fixturePayload();
  delete payload.data.callback_post_url;
  delete payload.data.resume_token;
  const body = JSON.stringify(payload);
  return fetch(`${url}/actions/${route}`, {
    method: "POST",
    body,
    headers: { ...signedHeaders(body, { privateKey: keys.privateKey, id }), connection: "close" },
  });
}

const api = (admin: string, path: string, method = "GET") =>
  fetch(`${admin}/api/${path}`, { method, headers: { authorization: `Bearer ${TOKEN}` } });

/** Each worker's admin URL, from its `listening` line. */
function adminUrls(gateway: GatewayProcess): Map<number, string> {
  const urls = new Map<number, string>();
  for (const line of gateway.logs().filter((entry) => entry.msg === "listening")) {
    urls.set(line.worker ?? 0, `http://127.0.0.1:${line.admin_port}`);
  }
  return urls;
}

const route = (url: string) => `routes:
  - name: erp
    target: { type: http, url: "${url}/erp/{{ data.entity.contract_number }}", timeout: 2s }
    delivery: { mode: async, max_attempts: 1 }
`;

describe("admin API (binary, PostgreSQL store)", () => {
  let gateway: GatewayProcess;
  let cwd: string;
  let admin: string;
  const env = { STORE_KEY: Buffer.alloc(32, 4).toString("base64") };

  beforeAll(async () => {
    const url = await (await testPostgres()).createDatabase("admin_e2e");
    cwd = tempDir({
      "config.yaml": `
server: { host: 127.0.0.1, port: 0, shutdown_timeout: 2s }
admin: { host: 127.0.0.1, port: 0, token: "${TOKEN}" }
verification: { public_key: ${JSON.stringify(keys.whpk)} }
store: { url: "${url}", encryption_key: "\${STORE_KEY}" }
${route(legacy.url)}`,
    });
    gateway = await spawnGateway(["serve", "--config", "config.yaml"], { cwd, env });
    admin = adminUrls(gateway).get(0)!;
  });
  afterAll(() => gateway.stop());

  test("a refused event: listed, shown with the target's answer, replayed to the legacy system", async () => {
    legacy.respondWith({ status: 400, body: { error: "contract number unknown" } });
    const id = uniqueWebhookId();
    expect((await signedCall(gateway.url, "erp", id)).status).toBe(202);
    await waitFor(async () => (await api(admin, `dead-letters/${id}`)).status === 200, 10_000, "the dead letter");

    const list = (await (await api(admin, "dead-letters?route=erp")).json()) as any;
    expect(list.dead_letters.map((letter: any) => letter.id)).toContain(id);
    const letter = (await (await api(admin, `dead-letters/${id}`)).json()) as any;
    expect(letter.history[0]).toMatchObject({
      status: 400,
      url: `${legacy.url}/erp/2026-0042`,
      answer: '{"error":"contract number unknown"}',
    });

    const cli = await runBinary(["dlq", "list", "--json", "--route", "erp", "--config", "config.yaml"], { cwd, env });
    expect(cli.code).toBe(0);
    expect((JSON.parse(cli.stdout) as any[]).map((entry) => entry.id)).toContain(id);

    legacy.respondWith({ status: 200, body: { ok: true } });
    const replay = await api(admin, `dead-letters/${id}/replay`, "POST");
    expect(replay.status).toBe(202);
    await waitFor(
      () =>
        legacy.requests.some(
          (request) =>
            request.headers["idempotency-key"] === id && request.url === "/erp/2026-0042" && request.method === "POST",
        ),
      10_000,
      "the replay at the legacy system",
    );
  }, 30_000);
});

describe("admin API (binary, server.workers: 2, SQLite)", () => {
  let gateway: GatewayProcess;

  beforeAll(async () => {
    const cwd = tempDir({
      "config.yaml": `
server: { host: 127.0.0.1, port: 0, workers: 2, shutdown_timeout: 2s }
admin: { host: 127.0.0.1, port: 0, token: "${TOKEN}" }
verification: { public_key: ${JSON.stringify(keys.whpk)} }
store: { path: ./data/store.db }
${route(legacy.url)}`,
    });
    gateway = await spawnGateway(["serve", "--config", "config.yaml"], { cwd });
    await waitFor(() => adminUrls(gateway).size === 2, 15_000, "both workers listening");
  }, 30_000);
  afterAll(() => gateway.stop());

  test("either worker's admin API sees the shared store; a replay asked of worker 1 is delivered", async () => {
    legacy.respondWith({ status: 400, body: { error: "no" } });
    const ids = [uniqueWebhookId(), uniqueWebhookId(), uniqueWebhookId()];
    for (const id of ids) expect((await signedCall(gateway.url, "erp", id)).status).toBe(202);
    const urls = adminUrls(gateway);
    const [first, second] = [urls.get(0)!, urls.get(1)!];
    expect(first).not.toBe(second);
    await waitFor(
      async () => ((await (await api(second, "dead-letters?route=erp")).json()) as any).total === ids.length,
      10_000,
      "the dead letters, seen by worker 1",
    );
    const fromFirst = (await (await api(first, "dead-letters?route=erp")).json()) as any;
    expect(fromFirst.dead_letters.map((letter: any) => letter.id).sort()).toEqual([...ids].sort());

    legacy.respondWith({ status: 200, body: { ok: true } });
    const replay = await fetch(`${second}/api/dead-letters/replay`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ route: "erp", all: true }),
    });
    expect(replay.status).toBe(202);
    expect(((await replay.json()) as any).replayed).toBe(ids.length);
    await waitFor(
      () =>
        ids.every((id) =>
          legacy.requests.some((request) => request.headers["idempotency-key"] === id && request.method === "POST"),
        ),
      10_000,
      "every replayed event at the legacy system",
    );
    // Worker 0 delivered them (only it runs the delivery loop), and worker 1's API says that one runs.
    const routes = (await (await api(second, "routes")).json()) as any;
    expect(routes.delivery.running).toBe(true);
  }, 30_000);
});
