import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { connect } from "node:tls";
import { generateTestCertificates, type TestCertificates } from "../support/certs.ts";
import { type GatewayProcess, runBinary, spawnGateway, tempDir } from "../support/gateway.ts";
import { fixturePayload, signedHeaders } from "../support/signing.ts";

/**
 * End-to-end through the compiled binary: the gateway serving HTTPS (`server.tls`) to a caller that
 * trusts the test CA, delivering over mutual TLS to a legacy system that requires a client
 * certificate, and the request hardening (413, 408, 431, 403) as a caller sees it.
 */
const HMAC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
let certs: TestCertificates;
let legacy: Server;
const received: string[] = [];
let gateway: GatewayProcess;
let base: string;

beforeAll(async () => {
  certs = generateTestCertificates();
  legacy = createServer(
    { cert: certs.serverCert, key: certs.serverKey, ca: certs.ca, requestCert: true, rejectUnauthorized: true },
    (req, res) => {
      let body = "";
      req.on("data", (chunk) => (body += chunk));
      req.on("end", () => {
        received.push(body);
        res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
      });
    },
  );
  await new Promise<void>((resolve) => legacy.listen(0, "127.0.0.1", resolve));
  const legacyUrl = `https://127.0.0.1:${(legacy.address() as AddressInfo).port}`;
  // The certificates sit beside the config, named relative to it, as an operator would.
  const dir = certs.dir;
  await Bun.write(
    `${dir}/config.yaml`,
    `
server:
  host: 127.0.0.1
  port: 0
  max_body_size: 32kb
  body_timeout: 1s
  max_header_count: 30
  tls: { cert_file: server.pem, key_file: server-key.pem }
verification: { secrets: ["${HMAC_SECRET}"], public_key: "whpk_${Buffer.alloc(32, 7).toString("base64")}" }
routes:
  - name: mtls
    transform: '{ "contract": data.entity.contract_number }'
    target: { type: http, url: "${legacyUrl}/erp", timeout: 3s, tls: { ca_file: ca.pem, cert_file: client.pem, key_file: client-key.pem } }
  - name: no-client-cert
    target: { type: http, url: "${legacyUrl}/erp", timeout: 3s, tls: { ca_file: ca.pem } }
`,
  );
  gateway = await spawnGateway(["serve", "--config", "config.yaml"], { cwd: dir });
  base = `https://127.0.0.1:${gateway.port}`;
});

afterAll(async () => {
  await gateway?.stop();
  legacy.closeAllConnections();
  legacy.close();
});

function signed(extraHeaders: Record<string, string> = {}) {
  const body = JSON.stringify(fixturePayload());
  return { body, headers: signedHeaders(body, { hmacSecret: HMAC_SECRET, extraHeaders }) };
}

/** fetch over HTTPS trusting only the test CA (Bun's `tls` option). */
function httpsFetch(url: string, init: RequestInit = {}): Promise<Response> {
  return fetch(url, { ...init, tls: { ca: certs.ca } } as RequestInit);
}

/** Raw bytes over TLS; collects the answer until the gateway closes the connection. */
function rawTls(bytes: string, waitMs: number): Promise<{ text: string; closed: boolean; elapsedMs: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port: gateway.port, ca: certs.ca, servername: "localhost" }, () =>
      socket.write(bytes),
    );
    let text = "";
    socket.on("data", (chunk) => (text += chunk.toString("utf8")));
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, closed: false, elapsedMs: Date.now() - started });
    }, waitMs);
    socket.on("close", () => {
      clearTimeout(timer);
      resolve({ text, closed: true, elapsedMs: Date.now() - started });
    });
    socket.on("error", () => {});
  });
}

