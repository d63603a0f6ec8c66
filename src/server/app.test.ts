import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { request as httpRequest } from "node:http";
import { type InProcessGateway, startInProcessGateway } from "../../test/support/gateway.ts";
import { closedPort, type RecordingServer, startRecordingServer } from "../../test/support/recording-server.ts";
import { fixturePayload, generateTestKeyPair, signedHeaders, uniqueWebhookId } from "../../test/support/signing.ts";

/**
 * The answer table of DESIGN.md, row by row, against a real gateway on 127.0.0.1 and a real
 * recording HTTP server as the legacy system.
 */
const keys = generateTestKeyPair();
const HMAC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
let legacy: RecordingServer;
let gateway: InProcessGateway;
let downPort: number;

beforeAll(async () => {
  legacy = await startRecordingServer();
  downPort = await closedPort();
  gateway = await startInProcessGateway(
    `
server: { host: 127.0.0.1, port: 0, max_body_size: 64kb }
verification:
  public_key: ${JSON.stringify(keys.whpk)}
  secrets: ["${HMAC_SECRET}"]
  tolerance: 5m
routes:
  - name: erp-contract
    match: { component_id: erp-contract-sync, org_id: ["1", "739224"] }
    strip: [data.app_options.api_key]
    transform: '{ "contract": data.entity.contract_number, "status": data.entity.status, "company": data.action_config.custom_action_config.erp_company_code }'
    target:
      type: http
      url: "${"${LEGACY_URL}"}/api/contracts/{{ data.entity.contract_number }}"
      headers: { Authorization: "Bearer \${ERP_TOKEN}", X-Org: "{{ data.org_id }}" }
      timeout: 2s
  - name: raw
    target: { type: http, url: "${"${LEGACY_URL}"}/raw" }
  - name: stripped
    strip: [data.app_options.api_key, data.entity.billing_address.street, "data.*.customer_number"]
    target: { type: http, url: "${"${LEGACY_URL}"}/stripped" }
  - name: with-token
    forward_headers: [x-epilot-token]
    forward_caller: true
    target: { type: http, url: "${"${LEGACY_URL}"}/token" }
  - name: shaped
    skip_when: 'data.entity.status = "draft"'
    skip_reason: '"contract " & data.entity.contract_number & " is a draft"'
    target: { type: http, url: "${"${LEGACY_URL}"}/shaped" }
    response:
      transform: '{ "erp_id": body.id, "answered": status }'
      fail_when: 'body.success = false'
      error_reason: '"ERP says: " & body.message'
  - name: slow
    target: { type: http, url: "${"${LEGACY_URL}"}/slow", timeout: 300ms }
  - name: down
    target: { type: http, url: "http://127.0.0.1:${"${DOWN_PORT}"}/x", timeout: 2s }
  - name: by-entity
    match: { entity_schema: opportunity }
    target: { type: http, url: "${"${LEGACY_URL}"}/opportunity" }
`,
    { LEGACY_URL: legacy.url, ERP_TOKEN: "erp-secret-token", DOWN_PORT: String(downPort) },
  );
});

afterAll(async () => {
  await gateway.stop();
  await legacy.close();
});

afterEach(() => {
  legacy.requests.length = 0;
  legacy.respondWith({});
});

function body(mutate?: (payload: Record<string, any>) => void): string {
  const payload = fixturePayload();
  mutate?.(payload);
  return JSON.stringify(payload);
}

async function call(
  path: string,
  text: string,
  headers: Record<string, string> = signedHeaders(text, { privateKey: keys.privateKey }),
) {
  const response = await fetch(`${gateway.url}${path}`, { method: "POST", body: text, headers });
  return { status: response.status, json: (await response.json()) as any };
}

function expectEpilotError(json: any, reasonPattern: RegExp): void {
  expect(json.error_output.error_code).toBe("CUSTOM_ACTION_ERROR");
  expect(json.error_output.error_reason).toMatch(reasonPattern);
  // No internal hostnames, ports or stack traces in any answer.
  const text = JSON.stringify(json);
  expect(text).not.toContain("127.0.0.1");
  expect(text).not.toContain(String(legacy.port));
  expect(text).not.toMatch(/at .*\.ts:\d+/);
}

