import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type InProcessGateway, startInProcessGateway } from "../../test/support/gateway.ts";
import { closedPort, type RecordingServer, startRecordingServer } from "../../test/support/recording-server.ts";
import { fixturePayload, generateTestKeyPair, signedHeaders } from "../../test/support/signing.ts";
import { checkReadiness } from "../gateway/readiness.ts";
import { openMemoryStore } from "../store/memory-store.ts";

/** The admin listener of a real in-process gateway: health, readiness, metrics after real signed calls. */
const keys = generateTestKeyPair();
let legacy: RecordingServer;
let gateway: InProcessGateway;

function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

function signedCall(path: string, payload: object = fixturePayload(), sign = true): Promise<Response> {
  const text = JSON.stringify(payload);
  const headers = sign ? signedHeaders(text, { privateKey: keys.privateKey }) : { "content-type": "application/json" };
  return fetch(`${gateway.url}${path}`, { method: "POST", body: text, headers });
}

beforeAll(async () => {
  legacy = await startRecordingServer();
  gateway = await startInProcessGateway(`
server: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
verification: { public_key: ${JSON.stringify(keys.whpk)} }
routes:
  - name: erp
    target: { type: http, url: "${legacy.url}/erp", timeout: 2s }
`);
});

afterAll(async () => {
  await gateway.stop();
  await legacy.close();
});

describe("admin listener", () => {
  test("is a separate port from the public one, which does not serve the admin routes", async () => {
    expect(gateway.adminUrl).toBeDefined();
    expect(gateway.adminUrl).not.toBe(gateway.url);
    expect((await fetch(`${gateway.url}/metrics`)).status).toBe(404);
    expect((await fetch(`${gateway.adminUrl}/actions/erp`, { method: "POST" })).status).toBe(404);
  });

  test("/healthz answers 200 while the process runs", async () => {
    const response = await fetch(`${gateway.adminUrl}/healthz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: "ok" });
  });

  test("/readyz is 200 with every check when config, key and store are fine", async () => {
    const response = await fetch(`${gateway.adminUrl}/readyz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      ready: true,
      checks: {
        config: { ok: true, routes: 1, loaded_at: expect.any(String) },
        verification_key: { ok: true, source: "config", age_s: expect.any(Number) },
        store: { ok: true, kind: "memory", writable: true },
        draining: { ok: true },
      },
    });
  });

  test("/metrics counts real calls by route and outcome, verification failures and target latency", async () => {
    expect((await signedCall("/actions/erp")).status).toBe(200);
    expect((await signedCall("/actions/erp", fixturePayload(), false)).status).toBe(401);
    expect((await signedCall("/actions/no-such-route-xyz")).status).toBe(404);

    const response = await fetch(`${gateway.adminUrl}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("text/plain");
    const text = await response.text();
    expect(sample(text, 'actiongate_calls_total{route="erp",outcome="delivered"}')).toBe(1);
    expect(sample(text, 'actiongate_calls_total{route="erp",outcome="unauthorized"}')).toBe(1);
    // A route name nobody configured never becomes a label.
    expect(text).not.toContain("no-such-route-xyz");
    expect(sample(text, 'actiongate_calls_total{route="_none",outcome="unknown_route"}')).toBe(1);
    expect(sample(text, 'actiongate_verification_failures_total{reason="missing_headers"}')).toBe(1);
    expect(sample(text, 'actiongate_target_duration_seconds_count{route="erp"}')).toBe(1);
    expect(sample(text, 'actiongate_circuit_breaker_state{route="erp"}')).toBe(0);
    expect(sample(text, 'actiongate_verification_key_age_seconds{source="config"}')).toBeGreaterThanOrEqual(0);
    expect(sample(text, "actiongate_config_last_reload_success")).toBe(1);
    expect(sample(text, "process_resident_memory_bytes")).toBeGreaterThan(0);
  });

  test("an unknown admin path is a JSON 404", async () => {
    const response = await fetch(`${gateway.adminUrl}/debug`);
    expect(response.status).toBe(404);
    expect(((await response.json()) as any).error).toContain("/healthz");
  });
});

describe("readiness", () => {
  test("503 while epilot's key could not be fetched yet", async () => {
    const down = await closedPort();
    const unready = await startInProcessGateway(`
server: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
verification: { public_key_url: "http://127.0.0.1:${down}/key" }
routes:
  - name: erp
    target: { type: http, url: "${legacy.url}/erp" }
`);
    try {
      const response = await fetch(`${unready.adminUrl}/readyz`);
      expect(response.status).toBe(503);
      const report = (await response.json()) as any;
      expect(report.ready).toBe(false);
      expect(report.checks.verification_key).toEqual({ ok: false, source: "url" });
      expect(report.checks.store.ok).toBe(true);
      // Alive all the same: a missing key is no reason to restart the process.
      expect((await fetch(`${unready.adminUrl}/healthz`)).status).toBe(200);
      expect(await (await fetch(`${unready.adminUrl}/metrics`)).text()).not.toContain(
        "actiongate_verification_key_age_seconds{",
      );
    } finally {
      await unready.stop();
    }
  });

  test("not ready while draining or when the store cannot write, each check saying why", async () => {
    const active = gateway.gateway;
    const store = openMemoryStore({ replayWindowMs: 1000 });
    const draining = await checkReadiness({
      active: {
        config: active.config,
        adoptedAt: Date.now(),
        verificationKey: { source: "config", loadedAt: Date.now() },
      },
      store,
      draining: () => true,
    });
    expect(draining.ready).toBe(false);
    expect(draining.checks.draining).toEqual({ ok: false });

    const failing = {
      status: async () => ({ kind: "sqlite" as const, writable: false, schemaVersion: 3, error: "disk I/O error" }),
    };
    const report = await checkReadiness({
      active: {
        config: active.config,
        adoptedAt: Date.now(),
        verificationKey: { source: "config", loadedAt: Date.now() },
      },
      store: failing,
      draining: () => false,
    });
    expect(report.ready).toBe(false);
    expect(report.checks.store).toEqual({
      ok: false,
      kind: "sqlite",
      writable: false,
      schema_version: 3,
      error: "disk I/O error",
    });

    const throwing = { status: () => Promise.reject(new Error("connection refused")) };
    const thrown = await checkReadiness({
      active: {
        config: active.config,
        adoptedAt: Date.now(),
        verificationKey: { source: "config", loadedAt: Date.now() },
      },
      store: throwing,
      draining: () => false,
    });
    expect(thrown.checks.store).toEqual({ ok: false, writable: false, error: "connection refused" });
  });

  test("a SQLite store reports its schema version", async () => {
    const sqlite = await startInProcessGateway(`
server: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
store: { path: ./data/gateway.db }
verification: { public_key: ${JSON.stringify(keys.whpk)} }
routes:
  - name: erp
    target: { type: http, url: "${legacy.url}/erp" }
`);
    try {
      const report = (await (await fetch(`${sqlite.adminUrl}/readyz`)).json()) as any;
      expect(report.checks.store).toEqual({
        ok: true,
        kind: "sqlite",
        writable: true,
        schema_version: expect.any(Number),
      });
    } finally {
      await sqlite.stop();
    }
  });
});