describe("TLS on both sides", () => {
  test("a signed call over HTTPS is delivered to the target over mutual TLS", async () => {
    const { body, headers } = signed();
    const response = await httpsFetch(`${base}/actions/mtls`, { method: "POST", body, headers });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({});
    expect(JSON.parse(received.at(-1)!)).toEqual({ contract: fixturePayload().data.entity.contract_number });
  });

  test("a caller that does not trust the gateway's CA cannot connect", async () => {
    const { body, headers } = signed();
    await expect(fetch(`${base}/actions/mtls`, { method: "POST", body, headers })).rejects.toThrow();
  });

  test("without a client certificate the target refuses: 502 in epilot's shape, no host named", async () => {
    const count = received.length;
    const { body, headers } = signed();
    const response = await httpsFetch(`${base}/actions/no-client-cert`, { method: "POST", body, headers });
    expect(response.status).toBe(502);
    const text = await response.text();
    expect((JSON.parse(text) as any).error_output.error_code).toBe("CUSTOM_ACTION_ERROR");
    expect(text).not.toContain("127.0.0.1");
    expect(received.length).toBe(count);
  });
});

describe("request hardening through the binary", () => {
  test("a body over max_body_size gets 413", async () => {
    const { headers } = signed();
    const response = await httpsFetch(`${base}/actions/mtls`, { method: "POST", body: "x".repeat(40_000), headers });
    expect(response.status).toBe(413);
    expect(((await response.json()) as any).error_output.error_reason).toBe(
      "The body is larger than the limit of 32768 bytes",
    );
  });

  test("a sender that stalls mid-body gets 408 after body_timeout and the connection is closed", async () => {
    const result = await rawTls(
      `POST /actions/mtls HTTP/1.1\r\nHost: localhost\r\nContent-Length: 500\r\n\r\n{"type":`,
      5_000,
    );
    expect(result.text).toStartWith("HTTP/1.1 408");
    expect(result.text).toContain('"error_code":"CUSTOM_ACTION_ERROR"');
    expect(result.closed).toBe(true);
    expect(result.elapsedMs).toBeGreaterThanOrEqual(900);
    expect(result.elapsedMs).toBeLessThan(4_000);
  });

  test("too many headers get 431", async () => {
    const { body, headers } = signed(Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`x-h${i}`, "1"])));
    const response = await httpsFetch(`${base}/actions/mtls`, { method: "POST", body, headers });
    expect(response.status).toBe(431);
    expect(((await response.json()) as any).error_output.error_info.outcome).toBe("headers_too_large");
  });

  test("allowed_ips refuses 127.0.0.1 when only 10.0.0.0/8 may call (403), and validate reports a bad CIDR at its line", async () => {
    const dir = tempDir({
      "config.yaml": `server: { host: 127.0.0.1, port: 0, allowed_ips: ["10.0.0.0/8"] }
verification: { secrets: ["${HMAC_SECRET}"], public_key: "whpk_${Buffer.alloc(32, 7).toString("base64")}" }
routes:
  - name: erp
    target: { type: http, url: "http://127.0.0.1:1/erp" }
`,
      "bad.yaml": `server:
  allowed_ips:
    - 10.0.0.0/8
    - 10.0.0.0/40
routes:
  - name: erp
    target: { type: http, url: "http://127.0.0.1:1/erp" }
`,
    });
    const plain = await spawnGateway(["serve", "--config", "config.yaml"], { cwd: dir });
    try {
      const { body, headers } = signed();
      const response = await fetch(`${plain.url}/actions/erp`, { method: "POST", body, headers });
      expect(response.status).toBe(403);
      expect(((await response.json()) as any).error_output.error_reason).toBe("This address may not call actiongate");
    } finally {
      await plain.stop();
    }
    const validate = await runBinary(["validate", "--config", "bad.yaml"], { cwd: dir });
    expect(validate.code).toBe(1);
    expect(validate.stdout + validate.stderr).toContain(
      'bad.yaml:4:7 server.allowed_ips[1]: "10.0.0.0/40" has a bad prefix length; it must be 0 to 32',
    );
  });
});