describe("delivery (200)", () => {
  test("a verified call reaches the legacy system transformed, and epilot gets 200 {}", async () => {
    const text = body();
    const headers: Record<string, string> = {
      ...signedHeaders(text, { privateKey: keys.privateKey }),
      "x-epilot-token": "epilot-short-lived-token",
    };
    const { status, json } = await call("/actions/erp-contract", text, headers);
    expect(status).toBe(200);
    expect(json).toEqual({});
    expect(legacy.requests).toHaveLength(1);
    const received = legacy.requests[0]!;
    expect(received.method).toBe("POST");
    expect(received.url).toBe("/api/contracts/2026-0042");
    expect(received.json).toEqual({ contract: "2026-0042", status: "approved", company: "1000" });
    expect(received.headers.authorization).toBe("Bearer erp-secret-token");
    expect(received.headers["x-org"]).toBe("739224");
    expect(received.headers["idempotency-key"]).toBe(headers["webhook-id"]);
    expect(received.headers["content-type"]).toBe("application/json");
    // Never forwarded unless a route names them.
    expect(received.headers["x-epilot-token"]).toBeUndefined();
    expect(Object.keys(received.headers).filter((name) => name.startsWith("webhook-"))).toEqual([]);
  });

  test("without a transform the stripped payload is sent, without the user's token and identity", async () => {
    const { status } = await call("/actions/raw", body());
    expect(status).toBe(200);
    const sent = legacy.requests[0]!;
    expect(sent.json.data.entity.contract_number).toBe("2026-0042");
    expect(sent.json.data.trigger_event.type).toBe("manual");
    expect(sent.json.data.trigger_event.caller).toBeUndefined();
    expect(sent.body).not.toContain("user-token-that-must-never-leave-the-gateway");
    expect(sent.body).not.toContain("jane.doe@example.com");
  });

  test("a route that names x-epilot-token and the caller forwards them", async () => {
    const text = body();
    const headers: Record<string, string> = {
      ...signedHeaders(text, { privateKey: keys.privateKey }),
      "x-epilot-token": "epilot-short-lived-token",
    };
    await call("/actions/with-token", text, headers);
    const sent = legacy.requests[0]!;
    expect(sent.headers["x-epilot-token"]).toBe("epilot-short-lived-token");
    expect(sent.json.data.trigger_event.caller.EpilotAuth.token).toContain("user-token-that-must-never-leave");
  });

  test("strip removes the configured paths before the target sees the payload", async () => {
    expect((await call("/actions/stripped", body())).status).toBe(200);
    const sent = legacy.requests[0]!.json;
    expect(sent.data.app_options).toEqual({ erp_client: "100" });
    expect(sent.data.entity.billing_address).toEqual({ postal_code: "50667", city: "Köln", country: "DE" });
    expect(sent.data.entity.customer_number).toBeUndefined();
    expect(sent.data.entity.contract_number).toBe("2026-0042");
  });

  test("placeholder values are percent-encoded in the URL", async () => {
    const text = body((payload) => (payload.data.entity.contract_number = "../admin?x=1 #"));
    const { status } = await call("/actions/erp-contract", text);
    expect(status).toBe(200);
    expect(legacy.requests[0]!.url).toBe("/api/contracts/..%2Fadmin%3Fx%3D1%20%23");
  });

  test("a placeholder value of only dots cannot climb the URL path: 400, nothing sent", async () => {
    for (const value of ["..", "%2e%2E", "."]) {
      const { status, json } = await call(
        "/actions/erp-contract",
        body((payload) => (payload.data.entity.contract_number = value)),
      );
      expect(status).toBe(400);
      expectEpilotError(json, /would change the path/);
    }
    expect(legacy.requests).toHaveLength(0);
  });

  test("response.transform shapes the 200 answer from {status, headers, body}", async () => {
    legacy.respondWith({ status: 201, body: { id: "ERP-991", success: true } });
    const { status, json } = await call("/actions/shaped", body());
    expect(status).toBe(200);
    expect(json).toEqual({ erp_id: "ERP-991", answered: 201 });
  });

  test("a v1 HMAC signature is accepted", async () => {
    const text = body();
    const { status } = await call("/actions/raw", text, signedHeaders(text, { hmacSecret: HMAC_SECRET }));
    expect(status).toBe(200);
  });
});

