import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { type InProcessGateway, startInProcessGateway, waitFor } from "../../test/support/gateway.ts";
import { testPostgres } from "../../test/support/postgres.ts";
import { type RecordingServer, startRecordingServer } from "../../test/support/recording-server.ts";
import { fixturePayload, generateTestKeyPair, signedHeaders, uniqueWebhookId } from "../../test/support/signing.ts";
import { loadConfigText } from "../config/load.ts";
import { compileConfig } from "../gateway/compile.ts";
import { silentLogger } from "../log/logger.ts";

/**
 * The admin API of a real in-process gateway, on SQLite and on PostgreSQL: the token check, what a
 * failing async route leaves for the operator, replay, purge, and the events of a route that a
 * reload removed. Every answer is checked for what it must never hold.
 */
const TOKEN = "admin-token-0123456789abcdef";
const ERP_KEY = "erp-api-key-that-stays-secret";
const ENCRYPTION_KEY = Buffer.alloc(32, 7).toString("base64");
const keys = generateTestKeyPair();

let legacy: RecordingServer;
beforeAll(async () => {
  legacy = await startRecordingServer();
});
afterAll(() => legacy.close());

const stores = {
  sqlite: async () => "store: { path: ./data/store.db, synchronous: normal }",
  postgres: async () =>
    `store: { url: "${await (await testPostgres()).createDatabase("admin_api")}", encryption_key: "${ENCRYPTION_KEY}" }`,
};

function configYaml(store: string, options: { token?: string; routes?: string } = {}): string {
  const token = options.token === undefined ? `, token: "${TOKEN}"` : options.token;
  return `
server: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0${token} }
verification: { public_key: ${JSON.stringify(keys.whpk)} }
${store}
routes:
${
  options.routes ??
  `  - name: erp
    target:
      type: http
      url: "http://svc:pa55word@127.0.0.1:${legacy.port}/api/contracts/{{ data.entity.contract_number }}?api_key=${ERP_KEY}"
      timeout: 2s
    delivery: { mode: async, max_attempts: 2, backoff: { initial: 10ms, max: 10ms } }
  - name: crm
    target: { type: http, url: "http://127.0.0.1:${legacy.port}/crm", timeout: 2s }
`
}`;
}

/** A signed call as epilot makes it; without a callback, so that an async delivery is done once delivered. */
async function call(gateway: InProcessGateway, route: string, id = uniqueWebhookId()): Promise<Response> {
  const payload = fixturePayload();
  delete payload.data.callback_post_url;
  delete payload.data.resume_token;
  const body = JSON.stringify(payload);
  return fetch(`${gateway.url}/actions/${route}`, {
    method: "POST",
    body,
    headers: signedHeaders(body, { privateKey: keys.privateKey, id }),
  });
}

function api(gateway: InProcessGateway, path: string, init: RequestInit & { token?: string | null } = {}) {
  const { token = TOKEN, ...rest } = init;
  return fetch(`${gateway.adminUrl}/api/${path}`, {
    ...rest,
    headers: {
      ...(token === null ? {} : { authorization: `Bearer ${token}` }),
      ...(rest.body !== undefined ? { "content-type": "application/json" } : {}),
    },
  });
}

async function json(response: Response): Promise<any> {
  const text = await response.text();
  // No answer of the admin API may hold the admin token, the target's credentials or the payload's secrets.
  for (const secret of [TOKEN, ERP_KEY, "pa55word", "app-option-secret-value", "user-token-that-must-never"]) {
    expect(text).not.toContain(secret);
  }
  return JSON.parse(text);
}

const waitForDeadLetter = async (gateway: InProcessGateway, id: string) =>
  waitFor(
    async () => (await api(gateway, `dead-letters/${encodeURIComponent(id)}`)).status === 200,
    10_000,
    `dead letter ${id}`,
  );

