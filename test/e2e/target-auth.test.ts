import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdirSync } from "node:fs";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { generateTestCertificates } from "../support/certs.ts";
import { type ForwardProxy, startForwardProxy } from "../support/forward-proxy.ts";
import { BINARY, type GatewayProcess, runBinary, spawnGateway, tempDir, waitFor } from "../support/gateway.ts";
import { type OAuth2Server, startOAuth2Server } from "../support/oauth2-server.ts";
import { type RecordingServer, startRecordingServer } from "../support/recording-server.ts";
import { type SapGateway, startSapGateway } from "../support/sap-gateway.ts";
import { fixturePayload, generateTestKeyPair, signedHeaders } from "../support/signing.ts";

/**
 * Target authentication, CSRF, rate limits and proxies through the compiled binary, on sync and
 * async routes: a real OAuth2 token server, a SAP-like server enforcing CSRF token and cookie, a
 * forward proxy on loopback (an http target and an https one with a test CA), epilot's resume
 * through epilot.proxy, and /metrics.
 */

// Async deliveries with backoff and a breaker's cool-down take a few seconds on a busy machine.
setDefaultTimeout(20_000);

const keys = generateTestKeyPair();
const certs = generateTestCertificates();
const CLIENT_SECRET = "bc-client-s3cret";
const SAP_PASSWORD = "sap-pa55word";
const PROXY_PASSWORD = "pr0xy-pa55";
const SECRETS = { CLIENT_SECRET, SAP_PASSWORD, PROXY_PASSWORD };

let idp: OAuth2Server;
let sap: SapGateway;
let plain: RecordingServer;
let limited: RecordingServer;
let epilot: RecordingServer;
let proxy: ForwardProxy;
let tlsServer: HttpsServer;
let tlsRequests: { url: string; body: string }[];
let tlsUrl: string;
let gateway: GatewayProcess;
let dir: string;
const limitedArrivals: number[] = [];

const config = () => `
server: { host: 127.0.0.1, port: 0, shutdown_timeout: 3s }
admin: { host: 127.0.0.1, port: 0 }
verification: { public_key: "${keys.whpk}" }
store: { path: ./data/actiongate.db }
epilot:
  callback_hosts: ["127.0.0.1:${epilot.port}"]
  entity_api_url: ${epilot.url}
  timeout: 2s
  proxy: { url: "${proxy.url}", username: egress, password: "\${PROXY_PASSWORD}" }
routes:
  - name: oauth-sync
    transform: '{ "contract": data.entity.contract_number }'
    target:
      type: http
      url: ${idp.url}/api/contracts
      timeout: 2s
      auth: { type: oauth2_client_credentials, token_url: "${idp.tokenUrl}", client_id: bc-gw, client_secret: "\${CLIENT_SECRET}", scope: erp.write }
  - name: oauth-async
    transform: '{ "contract": data.entity.contract_number }'
    target:
      type: http
      url: ${idp.url}/api/async-contracts
      timeout: 2s
      auth: { type: oauth2_client_credentials, token_url: "${idp.tokenUrl}", client_id: bc-gw, client_secret: "\${CLIENT_SECRET}", client_auth: basic }
    delivery:
      mode: async
      max_attempts: 20
      backoff: { initial: 100ms, max: 300ms }
      # Token failures count against the breaker; a short cool-down lets the test see it close again.
      circuit_breaker: { failure_threshold: 3, cooldown: 500ms }
  - name: sap-sync
    transform: '{ "BusinessPartnerCategory": "1" }'
    target:
      type: http
      url: ${sap.serviceUrl}A_BusinessPartner
      auth: { type: basic, username: gw-user, password: "\${SAP_PASSWORD}" }
      csrf: { fetch_url: "${sap.serviceUrl}" }
  - name: sap-soap-async
    transform: '{ "Name": data.entity.contract_number }'
    target:
      type: soap
      url: ${sap.serviceUrl}soap
      operation: Create
      namespace: "urn:sap"
      basic_auth: { username: gw-user, password: "\${SAP_PASSWORD}" }
      csrf: { fetch_url: "${sap.serviceUrl}" }
    delivery: { mode: async, backoff: { initial: 50ms, max: 100ms } }
  - name: limited-sync
    target:
      type: http
      url: ${limited.url}/sync
      rate_limit: { requests: 1, per: 30s, max_wait: 200ms }
  - name: limited-async
    target:
      type: http
      url: ${limited.url}/async
      rate_limit: { requests: 1, per: 400ms, max_wait: 100ms }
    delivery: { mode: async, max_attempts: 1, concurrency: 4 }
  - name: proxied-http
    target:
      type: http
      url: ${plain.url}/via-proxy
      proxy: { url: "${proxy.url}", username: egress, password: "\${PROXY_PASSWORD}" }
  - name: proxied-https-async
    target:
      type: http
      url: ${tlsUrl}/secure
      tls: { ca_file: ${certs.caFile} }
      proxy: "http://egress:\${PROXY_PASSWORD}@127.0.0.1:${proxy.port}"
    delivery: { mode: async, backoff: { initial: 50ms, max: 100ms } }
`;