describe("routing", () => {
  test("POST /actions goes to the first route whose match holds", async () => {
    const { status } = await call("/actions", body());
    expect(status).toBe(200);
    expect(legacy.requests[0]!.url).toBe("/api/contracts/2026-0042");
  });

  test("POST /actions matches on entity_schema", async () => {
    const text = body((payload) => {
      payload.data.entity._schema = "opportunity";
      payload.data.action_config.component_id = "other";
    });
    expect((await call("/actions", text)).status).toBe(200);
    expect(legacy.requests[0]!.url).toBe("/opportunity");
  });

  test("POST /actions with no matching route is 404, nothing forwarded", async () => {
    const text = body((payload) => (payload.data.action_config.component_id = "unknown-component"));
    const { status, json } = await call("/actions", text);
    expect(status).toBe(404);
    expectEpilotError(json, /No route matches/);
    expect(legacy.requests).toHaveLength(0);
  });

  test("an unknown route name is 404", async () => {
    const { status, json } = await call("/actions/nope", body());
    expect(status).toBe(404);
    expectEpilotError(json, /No route named "nope"/);
  });

  test("other paths and methods are 404 in epilot's shape", async () => {
    const response = await fetch(`${gateway.url}/admin`, { method: "GET" });
    expect(response.status).toBe(404);
    expectEpilotError(await response.json(), /No endpoint GET \/admin/);
  });

  // The public listener dispatches without a router: each edge of the two paths, as a user sees it.
  test("a query string does not change the route; a percent-encoded name is decoded", async () => {
    expect((await call("/actions/raw?from=epilot#x", body())).status).toBe(200);
    expect((await call("/actions/%72aw", body())).status).toBe(200);
    expect((await call("/actions?x=1", body())).status).toBe(200);
    expect(legacy.requests.map((request) => request.url)).toEqual(["/raw", "/raw", "/api/contracts/2026-0042"]);
  });

  test("GET on an action, an empty name, a nested path and a bad escape are 404, nothing sent", async () => {
    const get = await fetch(`${gateway.url}/actions/raw`);
    expect(get.status).toBe(404);
    expectEpilotError(await get.json(), /No endpoint GET \/actions\/raw;/);
    const nested = await call("/actions/raw/extra", body());
    expect(nested.status).toBe(404);
    expectEpilotError(nested.json, /No endpoint POST \/actions\/raw\/extra;/);
    const empty = await call("/actions/", body());
    expect(empty.status).toBe(404);
    expectEpilotError(empty.json, /No endpoint POST \/actions\/;/);
    const badEscape = await call("/actions/%E0%A4%A", body());
    expect(badEscape.status).toBe(404);
    expectEpilotError(badEscape.json, /No route named "%E0%A4%A"/);
    expect(legacy.requests).toHaveLength(0);
  });
});

describe("skip", () => {
  test("skip_when answers 200 with skip_reason and sends nothing", async () => {
    const text = body((payload) => (payload.data.entity.status = "draft"));
    const { status, json } = await call("/actions/shaped", text);
    expect(status).toBe(200);
    expect(json).toEqual({ skip_reason: "contract 2026-0042 is a draft" });
    expect(legacy.requests).toHaveLength(0);
  });
});