for (const [kind, storeLine] of Object.entries(stores)) {
  describe(`admin API (${kind} store)`, () => {
    let gateway: InProcessGateway;
    beforeAll(async () => {
      gateway = await startInProcessGateway(configYaml(await storeLine()));
    });
    afterAll(() => gateway.stop());
    afterEach(() => legacy.respondWith({}));

    test("without the token, or with another, every /api path and method gets one and the same 401", async () => {
      const probes: [string, string][] = [
        ["GET", "routes"],
        ["GET", "dead-letters/unknown-id"],
        ["POST", "dead-letters/unknown-id/replay"],
        ["DELETE", "dead-letters/unknown-id"],
        ["POST", "dead-letters/replay"],
        ["GET", "no-such-endpoint"],
        ["PUT", "calls"],
      ];
      const answers = new Set<string>();
      for (const [method, path] of probes) {
        for (const token of [null, "wrong-token-0123456789", `${TOKEN}x`, TOKEN.slice(0, -1)]) {
          const response = await api(gateway, path, { method, token });
          answers.add(
            JSON.stringify({
              status: response.status,
              body: await response.json(),
              challenge: response.headers.get("www-authenticate"),
            }),
          );
        }
      }
      expect([...answers].map((answer) => JSON.parse(answer))).toEqual([
        {
          status: 401,
          body: {
            error_output: {
              error_code: "CUSTOM_ACTION_ERROR",
              error_reason: "The admin API needs Authorization: Bearer <admin.token>",
              error_info: { outcome: "unauthorized" },
            },
          },
          challenge: 'Bearer realm="actiongate admin"',
        },
      ]);
      // A cookie or a token in the query is not a credential.
      const cookie = await fetch(`${gateway.adminUrl}/api/routes?token=${TOKEN}`, {
        headers: { cookie: `token=${TOKEN}` },
      });
      expect(cookie.status).toBe(401);
      // With the token, an unknown path is a 404 in the same shape.
      const unknown = await api(gateway, "no-such-endpoint");
      expect(unknown.status).toBe(404);
      expect((await json(unknown)).error_output.error_info.outcome).toBe("not_found");
    });

    test("a failing async call: the dead letter keeps the target's answer (redacted) and the URL (credentials hidden); epilot's answer names no host", async () => {
      legacy.respondWith({ status: 400, body: { error: "contract number unknown", api_key: "echoed-key" } });
      const id = uniqueWebhookId();
      const accepted = await call(gateway, "erp", id);
      expect(accepted.status).toBe(202);
      await waitForDeadLetter(gateway, id);

      const letter = await json(await api(gateway, `dead-letters/${id}`));
      expect(letter).toMatchObject({
        id,
        webhook_id: id,
        route: "erp",
        route_configured: true,
        stage: "deliver",
        attempts: 1,
        reason: "the target refused the event: target answered HTTP 400",
        last_error: "target answered HTTP 400",
      });
      expect(letter.history).toEqual([
        {
          time: expect.any(String),
          stage: "deliver",
          outcome: "target_failed",
          status: 400,
          url: `http://svc:***@127.0.0.1:${legacy.port}/api/contracts/2026-0042?api_key=***`,
          answer: '{"error":"contract number unknown","api_key":"[redacted]"}',
          reason: "target answered HTTP 400",
        },
      ]);
      const list = await json(await api(gateway, "dead-letters?route=erp"));
      expect(list.dead_letters.find((entry: any) => entry.id === id)).toMatchObject({
        id,
        route: "erp",
        last_error: "target answered HTTP 400",
        last_status: 400,
      });
      // The log names the URL too (credentials hidden); nothing of it reaches epilot.
      const deadLine = gateway.logs.find((line) => line.msg === "dead letter" && line.webhook_id === id);
      expect(deadLine?.target_url).toBe(letter.history[0].url);

      legacy.respondWith({ status: 502, body: "upstream down" });
      const sync = await call(gateway, "crm");
      const syncText = await sync.text();
      expect(sync.status).toBe(502);
      expect(syncText).not.toContain("127.0.0.1");
      expect(syncText).not.toContain(String(legacy.port));
    });

    test("/api/routes shows each route's target (credentials hidden), mode, breaker, outbox, dead letters and recent outcomes", async () => {
      legacy.respondWith({ status: 400, body: { error: "no" } });
      const id = uniqueWebhookId();
      await call(gateway, "erp", id);
      await waitForDeadLetter(gateway, id);
      legacy.respondWith({});
      await call(gateway, "crm");
      const { routes, unconfigured, delivery } = await json(await api(gateway, "routes"));
      const erp = routes.find((route: any) => route.name === "erp");
      expect(erp).toMatchObject({
        name: "erp",
        source: "custom_action",
        target: {
          type: "http",
          url: `http://svc:***@127.0.0.1:${legacy.port}/api/contracts/{{ data.entity.contract_number }}?api_key=***`,
        },
        mode: "async",
        max_attempts: 2,
        breaker: { state: "closed" },
        rate_limit: null,
      });
      // (Not expect.any() inside toMatchObject: Bun's matcher writes into the object it reads.)
      expect(erp.outbox_depth).toBe(0);
      expect(erp.dead_letters).toBeGreaterThan(0);
      expect(erp.recent_calls.accepted).toBeGreaterThan(0);
      expect(erp.deliveries.dead_lettered).toBeGreaterThan(0);
      expect(routes.find((route: any) => route.name === "crm").recent_calls.delivered).toBeGreaterThan(0);
      expect(unconfigured).toEqual([]);
      expect(delivery.running).toBe(true);
    });

    test("/api/calls lists the newest calls first, filtered by route, outcome and limit", async () => {
      const ids = [uniqueWebhookId(), uniqueWebhookId()];
      for (const id of ids) expect((await call(gateway, "crm", id)).status).toBe(200);
      const { calls, capacity } = await json(await api(gateway, "calls?route=crm&outcome=delivered&limit=2"));
      expect(capacity).toBe(1000);
      expect(calls.map((entry: any) => entry.webhook_id)).toEqual([ids[1], ids[0]]);
      expect(calls[0]).toEqual({
        time: expect.any(String),
        route: "crm",
        webhook_id: ids[1],
        outcome: "delivered",
        status: 200,
        duration_ms: expect.any(Number),
        target_status: 200,
      });
      for (const bad of ["0", "1001", "ten", "-1"]) {
        const response = await api(gateway, `calls?limit=${bad}`);
        expect(response.status).toBe(400);
        expect(((await response.json()) as any).error_output.error_reason).toBe(
          "limit must be a whole number from 1 to 1000",
        );
      }
    });

    test("replay one: 202, and the legacy system receives it; an unknown id is 404; purge removes one", async () => {
      legacy.respondWith({ status: 400, body: { error: "contract number unknown" } });
      const [first, second] = [uniqueWebhookId(), uniqueWebhookId()];
      await call(gateway, "erp", first);
      await call(gateway, "erp", second);
      await waitForDeadLetter(gateway, first);
      await waitForDeadLetter(gateway, second);

      legacy.respondWith({ status: 200, body: { ok: true } });
      const before = legacy.requests.length;
      const replay = await api(gateway, `dead-letters/${first}/replay`, { method: "POST" });
      expect({ status: replay.status, body: await json(replay) }).toEqual({ status: 202, body: { replayed: 1 } });
      await waitFor(
        () => legacy.requests.slice(before).some((request) => request.headers["idempotency-key"] === first),
        5_000,
        "the replayed event at the legacy system",
      );
      expect((await api(gateway, `dead-letters/${first}`)).status).toBe(404);

      const again = await api(gateway, `dead-letters/${first}/replay`, { method: "POST" });
      expect(again.status).toBe(404);
      expect((await json(again)).error_output.error_reason).toBe(`No dead letter with id "${first}"`);

      const purge = await api(gateway, `dead-letters/${second}`, { method: "DELETE" });
      expect({ status: purge.status, body: await json(purge) }).toEqual({ status: 200, body: { purged: 1 } });
      expect((await api(gateway, `dead-letters/${second}`, { method: "DELETE" })).status).toBe(404);
    });

    test("bulk replay: every dead letter the filter selects, in batches; bad requests are 400", async () => {
      legacy.respondWith({ status: 400, body: { error: "no" } });
      const ids = [uniqueWebhookId(), uniqueWebhookId(), uniqueWebhookId()];
      for (const id of ids) await call(gateway, "erp", id);
      for (const id of ids) await waitForDeadLetter(gateway, id);
      legacy.respondWith({ status: 200, body: { ok: true } });

      for (const [body, reason] of [
        [{ route: "erp" }, 'a bulk replay replays every dead letter its filter selects: say so with "all": true'],
        [{ all: true, older_than: "soon" }, 'older_than must be a duration such as 30m, 12h or 7d (got "soon")'],
        [{ all: true, routes: ["erp"] }, 'unknown key "routes"'],
        [[1, 2], "the body must be a JSON object"],
      ] as const) {
        const response = await api(gateway, "dead-letters/replay", { method: "POST", body: JSON.stringify(body) });
        expect(response.status).toBe(400);
        expect(((await response.json()) as any).error_output.error_reason).toStartWith(reason);
      }
      const notJson = await api(gateway, "dead-letters/replay", { method: "POST", body: "{" });
      expect(notJson.status).toBe(400);

      const response = await api(gateway, "dead-letters/replay", {
        method: "POST",
        body: JSON.stringify({ route: "erp", reason: "HTTP 400", all: true }),
      });
      expect(response.status).toBe(202);
      const result = await json(response);
      expect(result.replayed).toBeGreaterThanOrEqual(3);
      expect(result).toMatchObject({ batches: 1, skipped: {} });
      for (const id of ids) {
        await waitFor(
          () =>
            legacy.requests.some(
              (request) => request.headers["idempotency-key"] === id && request.url.includes("2026-0042"),
            ),
          5_000,
          `replayed ${id}`,
        );
      }
      expect((await json(await api(gateway, "dead-letters?route=erp"))).total).toBe(0);
    });

    test("a route removed by a reload: its dead letter is 409 to replay, its waiting events are listed and can be moved to the dead letters", async () => {
      legacy.respondWith({ status: 400, body: { error: "no" } });
      const deadId = uniqueWebhookId();
      await call(gateway, "erp", deadId);
      await waitForDeadLetter(gateway, deadId);
      // Events of a route that a reload removed (the store still holds them).
      const store = gateway.gateway.store;
      await store.outbox.add({ id: "orphan-1", route: "gone", stage: "deliver", data: "{}", createdAt: Date.now() });
      await store.outbox.add({ id: "orphan-2", route: "gone", stage: "deliver", data: "{}", createdAt: Date.now() });

      const current = gateway.gateway.config;
      const onlyCrm = `  - name: crm\n    target: { type: http, url: "http://127.0.0.1:${legacy.port}/crm", timeout: 2s }\n`;
      const yaml = configYaml(await storeLine(), { routes: onlyCrm });
      const reloaded = compileConfig(loadConfigText(gateway.file, yaml, {}), {
        logger: silentLogger,
        userAgent: "actiongate/test",
      });
      gateway.gateway.replaceConfig({ ...reloaded, source: { ...reloaded.source, store: current.source.store } });
      try {
        const replay = await api(gateway, `dead-letters/${deadId}/replay`, { method: "POST" });
        expect(replay.status).toBe(409);
        expect((await json(replay)).error_output.error_reason).toStartWith(
          'Route "erp" is no longer configured: a replay would wait in the outbox for it.',
        );
        const bulk = await api(gateway, "dead-letters/replay", { method: "POST", body: JSON.stringify({ all: true }) });
        expect(bulk.status).toBe(202);
        const bulkResult = await json(bulk);
        expect(bulkResult.replayed).toBe(0);
        expect(bulkResult.skipped.erp).toBeGreaterThan(0);
        const byRoute = await api(gateway, "dead-letters/replay", {
          method: "POST",
          body: JSON.stringify({ route: "erp", all: true }),
        });
        expect(byRoute.status).toBe(409);

        const outbox = await json(await api(gateway, "outbox?route=gone"));
        expect(outbox.total).toBe(2);
        expect(outbox.events.map((event: any) => [event.id, event.route_configured, event.leased])).toEqual([
          ["orphan-1", false, false],
          ["orphan-2", false, false],
        ]);
        const { unconfigured } = await json(await api(gateway, "routes"));
        expect(unconfigured).toContainEqual({ route: "gone", outbox_depth: 2, dead_letters: 0 });

        const refused = await api(gateway, "outbox/dead-letter", {
          method: "POST",
          body: JSON.stringify({ route: "crm" }),
        });
        expect(refused.status).toBe(409);
        const moved = await api(gateway, "outbox/dead-letter", {
          method: "POST",
          body: JSON.stringify({ route: "gone" }),
        });
        expect({ status: moved.status, body: await json(moved) }).toEqual({
          status: 200,
          body: { moved: 2, batches: 1 },
        });
        expect((await json(await api(gateway, "outbox?route=gone"))).total).toBe(0);
        const letter = await json(await api(gateway, "dead-letters/orphan-1"));
        expect(letter.reason).toBe(
          'route "gone" is no longer configured; moved from the outbox to the dead letters by an operator',
        );
      } finally {
        gateway.gateway.replaceConfig(current);
      }
    });

    test("listings page with next; a bad cursor is 400", async () => {
      const first = await json(await api(gateway, "dead-letters?limit=1"));
      expect(first.dead_letters).toHaveLength(1);
      if (first.total > 1) {
        const second = await json(await api(gateway, `dead-letters?limit=1&after=${first.next}`));
        expect(second.dead_letters[0].id).not.toBe(first.dead_letters[0].id);
      }
      const bad = await api(gateway, "dead-letters?after=garbage");
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as any).error_output.error_reason).toBe(
        "after must be the next of an earlier page of this listing",
      );
    });
  });
}