function send(route: string, mutate?: (payload: Record<string, any>) => void): Promise<Response> {
  const payload = fixturePayload();
  payload.data.callback_post_url = `${epilot.url}/v1/automation/public/executions:resume`;
  mutate?.(payload);
  const text = JSON.stringify(payload);
  return fetch(`${gateway.url}/actions/${route}`, {
    method: "POST",
    body: text,
    headers: signedHeaders(text, { privateKey: keys.privateKey }),
  });
}

/** Log lines of one route's events, by message. */
const logsOf = (route: string, msg: string) =>
  gateway.logs().filter((line) => line.route === route && line.msg === msg);

beforeAll(async () => {
  if (!existsSync(BINARY)) throw new Error(`${BINARY} is missing: run \`npm run build\``);
  idp = await startOAuth2Server({ clientId: "bc-gw", clientSecret: CLIENT_SECRET, expiresInSeconds: 3600 });
  sap = await startSapGateway({ basic: { username: "gw-user", password: SAP_PASSWORD } });
  plain = await startRecordingServer();
  limited = await startRecordingServer(() => {
    limitedArrivals.push(performance.now());
    return {};
  });
  epilot = await startRecordingServer({ status: 200, body: {} });
  proxy = await startForwardProxy({ credentials: { username: "egress", password: PROXY_PASSWORD } });
  tlsRequests = [];
  tlsServer = createHttpsServer({ cert: certs.serverCert, key: certs.serverKey }, (req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      tlsRequests.push({ url: req.url ?? "", body });
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"ok":true}');
    });
  });
  await new Promise<void>((resolve) => tlsServer.listen(0, "127.0.0.1", resolve));
  tlsUrl = `https://127.0.0.1:${(tlsServer.address() as AddressInfo).port}`;
  dir = tempDir();
  mkdirSync(join(dir, "data"));
  await Bun.write(join(dir, "config.yaml"), config());
  gateway = await spawnGateway(["--config", "config.yaml"], { cwd: dir, env: SECRETS });
}, 60_000);

afterAll(async () => {
  await gateway?.stop();
  for (const server of [idp, sap, plain, limited, epilot, proxy]) await server?.close();
  tlsServer?.closeAllConnections();
  tlsServer?.close();
});

