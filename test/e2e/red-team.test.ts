import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { type GatewayProcess, runBinary, spawnGateway, tempDir, waitFor } from "../support/gateway.ts";
import { type RecordingServer, startRecordingServer } from "../support/recording-server.ts";
import { fixturePayload, generateTestKeyPair, signedHeaders } from "../support/signing.ts";

/**
 * Findings of the red-team review of the compiled binary (issue 12), each answered black-box the way
 * the review found it: what the caller gets, what the legacy system gets, what the log says.
 */
const keys = generateTestKeyPair();
let erp: RecordingServer;
let gateway: GatewayProcess;
let dir: string;

const config = (erpUrl: string) => `
server: { host: 127.0.0.1, port: 0, max_body_size: 64kb, body_memory_limit: 160kb, body_timeout: 3s, max_header_count: 50 }
admin: { host: 127.0.0.1, port: 0 }
verification: { public_key: "${keys.whpk}" }
store: { path: ./data/store.db }
routes:
  - name: erp
    transform: '{ "contract": data.entity.contract_number }'
    target: { type: http, url: "${erpUrl}/api/{{ data.entity.contract_number }}", headers: { X-Name: "{{ data.entity.name }}" } }
    delivery: { circuit_breaker: { failure_threshold: 2, cooldown: 60s } }
  - name: computed
    target: { type: http, url: "${erpUrl}/c/{{ data.entity.n + 1 }}" }
  - name: computed-async
    target: { type: http, url: "${erpUrl}/c/{{ data.entity.n + 1 }}" }
    delivery: { mode: async }
`;

beforeAll(async () => {
  erp = await startRecordingServer({ body: { ok: true } });
  dir = tempDir({ "config.yaml": config(erp.url) });
  gateway = await spawnGateway(["serve", "--config", "config.yaml"], { cwd: dir });
});
afterAll(async () => {
  await gateway.stop();
  await erp.close();
});

function signedCall(route: string, edit: (raw: Record<string, any>) => void = () => {}): Promise<Response> {
  const raw = fixturePayload();
  edit(raw);
  const text = JSON.stringify(raw);
  return fetch(`${gateway.url}/actions/${route}`, {
    method: "POST",
    body: text,
    headers: signedHeaders(text, { privateKey: keys.privateKey }),
  });
}

/** Sends raw bytes on a new connection and resolves with what came back (or "" when nothing did in time). */
function rawExchange(head: string, body = "", waitMs = 2_000): Promise<{ text: string; socket: Socket }> {
  return new Promise((resolve) => {
    const socket = connect(gateway.port, "127.0.0.1");
    let text = "";
    const done = () => resolve({ text, socket });
    const timer = setTimeout(done, waitMs);
    socket.on("data", (chunk) => {
      text += chunk.toString("latin1");
      if (text.includes("\r\n\r\n")) {
        const length = /content-length: (\d+)/i.exec(text)?.[1];
        if (length && text.length >= text.indexOf("\r\n\r\n") + 4 + Number(length)) {
          clearTimeout(timer);
          done();
        }
      }
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      clearTimeout(timer);
      done();
    });
    socket.write(head + body);
  });
}

function errorOutput(text: string): { error_code: string; error_reason: string } {
  return (JSON.parse(text.slice(text.indexOf("\r\n\r\n") + 4)) as any).error_output;
}