describe("admin API without admin.token", () => {
  test("admin.host 0.0.0.0 without a token is warned about at start and shown in /readyz, which stays ready", async () => {
    const gateway = await startInProcessGateway(
      configYaml("", {
        token: "",
        routes: `  - name: crm\n    target: { type: http, url: "http://127.0.0.1:${legacy.port}/crm" }\n`,
      }).replace("admin: { host: 127.0.0.1", "admin: { host: 0.0.0.0"),
    );
    try {
      const warning =
        "the admin listener on 0.0.0.0 is reachable from the network without admin.token: /metrics and /readyz are open to anyone who can reach it, and the admin API is off. Set admin.token (admin.token: ${ADMIN_TOKEN}) or bind admin.host to 127.0.0.1";
      expect(gateway.logs.some((line) => line.level === "warn" && line.msg === warning)).toBe(true);
      const ready = await fetch(`${gateway.adminUrl}/readyz`);
      expect(ready.status).toBe(200);
      expect(((await ready.json()) as any).checks.admin).toEqual({ ok: true, host: "0.0.0.0", token: false, warning });
    } finally {
      await gateway.stop();
    }
  });

  test("every /api path answers 403 saying how to turn it on; health, readiness and metrics stay open", async () => {
    const gateway = await startInProcessGateway(
      configYaml("", {
        token: "",
        routes: `  - name: crm\n    target: { type: http, url: "http://127.0.0.1:${legacy.port}/crm" }\n`,
      }),
    );
    try {
      for (const path of ["routes", "dead-letters", "nothing-here"]) {
        const response = await api(gateway, path);
        expect(response.status).toBe(403);
        expect(((await response.json()) as any).error_output.error_reason).toBe(
          "The admin API is off: set admin.token (for example admin.token: ${ADMIN_TOKEN}) and restart",
        );
      }
      expect((await fetch(`${gateway.adminUrl}/healthz`)).status).toBe(200);
      expect((await fetch(`${gateway.adminUrl}/metrics`)).status).toBe(200);
    } finally {
      await gateway.stop();
    }
  });
});