describe("verification (401, 409)", () => {
  const forwardedNothing = () => expect(legacy.requests).toHaveLength(0);

  test("missing headers", async () => {
    const { status, json } = await call("/actions/raw", body(), { "content-type": "application/json" });
    expect(status).toBe(401);
    expectEpilotError(json, /webhook-id, webhook-timestamp and webhook-signature headers are required/);
    forwardedNothing();
  });

  test("a signature made with another key", async () => {
    const text = body();
    const { status, json } = await call(
      "/actions/raw",
      text,
      signedHeaders(text, { privateKey: generateTestKeyPair().privateKey }),
    );
    expect(status).toBe(401);
    expectEpilotError(json, /no matching signature/);
    forwardedNothing();
  });

  test("a tampered body", async () => {
    const text = body();
    const headers = signedHeaders(text, { privateKey: keys.privateKey });
    const { status } = await call("/actions/raw", text.replace("approved", "cancelled"), headers);
    expect(status).toBe(401);
    forwardedNothing();
  });

  test("garbage in the signature header", async () => {
    const text = body();
    const headers = {
      ...signedHeaders(text, { privateKey: keys.privateKey }),
      "webhook-signature": "v1a,@@@not-base64@@@ v1,=== nonsense",
    };
    expect((await call("/actions/raw", text, headers)).status).toBe(401);
    forwardedNothing();
  });

  test("stale and future timestamps beyond the tolerance", async () => {
    const text = body();
    const now = Math.floor(Date.now() / 1000);
    const stale = await call(
      "/actions/raw",
      text,
      signedHeaders(text, { privateKey: keys.privateKey, timestamp: now - 301 }),
    );
    expect(stale.status).toBe(401);
    expectEpilotError(stale.json, /too old/);
    const future = await call(
      "/actions/raw",
      text,
      signedHeaders(text, { privateKey: keys.privateKey, timestamp: now + 301 }),
    );
    expect(future.status).toBe(401);
    expectEpilotError(future.json, /future/);
    forwardedNothing();
  });

  test("a replayed webhook-id is 409 and is not forwarded twice", async () => {
    const text = body();
    const headers = signedHeaders(text, { privateKey: keys.privateKey });
    expect((await call("/actions/raw", text, headers)).status).toBe(200);
    const replay = await call("/actions/raw", text, headers);
    expect(replay.status).toBe(409);
    expectEpilotError(replay.json, /already received/);
    expect(legacy.requests).toHaveLength(1);
  });

  test("concurrent duplicates: exactly one is forwarded", async () => {
    legacy.respondWith({ delayMs: 100 });
    const text = body();
    const headers = signedHeaders(text, { privateKey: keys.privateKey });
    const answers = await Promise.all([1, 2, 3].map(() => call("/actions/raw", text, headers)));
    expect(answers.map((answer) => answer.status).sort()).toEqual([200, 409, 409]);
    expect(legacy.requests).toHaveLength(1);
  });

  test("epilot's retry of a call whose delivery failed is processed again", async () => {
    legacy.respondWith({ status: 503, body: "down for maintenance" });
    const text = body();
    const headers = signedHeaders(text, { privateKey: keys.privateKey });
    expect((await call("/actions/raw", text, headers)).status).toBe(502);
    legacy.respondWith({});
    expect((await call("/actions/raw", text, headers)).status).toBe(200);
    expect(legacy.requests).toHaveLength(2);
    expect(legacy.requests[0]!.headers["idempotency-key"]).toBe(legacy.requests[1]!.headers["idempotency-key"]);
  });
});

describe("bad bodies (400, 413)", () => {
  test("not JSON", async () => {
    const text = "{ this is not json";
    const { status, json } = await call("/actions/raw", text);
    expect(status).toBe(400);
    expectEpilotError(json, /body is not valid JSON/);
  });

  test("JSON that is not a custom action names the problem", async () => {
    const text = JSON.stringify({ type: "something_else", data: { org_id: "1" } });
    const { status, json } = await call("/actions/raw", text);
    expect(status).toBe(400);
    expectEpilotError(json, /not a custom action payload: type: .*external_integration.*; data.entity: is required/);
  });

  test("a body over max_body_size with Content-Length is refused before it is read", async () => {
    const big = body((payload) => (payload.data.entity.notes = "x".repeat(70 * 1024)));
    const { status, json } = await call("/actions/raw", big);
    expect(status).toBe(413);
    expectEpilotError(json, /larger than the limit of 65536 bytes/);
    expect(legacy.requests).toHaveLength(0);
  });

  test("a chunked body over max_body_size is cut off while streaming", async () => {
    const url = new URL(`${gateway.url}/actions/raw`);
    const answer = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = httpRequest(
        {
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: "POST",
          headers: { "content-type": "application/json", "transfer-encoding": "chunked" },
        },
        (res) => {
          let text = "";
          res.on("data", (chunk) => (text += chunk));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
        },
      );
      req.on("error", reject);
      const chunk = "x".repeat(16 * 1024);
      for (let i = 0; i < 8; i++) req.write(chunk);
      req.end();
    });
    expect(answer.status).toBe(413);
    expectEpilotError(JSON.parse(answer.text), /larger than the limit/);
    expect(legacy.requests).toHaveLength(0);
  });
});

