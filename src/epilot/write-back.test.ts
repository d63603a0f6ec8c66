import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startTracedReceiver } from "../../test/support/otlp-receiver.ts";
import { closedPort, type RecordingServer, startRecordingServer } from "../../test/support/recording-server.ts";
import type { EpilotCallOutcome } from "./types.ts";
import { type WriteBackInput, writeBackEntity } from "./write-back.ts";

const TOKEN = "eyJhbGciOiJSUzI1NiJ9.x-epilot-token-SECRET-0042.sig";
const ENTITY_ID = "3f2c1a90-5d7e-4b8a-9c11-2f6e8d0b7a41";
const ENTITY_PATH = `/v1/entity/contract/${ENTITY_ID}`;

let entityApi: RecordingServer;
const outcomes: EpilotCallOutcome[] = [];

async function writeBack(input: Partial<WriteBackInput> = {}, timeoutMs = 2_000): Promise<EpilotCallOutcome> {
  const outcome = await writeBackEntity(
    {
      entityApiUrl: entityApi.url,
      token: TOKEN,
      schema: "contract",
      entityId: ENTITY_ID,
      patch: { erp_id: "E-4711", erp_synced: true },
      ...input,
    },
    { timeoutMs, userAgent: "actiongate/test" },
  );
  outcomes.push(outcome);
  return outcome;
}

beforeAll(async () => {
  entityApi = await startRecordingServer();
});
afterAll(() => entityApi.close());

