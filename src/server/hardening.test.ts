import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { connect } from "node:net";
import { type InProcessGateway, startInProcessGateway } from "../../test/support/gateway.ts";
import { type RecordingServer, startRecordingServer } from "../../test/support/recording-server.ts";
import { fixturePayload, signedHeaders } from "../../test/support/signing.ts";
import { compileAddressFilter, parseCidr } from "./allowed-ips.ts";

/**
 * Request hardening against a real gateway on 127.0.0.1: the address allow-list (403), header limits
 * (431), the streamed body limit (413) and the body deadline (408). Each refusal is epilot's error
 * shape, nothing reaches the legacy system, and the connection is closed.
 */
const HMAC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
let legacy: RecordingServer;

const config = (server: string) => `
server: { host: 127.0.0.1, port: 0, ${server} }
verification: { secrets: ["${HMAC_SECRET}"], public_key: "whpk_${Buffer.alloc(32, 1).toString("base64")}" }
routes:
  - name: erp
    target: { type: http, url: "${"${LEGACY_URL}"}/erp" }
`;

function signedCall(extraHeaders: Record<string, string> = {}) {
  const body = JSON.stringify(fixturePayload());
  return { body, headers: signedHeaders(body, { hmacSecret: HMAC_SECRET, extraHeaders }) };
}

/** Sends raw bytes and collects everything the gateway writes until it closes the connection. */
function rawExchange(port: number, bytes: string, waitMs: number): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1", () => socket.write(bytes));
    let text = "";
    socket.on("data", (chunk) => (text += chunk.toString("utf8")));
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, closed: false });
    }, waitMs);
    socket.on("close", () => {
      clearTimeout(timer);
      resolve({ text, closed: true });
    });
    socket.on("error", () => {});
  });
}

function errorReason(text: string): string {
  return (JSON.parse(text.slice(text.indexOf("\r\n\r\n") + 4)) as any).error_output.error_reason;
}

beforeAll(async () => {
  legacy = await startRecordingServer();
});
afterAll(() => legacy.close());
afterEach(() => {
  legacy.requests.length = 0;
});

describe("server.allowed_ips (403)", () => {
  test("a client outside the list gets 403 in epilot's shape, before anything is read or forwarded", async () => {
    const gateway = await startInProcessGateway(config(`allowed_ips: ["10.0.0.0/8", "2001:db8::/32"]`), {
      LEGACY_URL: legacy.url,
    });
    try {
      const { body, headers } = signedCall();
      const response = await fetch(`${gateway.url}/actions/erp`, { method: "POST", body, headers });
      expect(response.status).toBe(403);
      expect(response.headers.get("connection")).toBe("close");
      expect(await response.json()).toEqual({
        error_output: {
          error_code: "CUSTOM_ACTION_ERROR",
          error_reason: "This address may not call actiongate",
          error_info: { outcome: "forbidden" },
        },
      });
      // Every path is guarded, not only /actions.
      expect((await fetch(`${gateway.url}/anything`)).status).toBe(403);
      expect(legacy.requests).toHaveLength(0);
      const line = gateway.logs.find((log) => log.msg === "call" && log.status === 403);
      expect(line?.remote_address).toBe("127.0.0.1");
      expect(line?.outcome).toBe("forbidden");
    } finally {
      await gateway.stop();
    }
  });

  test("a client inside the list is served (loopback as an IPv4-mapped IPv6 CIDR)", async () => {
    const gateway = await startInProcessGateway(config(`allowed_ips: ["10.0.0.0/8", "::ffff:127.0.0.0/104"]`), {
      LEGACY_URL: legacy.url,
    });
    try {
      const { body, headers } = signedCall();
      const response = await fetch(`${gateway.url}/actions/erp`, { method: "POST", body, headers });
      expect(response.status).toBe(200);
      expect(legacy.requests).toHaveLength(1);
    } finally {
      await gateway.stop();
    }
  });
});