describe("target failures (502, 504)", () => {
  test("a non-2xx answer is 502 with error_output", async () => {
    legacy.respondWith({ status: 500, body: "java.lang.NullPointerException at erp.internal.Foo(Foo.java:12)" });
    const { status, json } = await call("/actions/raw", body());
    expect(status).toBe(502);
    expectEpilotError(json, /target of route raw failed: target answered HTTP 500/);
    expect(json.error_output.error_info.target_status).toBe(500);
    expect(JSON.stringify(json)).not.toContain("NullPointerException");
  });

  test("response.error_reason gives the text of a failure", async () => {
    legacy.respondWith({ status: 422, body: { message: "customer locked" } });
    const { status, json } = await call("/actions/shaped", body());
    expect(status).toBe(502);
    expect(json.error_output.error_reason).toBe("ERP says: customer locked");
  });

  test("response.fail_when turns a 2xx that means failure into 502", async () => {
    legacy.respondWith({ status: 200, body: { success: false, message: "duplicate contract" } });
    const { status, json } = await call("/actions/shaped", body());
    expect(status).toBe(502);
    expect(json.error_output.error_reason).toBe("ERP says: duplicate contract");
  });

  test("a refused connection is 502 naming the kind of failure, not the host", async () => {
    const { status, json } = await call("/actions/down", body());
    expect(status).toBe(502);
    expectEpilotError(json, /could not be reached: connection refused/);
    expect(JSON.stringify(json)).not.toContain(String(downPort));
  });

  test("a connection dropped without an answer is 502", async () => {
    legacy.respondWith({ destroy: true });
    const { status, json } = await call("/actions/raw", body());
    expect(status).toBe(502);
    expectEpilotError(json, /could not be reached/);
  });

  test("a target slower than its timeout is 504", async () => {
    legacy.respondWith({ delayMs: 1_500 });
    const started = Date.now();
    const { status, json } = await call("/actions/slow", body());
    expect(status).toBe(504);
    expectEpilotError(json, /did not answer within 300ms/);
    expect(Date.now() - started).toBeLessThan(1_400);
  });
});

describe("logs", () => {
  test("one JSON line per call with route, webhook-id, outcome, status, duration and target status", async () => {
    const text = body();
    const headers: Record<string, string> = {
      ...signedHeaders(text, { privateKey: keys.privateKey, id: uniqueWebhookId() }),
      "x-epilot-token": "epilot-short-lived-token",
    };
    await call("/actions/erp-contract", text, headers);
    const line = gateway.logs.filter((entry) => entry.msg === "call" && entry.webhook_id === headers["webhook-id"]);
    expect(line).toHaveLength(1);
    expect(line[0]).toMatchObject({
      level: "info",
      route: "erp-contract",
      outcome: "delivered",
      status: 200,
      target_status: 200,
    });
    expect(typeof line[0]!.duration_ms).toBe("number");
    expect(typeof line[0]!.time).toBe("string");
  });

  test("no token, secret, app_options value or caller content ever reaches the log", async () => {
    const text = body();
    await call("/actions/with-token", text, {
      ...signedHeaders(text, { privateKey: keys.privateKey }),
      "x-epilot-token": "epilot-short-lived-token",
    });
    await call("/actions/erp-contract", text);
    const log = gateway.logText();
    for (const secret of [
      "epilot-short-lived-token",
      "erp-secret-token",
      "app-option-secret-value",
      "user-token-that-must-never-leave-the-gateway",
      "jane.doe@example.com",
      "resume_execution",
      keys.whpk,
      HMAC_SECRET,
    ]) {
      expect(log).not.toContain(secret);
    }
  });
});
