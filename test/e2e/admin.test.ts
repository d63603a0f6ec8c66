import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { renameSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { type GatewayProcess, spawnGateway, tempDir, waitFor } from "../support/gateway.ts";
import { closedPort, type RecordingServer, startRecordingServer } from "../support/recording-server.ts";
import { fixturePayload, generateTestKeyPair, signedHeaders } from "../support/signing.ts";

/**
 * End-to-end through the compiled binary: the admin listener (health, readiness, metrics after real
 * signed calls) and hot reload on SIGHUP and with --watch.
 */
const keys = generateTestKeyPair();
let legacy: RecordingServer;

beforeAll(async () => {
  legacy = await startRecordingServer();
});
afterAll(async () => {
  await legacy.close();
});

function signedCall(gateway: GatewayProcess, route: string): Promise<Response> {
  const text = JSON.stringify(fixturePayload());
  return fetch(`${gateway.url}/actions/${route}`, {
    method: "POST",
    body: text,
    headers: signedHeaders(text, { privateKey: keys.privateKey }),
  });
}

/** The admin listener's URL, from the `listening` log line (admin.port 0 picks a free port). */
function adminUrl(gateway: GatewayProcess): string {
  const listening = gateway.logs().find((line) => line.msg === "listening");
  if (listening?.admin_port === undefined) throw new Error(`no admin_port in ${JSON.stringify(listening)}`);
  return `http://127.0.0.1:${listening.admin_port}`;
}

function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const header = (keyLine: string) =>
  `server: { host: 127.0.0.1, port: 0, shutdown_timeout: 5s }\nadmin: { host: 127.0.0.1, port: 0 }\nverification: { ${keyLine} }\n`;
const staticKey = header(`public_key: ${JSON.stringify(keys.whpk)}`);
const route = (name: string, url: string, timeout = "5s") =>
  `  - name: ${name}\n    target: { type: http, url: "${url}", timeout: ${timeout} }\n`;

describe("admin listener (binary)", () => {
  test("health, readiness and metrics after real signed calls", async () => {
    const cwd = tempDir({
      "config.yaml": `${staticKey}store: { path: ./data/gw.db }\nroutes:\n${route("erp", `${legacy.url}/erp`)}`,
    });
    const gateway = await spawnGateway(["serve", "--config", "config.yaml"], { cwd });
    try {
      const admin = adminUrl(gateway);
      expect((await fetch(`${admin}/healthz`)).status).toBe(200);
      const ready = await fetch(`${admin}/readyz`);
      expect(ready.status).toBe(200);
      expect(((await ready.json()) as any).checks.store).toEqual({
        ok: true,
        kind: "sqlite",
        writable: true,
        schema_version: expect.any(Number),
      });

      expect((await signedCall(gateway, "erp")).status).toBe(200);
      expect((await signedCall(gateway, "erp")).status).toBe(200);
      expect((await fetch(`${gateway.url}/actions/erp`, { method: "POST", body: "{}" })).status).toBe(401);
      const text = await (await fetch(`${admin}/metrics`)).text();
      expect(sample(text, 'actiongate_calls_total{route="erp",outcome="delivered"}')).toBe(2);
      expect(sample(text, 'actiongate_calls_total{route="erp",outcome="unauthorized"}')).toBe(1);
      expect(sample(text, 'actiongate_verification_failures_total{reason="missing_headers"}')).toBe(1);
      expect(sample(text, 'actiongate_target_duration_seconds_count{route="erp"}')).toBe(2);
      expect(sample(text, 'actiongate_circuit_breaker_state{route="erp"}')).toBe(0);
      expect(text).toContain("# TYPE actiongate_outbox_depth gauge");
      expect(sample(text, "process_resident_memory_bytes")).toBeGreaterThan(0);
      // The public port does not serve the admin routes.
      expect((await fetch(`${gateway.url}/metrics`)).status).toBe(404);
    } finally {
      expect(await gateway.stop()).toBe(0);
    }
  });

  test("readiness is 503 while epilot's key is unavailable, 200 once it is fetched", async () => {
    const keyPort = await closedPort();
    const cwd = tempDir({
      "config.yaml": `${header(`public_key_url: "http://127.0.0.1:${keyPort}/key"`)}routes:\n${route("erp", `${legacy.url}/erp`)}`,
    });
    const gateway = await spawnGateway(["serve", "--config", "config.yaml"], { cwd });
    let keyServer: Server | undefined;
    try {
      const admin = adminUrl(gateway);
      const unready = await fetch(`${admin}/readyz`);
      expect(unready.status).toBe(503);
      expect(((await unready.json()) as any).checks.verification_key).toEqual({ ok: false, source: "url" });
      expect((await fetch(`${admin}/healthz`)).status).toBe(200);

      // The key server comes up on the port the gateway retries (1s backoff at first).
      keyServer = createServer((_, res) =>
        res.writeHead(200, { "content-type": "application/json" }).end(keys.keyDocument),
      );
      await new Promise<void>((resolve) => keyServer!.listen(keyPort, "127.0.0.1", resolve));
      await waitFor(
        async () => (await fetch(`${admin}/readyz`)).status === 200,
        10_000,
        "readiness after the key is fetched",
      );
      const text = await (await fetch(`${admin}/metrics`)).text();
      expect(sample(text, 'actiongate_verification_key_age_seconds{source="url"}')).toBeGreaterThanOrEqual(0);
    } finally {
      await gateway.stop();
      await new Promise<void>((resolve) => (keyServer ? keyServer.close(() => resolve()) : resolve()));
    }
  });
});

describe("reload (binary)", () => {
  test("SIGHUP with a good file: the new route works and a call in flight finishes on the old config", async () => {
    const slow = await startRecordingServer({ delayMs: 800 });
    const cwd = tempDir({ "config.yaml": `${staticKey}routes:\n${route("erp", `${slow.url}/erp`)}` });
    const gateway = await spawnGateway(["serve", "--config", "config.yaml"], { cwd });
    try {
      const inFlight = signedCall(gateway, "erp");
      await waitFor(() => slow.requests.length === 1, 5_000, "the slow call to arrive");
      writeFileSync(
        join(cwd, "config.yaml"),
        `${staticKey}routes:\n${route("erp", `${legacy.url}/erp-v2`)}${route("crm", `${legacy.url}/crm`)}`,
      );
      gateway.child.kill("SIGHUP");
      await waitFor(() => gateway.logs().some((line) => line.msg === "config reloaded"), 5_000, "the reload");

      const old = await inFlight;
      expect(old.status).toBe(200);
      expect((await signedCall(gateway, "crm")).status).toBe(200);
      expect((await signedCall(gateway, "erp")).status).toBe(200);
      expect(legacy.requests.map((request) => request.url)).toEqual(expect.arrayContaining(["/crm", "/erp-v2"]));
      expect(slow.requests.length).toBe(1);
      const text = await (await fetch(`${adminUrl(gateway)}/metrics`)).text();
      expect(sample(text, 'actiongate_config_reloads_total{result="success"}')).toBe(1);
      expect(sample(text, "actiongate_config_last_reload_success")).toBe(1);
    } finally {
      expect(await gateway.stop()).toBe(0);
      await slow.close();
    }
  });

  test("SIGHUP with a broken file: refused with its problems logged, the old config keeps serving", async () => {
    const cwd = tempDir({ "config.yaml": `${staticKey}routes:\n${route("erp", `${legacy.url}/erp`)}` });
    const gateway = await spawnGateway(["serve", "--config", "config.yaml"], { cwd });
    try {
      writeFileSync(join(cwd, "config.yaml"), `${staticKey}routes:\n${route("erp", "not a url")}`);
      gateway.child.kill("SIGHUP");
      await waitFor(
        () => gateway.logs().some((line) => line.msg.startsWith("config reload refused")),
        5_000,
        "the refusal",
      );
      const refused = gateway.logs().find((line) => line.msg.startsWith("config reload refused"))!;
      expect(refused.level).toBe("error");
      expect(refused.problems).toEqual([
        expect.stringMatching(
          /config\.yaml:\d+:\d+ routes\[0\] \(erp\)\.target\.url: must be an absolute http\(s\) URL/,
        ),
      ]);
      expect(gateway.child.exitCode).toBeNull();
      expect((await signedCall(gateway, "erp")).status).toBe(200);
      const text = await (await fetch(`${adminUrl(gateway)}/metrics`)).text();
      expect(sample(text, 'actiongate_config_reloads_total{result="failure"}')).toBe(1);
      expect(sample(text, "actiongate_config_last_reload_success")).toBe(0);
    } finally {
      expect(await gateway.stop()).toBe(0);
    }
  });

  test("--watch picks up a change of the file without a signal (an editor's rename included)", async () => {
    const cwd = tempDir({ "config.yaml": `${staticKey}routes:\n${route("erp", `${legacy.url}/erp`)}` });
    const gateway = await spawnGateway(["serve", "--config", "config.yaml", "--watch"], { cwd });
    try {
      expect((await signedCall(gateway, "crm")).status).toBe(404);
      // Written the way editors save: a new file renamed over the old one.
      writeFileSync(
        join(cwd, "config.yaml.tmp"),
        `${staticKey}routes:\n${route("erp", `${legacy.url}/erp`)}${route("crm", `${legacy.url}/crm`)}`,
      );
      renameSync(join(cwd, "config.yaml.tmp"), join(cwd, "config.yaml"));
      await waitFor(() => gateway.logs().some((line) => line.msg === "config reloaded"), 5_000, "the watch reload");
      expect(gateway.logs().find((line) => line.msg === "config reloaded")).toMatchObject({
        trigger: "watch",
        routes: ["erp", "crm"],
      });
      expect((await signedCall(gateway, "crm")).status).toBe(200);

      // A second write of the same content is not a reload.
      writeFileSync(
        join(cwd, "config.yaml"),
        `${staticKey}routes:\n${route("erp", `${legacy.url}/erp`)}${route("crm", `${legacy.url}/crm`)}`,
      );
      await new Promise((resolve) => setTimeout(resolve, 800));
      expect(gateway.logs().filter((line) => line.msg === "config reloaded").length).toBe(1);
    } finally {
      expect(await gateway.stop()).toBe(0);
    }
  });
});