describe("writeBackEntity", () => {
  test("PATCHes the entity with the call's token and the patch as JSON", async () => {
    entityApi.respondWith({ status: 200, body: { _id: ENTITY_ID, _schema: "contract", erp_id: "E-4711" } });
    expect(await writeBack()).toEqual({ kind: "ok", status: 200 });
    const received = entityApi.requests.at(-1)!;
    expect(received.method).toBe("PATCH");
    expect(received.url).toBe(ENTITY_PATH);
    expect(received.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(received.headers["content-type"]).toStartWith("application/json");
    expect(received.headers["user-agent"]).toBe("actiongate/test");
    expect(received.json).toEqual({ erp_id: "E-4711", erp_synced: true });
  });

  test("each call sends its own token, also when calls overlap", async () => {
    entityApi.respondWith({ status: 200, delayMs: 50 });
    const before = entityApi.requests.length;
    const tokens = ["token-a", "token-b", "token-c"];
    await Promise.all(tokens.map((token, index) => writeBack({ token, entityId: `id-${index}` })));
    const received = entityApi.requests.slice(before);
    expect(received.map((request) => [request.url, request.headers.authorization]).sort()).toEqual(
      tokens.map((token, index) => [`/v1/entity/contract/id-${index}`, `Bearer ${token}`]),
    );
  });

  test("schema and id are percent-encoded into the path; a path prefix of entity_api_url is kept", async () => {
    entityApi.respondWith({ status: 200 });
    expect(await writeBack({ entityApiUrl: `${entityApi.url}/epilot`, entityId: "a/b c" })).toMatchObject({
      kind: "ok",
    });
    expect(entityApi.requests.at(-1)!.url).toBe("/epilot/v1/entity/contract/a%2Fb%20c");
  });

  test("401 and 403 mean the token expired or lacks rights: fatal", async () => {
    entityApi.respondWith({ status: 401, body: { message: "Unauthorized" } });
    expect(await writeBack()).toEqual({
      kind: "fatal",
      reason: "x-epilot-token expired or was refused (HTTP 401); write-back needs a new call from epilot",
      status: 401,
    });
    entityApi.respondWith({ status: 403, body: { message: "Forbidden" } });
    expect(await writeBack()).toEqual({
      kind: "fatal",
      reason: "x-epilot-token expired or was refused (HTTP 403); write-back needs a new call from epilot",
      status: 403,
    });
  });

  test("503 and 429 are retried (with Retry-After), other 4xx are fatal", async () => {
    entityApi.respondWith({ status: 503, body: { message: "unavailable" } });
    expect(await writeBack()).toEqual({
      kind: "retry",
      reason: `write-back to 127.0.0.1:${entityApi.port}${ENTITY_PATH} answered HTTP 503`,
      status: 503,
    });
    entityApi.respondWith({ status: 429, headers: { "retry-after": "3" } });
    expect(await writeBack()).toMatchObject({ kind: "retry", status: 429, retryAfterMs: 3_000 });
    entityApi.respondWith({ status: 404, body: { message: "not found" } });
    expect(await writeBack()).toEqual({
      kind: "fatal",
      reason: `write-back to 127.0.0.1:${entityApi.port}${ENTITY_PATH} answered HTTP 404`,
      status: 404,
    });
    entityApi.respondWith({ status: 307, headers: { location: `${entityApi.url}/elsewhere` } });
    const before = entityApi.requests.length;
    expect(await writeBack()).toMatchObject({ kind: "fatal", status: 307 });
    // The redirect is not followed: the token goes nowhere else.
    expect(entityApi.requests.length).toBe(before + 1);
  });

  test("a refused connection and a missed deadline are retried", async () => {
    const port = await closedPort();
    expect(await writeBack({ entityApiUrl: `http://127.0.0.1:${port}` })).toEqual({
      kind: "retry",
      reason: `write-back to 127.0.0.1:${port}${ENTITY_PATH} failed: connection refused (ECONNREFUSED)`,
    });
    entityApi.respondWith({ status: 200, delayMs: 1_500 });
    const started = Date.now();
    expect(await writeBack({}, 200)).toEqual({
      kind: "retry",
      reason: `write-back to 127.0.0.1:${entityApi.port}${ENTITY_PATH} timed out after 200ms`,
    });
    expect(Date.now() - started).toBeLessThan(1_200);
  });

  test("a patch that is no object, or empty, is fatal and nothing is sent", async () => {
    const before = entityApi.requests.length;
    expect(await writeBack({ patch: [] as unknown as Record<string, unknown> })).toEqual({
      kind: "fatal",
      reason: "write-back patch is not an object",
    });
    expect(await writeBack({ patch: null as unknown as Record<string, unknown> })).toEqual({
      kind: "fatal",
      reason: "write-back patch is not an object",
    });
    expect(await writeBack({ patch: "x" as unknown as Record<string, unknown> })).toEqual({
      kind: "fatal",
      reason: "write-back patch is not an object",
    });
    expect(await writeBack({ patch: {} })).toEqual({ kind: "fatal", reason: "write-back patch is empty" });
    expect(await writeBack({ patch: { n: 1n } })).toEqual({
      kind: "fatal",
      reason: "write-back patch cannot be written as JSON",
    });
    expect(await writeBack({ schema: "" })).toMatchObject({ kind: "fatal" });
    expect(await writeBack({ token: "" })).toEqual({
      kind: "fatal",
      reason: "the call carried no usable x-epilot-token",
    });
    expect(await writeBack({ token: "abc\r\nx-injected: 1" })).toEqual({
      kind: "fatal",
      reason: "the call carried no usable x-epilot-token",
    });
    expect(entityApi.requests.length).toBe(before);
  });

  // Runs last: every outcome the tests above saw.
  test("no reason carries the token", () => {
    const reasons = outcomes.flatMap((outcome) => ("reason" in outcome ? [outcome.reason] : []));
    expect(reasons.length).toBeGreaterThan(10);
    for (const reason of reasons) {
      expect(reason).not.toContain(TOKEN);
      expect(reason).not.toContain("SECRET");
    }
  });
});

describe("writeBackEntity, traced", () => {
  test("inside an attempt's span the PATCH is a client span with epilot's status; no traceparent, no token in the span", async () => {
    const { collector, telemetry } = await startTracedReceiver();
    try {
      const attempt = telemetry.tracer.startSpan("write_back", "internal", undefined);
      entityApi.respondWith({ status: 401, body: {} });
      const outcome = await writeBackEntity(
        {
          entityApiUrl: entityApi.url,
          token: TOKEN,
          schema: "contract",
          entityId: ENTITY_ID,
          patch: { erp_id: "E-1" },
        },
        { timeoutMs: 2_000, userAgent: "actiongate/test", trace: attempt },
      );
      expect(outcome.kind).toBe("fatal");
      expect(entityApi.requests.at(-1)!.headers).not.toHaveProperty("traceparent");
      attempt.end();
      const [call] = (await collector.waitForSpans(2)).filter((span) => span.kind === "client");
      expect(call).toMatchObject({
        name: "PATCH",
        attributes: {
          "actiongate.epilot.call": "write_back",
          "server.address": "127.0.0.1",
          "server.port": entityApi.port,
          "http.response.status_code": 401,
        },
        status: { code: "error" },
      });
      expect(collector.rawText()).not.toContain("SECRET");
    } finally {
      entityApi.respondWith({ status: 200, body: {} });
      await telemetry.shutdown();
      await collector.close();
    }
  });
});