describe("OAuth2 client credentials (binary)", () => {
  test("sync: the call carries a fetched Bearer token; a revoked one is renewed on the 401 and the call retried", async () => {
    const first = await send("oauth-sync");
    expect(first.status).toBe(200);
    const token = idp.issued.at(-1)!;
    expect(idp.apiRequests.at(-1)).toMatchObject({ url: "/api/contracts", token, accepted: true });
    expect(idp.tokenRequests.at(-1)).toMatchObject({ clientAuth: "body", form: { scope: "erp.write" } });
    idp.revokeAll();
    const second = await send("oauth-sync");
    expect(second.status).toBe(200);
    expect(idp.apiRequests.slice(-2).map((request) => request.accepted)).toEqual([false, true]);
  });

  test("sync: a failing token endpoint is a 502 whose reason names neither host nor secret", async () => {
    idp.revokeAll();
    idp.failTokenEndpoint(500);
    try {
      const response = await send("oauth-sync");
      expect(response.status).toBe(502);
      const body = (await response.json()) as any;
      expect(body.error_output.error_code).toBe("CUSTOM_ACTION_ERROR");
      expect(body.error_output.error_reason).toBe(
        "The target of route oauth-sync could not be reached: its access token could not be obtained (the token endpoint answered HTTP 500, server_error)",
      );
      const text = JSON.stringify(body);
      expect(text).not.toContain("127.0.0.1");
      expect(text).not.toContain(CLIENT_SECRET);
    } finally {
      idp.failTokenEndpoint(undefined);
    }
  });

  test("async: a token endpoint that fails is retried with backoff, then the event is delivered (client_auth basic)", async () => {
    idp.failTokenEndpoint(503, "temporarily_unavailable");
    const before = idp.tokenRequests.length;
    const response = await send("oauth-async", (payload) => (payload.data.entity.contract_number = "ASYNC-OAUTH"));
    expect(response.status).toBe(202);
    await waitFor(() => logsOf("oauth-async", "attempt failed, will retry").length >= 2, 10_000, "two failed attempts");
    idp.failTokenEndpoint(undefined);
    await waitFor(
      () => idp.apiRequests.some((request) => request.url === "/api/async-contracts" && request.accepted),
      10_000,
      "the delivery",
    );
    const retried = logsOf("oauth-async", "attempt failed, will retry")[0]!;
    expect(retried.outcome).toBe("target_unreachable");
    expect(retried.error).toBe(
      "its access token could not be obtained (the token endpoint answered HTTP 503, temporarily_unavailable)",
    );
    expect(idp.tokenRequests.slice(before).at(-1)!.clientAuth).toBe("basic");
  });
});

describe("CSRF (binary)", () => {
  test("sync http: token and session cookie fetched once, sent on each call; an expired session is refetched once", async () => {
    const before = sap.requests.length;
    expect((await send("sap-sync")).status).toBe(200);
    expect((await send("sap-sync")).status).toBe(200);
    sap.expireSessions();
    expect((await send("sap-sync")).status).toBe(200);
    expect(sap.requests.slice(before).map((request) => `${request.method} ${request.verdict}`)).toEqual([
      "GET fetched",
      "POST accepted",
      "POST accepted",
      "POST no_session",
      "GET fetched",
      "POST accepted",
    ]);
  });

  test("async soap (basic_auth, the deprecated alias): the envelope goes with the token and cookie", async () => {
    const before = sap.requests.length;
    expect((await send("sap-soap-async")).status).toBe(202);
    await waitFor(
      () =>
        sap.requests.slice(before).some((request) => request.url.endsWith("/soap") && request.verdict === "accepted"),
      10_000,
      "the SOAP call",
    );
    const call = sap.requests.slice(before).find((request) => request.url.endsWith("/soap"))!;
    expect(call.body).toContain("<tns:Name>2026-0042</tns:Name>");
    expect(call.cookie).toContain("SAP_SESSIONID_ERP_100=");
    expect(gateway.logs().some((line) => String(line.msg).includes("basic_auth is deprecated"))).toBe(true);
  });
});

