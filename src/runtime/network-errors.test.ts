import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import { type AddressInfo, createServer as createTcpServer, type Socket, type Server as TcpServer } from "node:net";
import { join } from "node:path";
import { generateTestCertificates, type TestCertificates } from "../../test/support/certs.ts";
import { createFetchClient, createUndiciClient, type HttpClientOptions, type HttpClientTls } from "./http-client.ts";
import { describeNetworkError } from "./network-errors.ts";

/**
 * Each failure is made for real (a closed port, a peer that hangs up, TLS servers that refuse us)
 * and sent through both runtime clients, so the codes Bun's fetch and undici actually throw are what
 * the mapping is checked against. Reasons must never name the host.
 */

let certs: TestCertificates;
const servers: (TcpServer | HttpsServer)[] = [];
let closedPort: number;
/** Hangs up as soon as the request arrives. */
let hangsUp: string;
/** Sends half an answer, then hangs up. */
let hangsUpMidAnswer: string;
/** Answers with bytes that are not HTTP. */
let speaksNonsense: string;
/** A certificate from our CA, but no client certificate asked for. */
let plainTls: string;
/** Demands a client certificate from our CA. */
let mutualTls: string;
/** Its certificate is its own issuer. */
let selfSigned: string;
/** Valid for 127.0.0.1 and localhost only, listening on 127.0.0.2. */
let wrongName: string;

async function listen<T extends TcpServer | HttpsServer>(server: T, host = "127.0.0.1"): Promise<number> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return (server.address() as AddressInfo).port;
}

function tcp(onData: (socket: Socket) => void): TcpServer {
  return createTcpServer((socket) => {
    socket.on("error", () => {});
    socket.once("data", () => onData(socket));
  });
}

beforeAll(async () => {
  certs = generateTestCertificates();
  const probe = createTcpServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  closedPort = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));

  hangsUp = `http://127.0.0.1:${await listen(tcp((socket) => socket.destroy()))}/`;
  hangsUpMidAnswer = `http://127.0.0.1:${await listen(tcp((socket) => socket.write("HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\nabc", () => socket.destroy())))}/`;
  speaksNonsense = `http://127.0.0.1:${await listen(tcp((socket) => socket.end("NOT HTTP AT ALL\r\n\r\n")))}/`;
  const answer = (_req: unknown, res: { end(body: string): void }) => res.end("ok");
  plainTls = `https://127.0.0.1:${await listen(createHttpsServer({ cert: certs.serverCert, key: certs.serverKey }, answer))}/`;
  mutualTls = `https://127.0.0.1:${await listen(createHttpsServer({ cert: certs.serverCert, key: certs.serverKey, ca: certs.ca, requestCert: true, rejectUnauthorized: true }, answer))}/`;
  const caKey = readFileSync(join(certs.dir, "ca-key.pem"), "utf8");
  selfSigned = `https://127.0.0.1:${await listen(createHttpsServer({ cert: certs.ca, key: caKey }, answer))}/`;
  wrongName = `https://127.0.0.2:${await listen(createHttpsServer({ cert: certs.serverCert, key: certs.serverKey }, answer), "127.0.0.2")}/`;
});
afterAll(() => {
  for (const server of servers) {
    (server as HttpsServer).closeAllConnections?.();
    server.close();
  }
});

const runtimeClients: [string, (options: HttpClientOptions) => ReturnType<typeof createFetchClient>][] = [
  ["fetch (Bun)", createFetchClient],
  ["undici (Deno)", createUndiciClient],
];

describe.each(runtimeClients)("describeNetworkError for real failures through %s", (_name, create) => {
  /** The reason (and code) a request to `url` fails with; fails the test if it is answered. */
  async function failure(url: string, tls?: HttpClientTls): Promise<{ reason: string; code?: string }> {
    const client = create({ connections: 1, connectTimeoutMs: 2_000, ...(tls ? { tls } : {}) });
    try {
      const answer = await client.request({
        url: new URL(url),
        method: "GET",
        headers: {},
        signal: AbortSignal.timeout(5_000),
        maxResponseSize: 1 << 20,
      });
      throw new Error(`expected a failure, got HTTP ${answer.status}`);
    } catch (error) {
      const described = describeNetworkError(error);
      expect(described.isTimeout).toBe(false);
      expect(`${described.reason} ${described.code}`).not.toMatch(/127\.0\.0|localhost|actiongate-test/);
      return { reason: described.reason, ...(described.code ? { code: described.code } : {}) };
    } finally {
      await client.close();
    }
  }
  const trustOurCa: HttpClientTls = { ca: "", rejectUnauthorized: true };
  beforeAll(() => {
    (trustOurCa as { ca: string }).ca = certs.ca;
  });

  test("a closed port: connection refused", async () => {
    expect((await failure(`http://127.0.0.1:${closedPort}/`)).reason).toBe("connection refused");
  });

  test("a target that hangs up before answering, or halfway through the answer: connection closed by the target", async () => {
    expect((await failure(hangsUp)).reason).toBe("connection closed by the target");
    expect((await failure(hangsUpMidAnswer)).reason).toBe("connection closed by the target");
  });

  test("a target that does not speak HTTP: invalid HTTP answer", async () => {
    expect((await failure(speaksNonsense)).reason).toBe("invalid HTTP answer");
  });

  test("a name under .invalid: host not found", async () => {
    expect((await failure("http://actiongate-test.invalid/")).reason).toBe("host not found");
  });

  test("TLS: unknown CA, self-signed, wrong host name, missing client certificate, no TLS at all: TLS handshake failed", async () => {
    const reasons = {
      unknownCa: await failure(plainTls),
      otherCa: await failure(plainTls, { ca: readFileSync(certs.otherCaFile, "utf8"), rejectUnauthorized: true }),
      selfSigned: await failure(selfSigned, trustOurCa),
      wrongName: await failure(wrongName, trustOurCa),
      noClientCert: await failure(mutualTls, trustOurCa),
      notTls: await failure(speaksNonsense.replace("http:", "https:"), trustOurCa),
    };
    // undici (Bun's and Deno's node:tls alike) only sees the peer hang up when TLS 1.3 refuses our missing certificate.
    const missingCertReason =
      create === createUndiciClient ? "connection closed by the target" : "TLS handshake failed";
    for (const [what, described] of Object.entries(reasons)) {
      expect({ what, reason: described.reason }).toEqual({
        what,
        reason: what === "noClientCert" ? missingCertReason : "TLS handshake failed",
      });
    }
  });
});

describe("describeNetworkError for codes older runtimes gave", () => {
  test("Bun's former fetch codes map like their Node counterparts", () => {
    expect(describeNetworkError({ code: "ConnectionRefused" }).reason).toBe("connection refused");
    expect(describeNetworkError({ code: "ConnectionClosed" }).reason).toBe("connection closed by the target");
    expect(describeNetworkError(new TypeError("fetch failed", { cause: { code: "ENOTFOUND" } })).reason).toBe(
      "host not found",
    );
    expect(describeNetworkError(new Error("no code at all"))).toEqual({ reason: "request failed", isTimeout: false });
  });
});