describe("header and body limits", () => {
  let gateway: InProcessGateway;
  beforeAll(async () => {
    gateway = await startInProcessGateway(
      config(`max_header_count: 20, max_header_size: 2kb, max_body_size: 64kb, body_timeout: 400ms`),
      {
        LEGACY_URL: legacy.url,
      },
    );
  });
  afterAll(() => gateway.stop());

  test("a signed call within every limit goes through", async () => {
    const { body, headers } = signedCall();
    const response = await fetch(`${gateway.url}/actions/erp`, { method: "POST", body, headers });
    expect(response.status).toBe(200);
    expect(legacy.requests).toHaveLength(1);
  });

  test("more headers than max_header_count get 431 and nothing is forwarded", async () => {
    const extra = Object.fromEntries(Array.from({ length: 25 }, (_, i) => [`x-extra-${i}`, "1"]));
    const { body, headers } = signedCall(extra);
    const response = await fetch(`${gateway.url}/actions/erp`, { method: "POST", body, headers });
    expect(response.status).toBe(431);
    const answer = (await response.json()) as any;
    expect(answer.error_output.error_reason).toMatch(/^The call has \d+ headers; at most 20 are accepted$/);
    expect(answer.error_output.error_info).toEqual({ outcome: "headers_too_large" });
    expect(legacy.requests).toHaveLength(0);
  });

  test("headers larger than max_header_size get 431, without echoing them", async () => {
    const { body, headers } = signedCall({ "x-big": "s3cret".repeat(500) });
    const response = await fetch(`${gateway.url}/actions/erp`, { method: "POST", body, headers });
    expect(response.status).toBe(431);
    const text = await response.text();
    expect((JSON.parse(text) as any).error_output.error_reason).toBe(
      "The headers are larger than the limit of 2048 bytes",
    );
    expect(text).not.toContain("s3cret");
    expect(legacy.requests).toHaveLength(0);
  });

  test("a declared Content-Length over max_body_size gets 413 at once and the connection is closed", async () => {
    const started = Date.now();
    const result = await rawExchange(
      Number(new URL(gateway.url).port),
      `POST /actions/erp HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{"a":`,
      3_000,
    );
    expect(result.text).toStartWith("HTTP/1.1 413");
    expect(errorReason(result.text)).toBe("The body is larger than the limit of 65536 bytes");
    expect(result.closed).toBe(true);
    // Answered without waiting for the body or its deadline.
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  test("a sender that stalls mid-body gets 408 after body_timeout and the connection is closed", async () => {
    const started = Date.now();
    const result = await rawExchange(
      Number(new URL(gateway.url).port),
      `POST /actions/erp HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"type":"exter`,
      3_000,
    );
    const elapsed = Date.now() - started;
    expect(result.text).toStartWith("HTTP/1.1 408");
    expect(errorReason(result.text)).toBe("The body did not arrive within 400 ms");
    expect(result.text.toLowerCase()).toContain("connection: close");
    expect(result.closed).toBe(true);
    expect(elapsed).toBeGreaterThanOrEqual(350);
    expect(elapsed).toBeLessThan(2_000);
    expect(legacy.requests).toHaveLength(0);
    const line = gateway.logs.find((log) => log.msg === "call" && log.status === 408);
    expect(line).toMatchObject({ outcome: "body_timeout", expected_bytes: 1000, route: "erp" });
  });

  test("a chunked sender that stalls gets 408 too, and the log says how much arrived", async () => {
    const result = await rawExchange(
      Number(new URL(gateway.url).port),
      `POST /actions/erp HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\ne\r\n{"type":"exter\r\n`,
      3_000,
    );
    expect(result.text).toStartWith("HTTP/1.1 408");
    expect(result.closed).toBe(true);
    expect(legacy.requests).toHaveLength(0);
    const line = gateway.logs.findLast((log) => log.msg === "call" && log.status === 408);
    expect(line).toMatchObject({ outcome: "body_timeout", received_bytes: 14, route: "erp" });
  });

  test("a chunked body that grows past max_body_size gets 413 once the limit is passed", async () => {
    const chunk = "x".repeat(40_000);
    const size = chunk.length.toString(16);
    const result = await rawExchange(
      Number(new URL(gateway.url).port),
      `POST /actions/erp HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${size}\r\n${chunk}\r\n${size}\r\n${chunk}\r\n`,
      3_000,
    );
    expect(result.text).toStartWith("HTTP/1.1 413");
    expect(errorReason(result.text)).toBe("The body is larger than the limit of 65536 bytes");
    expect(legacy.requests).toHaveLength(0);
  });
});

describe("CIDR parsing and matching", () => {
  test("IPv4, IPv6, single addresses and IPv4-mapped clients", () => {
    const allowed = compileAddressFilter(["10.0.0.0/8", "192.168.1.7", "2001:db8::/32", "::1", "172.16.0.0/12"]);
    expect(allowed("10.255.0.1")).toBe(true);
    expect(allowed("11.0.0.1")).toBe(false);
    expect(allowed("192.168.1.7")).toBe(true);
    expect(allowed("192.168.1.8")).toBe(false);
    expect(allowed("172.31.255.255")).toBe(true);
    expect(allowed("172.32.0.0")).toBe(false);
    expect(allowed("2001:db8:ffff::1")).toBe(true);
    expect(allowed("2001:db9::1")).toBe(false);
    expect(allowed("::1")).toBe(true);
    expect(allowed("::ffff:10.1.2.3")).toBe(true);
    expect(allowed("::ffff:a01:203")).toBe(true);
    expect(allowed("::ffff:11.1.2.3")).toBe(false);
    expect(allowed("fe80::1%eth0")).toBe(false);
    expect(allowed("")).toBe(false);
    expect(allowed("not an address")).toBe(false);
  });

  test("an empty list allows every address, even an unknown one", () => {
    expect(compileAddressFilter([])("")).toBe(true);
  });

  test("bad CIDRs are refused with a reason", () => {
    for (const bad of [
      "10.0.0.0/33",
      "10.0.0/8",
      "256.0.0.1",
      "010.0.0.1",
      "::1/129",
      "1::2::3",
      "10.0.0.0/",
      "10.0.0.0/-1",
      "abc",
      "1:2:3:4:5:6:7:8:9",
    ]) {
      expect(() => parseCidr(bad)).toThrow(/is not an IPv4 or IPv6 address or CIDR|has a bad prefix length/);
    }
    expect(parseCidr("::ffff:10.0.0.0/104")).toEqual({ bytes: new Uint8Array([10, 0, 0, 0]), prefix: 8 });
    expect(parseCidr("0.0.0.0/0").prefix).toBe(0);
  });
});