describe("rate limit (binary)", () => {
  test("sync: a call beyond max_wait gets 503 rate_limited in epilot's shape at once; /metrics shows it", async () => {
    expect((await send("limited-sync")).status).toBe(200);
    const started = Date.now();
    const response = await send("limited-sync");
    expect(response.status).toBe(503);
    const body = (await response.json()) as any;
    expect(body.error_output).toMatchObject({
      error_code: "CUSTOM_ACTION_ERROR",
      error_info: { route: "limited-sync", outcome: "rate_limited" },
    });
    expect(body.error_output.error_reason).toMatch(
      /^The target's rate limit is reached for route limited-sync; try again in \d+s$/,
    );
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(limited.requests.filter((request) => request.url === "/sync")).toHaveLength(1);

    const admin = gateway.logs().find((line) => line.msg === "listening")!.admin_port;
    const metrics = await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
    expect(metrics).toContain('actiongate_rate_limit_held_back{route="limited-sync"} 1');
    expect(metrics).toContain('actiongate_rate_limit_refused_total{route="limited-sync"} 1');
    expect(metrics).toContain('actiongate_calls_total{route="limited-sync",outcome="rate_limited"} 1');
  });

  test("async: 4 events with 1 per 400ms arrive spaced, each on its first attempt (held back, no attempt spent)", async () => {
    limitedArrivals.length = 0;
    for (let i = 0; i < 4; i++) expect((await send("limited-async")).status).toBe(202);
    await waitFor(() => limitedArrivals.length >= 4, 15_000, "four deliveries");
    const times = limitedArrivals.map((at) => at - limitedArrivals[0]!);
    // 15ms of slack for the jitter between a start and its arrival.
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(385);
    await waitFor(() => logsOf("limited-async", "event done").length >= 4, 5_000, "four events done");
    // max_attempts is 1: a held-back event that spent an attempt would be a dead letter.
    expect(logsOf("limited-async", "dead letter")).toHaveLength(0);
    expect(logsOf("limited-async", "event done").map((line) => line.attempt)).toEqual([1, 1, 1, 1]);
  });
});

describe("proxy (binary)", () => {
  test("sync http target: through the proxy with its credentials; the target never sees them", async () => {
    const before = proxy.requests.length;
    expect((await send("proxied-http")).status).toBe(200);
    const proxied = proxy.requests.slice(before);
    expect(proxied.map((request) => `${request.method} ${request.target}`)).toContain(`POST ${plain.url}/via-proxy`);
    expect(proxied.every((request) => request.allowed)).toBe(true);
    expect(plain.requests.at(-1)!.headers["proxy-authorization"]).toBeUndefined();
  });

  test("async https target with a test CA: CONNECT through the proxy; then the resume goes through epilot.proxy", async () => {
    const before = proxy.requests.length;
    const resumes = () => epilot.requests.filter((request) => request.url.includes("executions:resume")).length;
    const resumedBefore = resumes();
    expect((await send("proxied-https-async")).status).toBe(202);
    await waitFor(() => tlsRequests.length > 0 && resumes() > resumedBefore, 10_000, "delivery and resume");
    expect(tlsRequests.at(-1)!.url).toBe("/secure");
    const proxied = proxy.requests.slice(before).map((request) => `${request.method} ${request.target}`);
    expect(proxied).toContain(`CONNECT ${new URL(tlsUrl).host}`);
    expect(proxied).toContain(`POST ${epilot.url}/v1/automation/public/executions:resume`);
  });
});

describe("routes and logs (binary)", () => {
  test("routes shows auth, CSRF, rate limit and proxy of each target, never a secret", async () => {
    const result = await runBinary(["routes", "--config", "config.yaml"], { cwd: dir, env: SECRETS });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("auth=oauth2_client_credentials client_id=bc-gw");
    expect(result.stdout).toContain("auth=basic user=gw-user, csrf x-csrf-token");
    expect(result.stdout).toContain("rate 1/30s (wait 200ms)");
    expect(result.stdout).toContain(`proxy ${proxy.url} user=egress`);
    for (const secret of Object.values(SECRETS)) expect(result.stdout).not.toContain(secret);
  });

  test("no token, secret or password in the gateway's logs", () => {
    const text = gateway.stdout() + gateway.stderr();
    for (const secret of [...Object.values(SECRETS), ...idp.issued]) expect(text).not.toContain(secret);
  });
});