describe("red-team findings, through the binary", () => {
  test("12.1: a placeholder that throws for this payload is 400 on a sync route and on an async accept", async () => {
    const before = erp.requests.length;
    const sync = await signedCall("computed", (raw) => (raw.data.entity.n = "seven"));
    expect(sync.status).toBe(400);
    expect(((await sync.json()) as any).error_output.error_reason).toStartWith(
      "Route computed cannot send this payload: a {{ }} placeholder failed for this payload",
    );
    const accepted = await signedCall("computed-async", (raw) => (raw.data.entity.n = "seven"));
    expect(accepted.status).toBe(400);
    expect(erp.requests.length).toBe(before);
    // A payload the placeholder works for is delivered as before.
    expect((await signedCall("computed", (raw) => (raw.data.entity.n = 41))).status).toBe(200);
    expect(erp.requests.at(-1)!.url).toBe("/c/42");
  });

  test("12.4: a header value HTTP cannot carry is the payload's fault (400) and never opens the breaker", async () => {
    for (let i = 0; i < 3; i++) {
      const refused = await signedCall("erp", (raw) => (raw.data.entity.name = "Łukasz Żółć"));
      expect(refused.status).toBe(400);
      expect(((await refused.json()) as any).error_output.error_reason).toContain("an HTTP header cannot carry");
    }
    const control = await signedCall("erp", (raw) => (raw.data.entity.name = "a\u001b[2Jb"));
    expect(control.status).toBe(400);
    // Threshold 2: had the three refusals counted against the target, this call would get 503.
    const ok = await signedCall("erp", (raw) => (raw.data.entity.name = "Jürgen"));
    expect(ok.status).toBe(200);
    expect(erp.requests.at(-1)!.headers["x-name"]).toBe("Jürgen");
  });

  test("12.12: a Content-Length far over max_body_size gets 413 in epilot's shape, logged and counted", async () => {
    const { text, socket } = await rawExchange(
      "POST /actions/erp HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\nContent-Length: 10737418240\r\n\r\n",
      "{",
    );
    socket.destroy();
    expect(text).toStartWith("HTTP/1.1 413");
    expect(errorOutput(text)).toMatchObject({
      error_code: "CUSTOM_ACTION_ERROR",
      error_reason: "The body is larger than the limit of 65536 bytes",
    });
    await waitFor(() => gateway.logs().some((line) => line.outcome === "too_large" && line.declared_length === true));
    const metrics = await (await fetch(`http://127.0.0.1:${gateway.adminPort}/metrics`)).text();
    expect(metrics).toMatch(/^actiongate_calls_total\{route="erp",outcome="too_large"\} [1-9]/m);
  });

  test("12.13: one header name repeated past max_header_count is 431, as many names would be", async () => {
    let head = "POST /actions/erp HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n";
    for (let i = 0; i < 60; i++) head += `X-Repeat: ${i}\r\n`;
    const { text, socket } = await rawExchange(`${head}\r\n`);
    socket.destroy();
    expect(text).toStartWith("HTTP/1.1 431");
    expect(errorOutput(text).error_reason).toMatch(/^The call has \d+ headers; at most 50 are accepted$/);
  });

  test("12.14: what an unsigned caller puts in the URL reaches the log cut to 128 characters", async () => {
    const long = "r".repeat(15_000);
    const response = await fetch(`${gateway.url}/actions/${long}`, { method: "POST", body: "{}" });
    expect(response.status).toBe(401);
    await waitFor(() => gateway.stdout().includes("requested_route"));
    const line = gateway
      .stdout()
      .split("\n")
      .find((text) => text.includes("requested_route"))!;
    expect(line.length).toBeLessThan(1_000);
    expect((JSON.parse(line) as any).requested_route).toBe(`${"r".repeat(128)}…(15000 characters)`);
  });

  test("12.6: unsigned clients stalling bodies cannot hold more than body_memory_limit; signed calls keep flowing", async () => {
    // Two stalled bodies of 60 KB each hold 120 KB of the 160 KB budget...
    const stalled: Socket[] = [];
    for (let i = 0; i < 2; i++) {
      const socket = connect(gateway.port, "127.0.0.1");
      socket.on("error", () => {});
      socket.write(
        "POST /actions/erp HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\nContent-Length: 61440\r\n\r\n{",
      );
      stalled.push(socket);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
    // ...so a third is refused at once, in epilot's shape, and its connection closed...
    const { text } = await rawExchange(
      "POST /actions/erp HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\nContent-Length: 61440\r\n\r\n",
      "{",
      1_000,
    );
    expect(text).toStartWith("HTTP/1.1 503");
    expect(errorOutput(text).error_reason).toBe("actiongate is receiving too many call bodies at once; please retry");
    // ...while a signed call (a few KB) still fits and is delivered.
    const named = (raw: Record<string, any>) => {
      raw.data.entity.name = "Jane";
    };
    expect((await signedCall("erp", named)).status).toBe(200);
    for (const socket of stalled) socket.destroy();
    // Once the stalled bodies are gone, the budget is back.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await signedCall("erp", named)).status).toBe(200);
  });

  test("12.18: a body that is not JSON is refused without quoting it", async () => {
    const text = '{"type": "external_integration", "api_key": s3cr3t-value}';
    const response = await fetch(`${gateway.url}/actions/erp`, {
      method: "POST",
      body: text,
      headers: signedHeaders(text, { privateKey: keys.privateKey }),
    });
    expect(response.status).toBe(400);
    expect(await response.text()).not.toContain("s3cr3t");
    expect(gateway.stdout()).not.toContain("s3cr3t");
  });
});

describe("12.11: validate refuses {{ }} in a target's scheme, host or port", () => {
  test.each(["http://{{ data.entity.host }}/api", "http://erp.internal:{{ data.entity.port }}/api"])(
    "%s",
    async (url) => {
      const folder = tempDir();
      writeFileSync(
        join(folder, "config.yaml"),
        `verification: { public_key: "${keys.whpk}" }\nroutes:\n  - name: erp\n    target: { type: http, url: "${url}" }\n`,
      );
      const result = await runBinary(["validate", "--config", "config.yaml"], { cwd: folder });
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(
        "routes[0] (erp).target.url: may hold {{ }} placeholders only in the path, query or fragment, not in the scheme, host or port",
      );
    },
  );
});
