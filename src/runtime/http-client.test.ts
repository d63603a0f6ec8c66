import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { gzipSync } from "node:zlib";
import { generateTestCertificates } from "../../test/support/certs.ts";
import { type ForwardProxy, startForwardProxy } from "../../test/support/forward-proxy.ts";
import {
  createFetchClient,
  createHttpClient,
  createUndiciClient,
  type HttpClient,
  type HttpClientOptions,
  ignoreProxyEnvironment,
  ProxyRefusedError,
  RequestSlots,
  ResponseTooLargeError,
} from "./http-client.ts";

/**
 * The outbound HTTP client against a real node:http server on 127.0.0.1: the same contract for
 * Bun's fetch (what the binary uses) and undici (what Deno uses; it runs under Bun too).
 */

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
let handler: Handler = (_req, res) => res.end("ok");
let server: Server;
let base: string;
/** Requests the server is working on right now, and the most it ever saw at once. */
let inFlight = 0;
let mostInFlight = 0;
let received: { url: string; headers: IncomingMessage["headers"] }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    received.push({ url: req.url ?? "", headers: req.headers });
    inFlight++;
    mostInFlight = Math.max(mostInFlight, inFlight);
    res.on("close", () => inFlight--);
    handler(req, res);
  });
  // Many keep-alive sockets at once: the semaphore test must be limited by the client, not by us.
  server.maxConnections = 1000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
});

function reset(next: Handler): void {
  handler = next;
  inFlight = 0;
  mostInFlight = 0;
  received = [];
}

const get = (client: HttpClient, path: string, signal = AbortSignal.timeout(5_000), maxResponseSize = 1 << 20) =>
  client.request({ url: new URL(path, base), method: "GET", headers: {}, signal, maxResponseSize });

const clients: [string, (options: HttpClientOptions) => HttpClient][] = [
  ["fetch (Bun)", createFetchClient],
  ["undici (Deno)", createUndiciClient],
];

describe.each(clients)("%s", (_name, create) => {
  test("sends method, headers and body; our user-agent wins; repeated answer headers are joined; a 302 is not followed", async () => {
    reset((req, res) => {
      let body = "";
      req.on("data", (chunk) => (body += chunk));
      req.on("end", () => {
        res.setHeader("set-cookie", ["a=1", "b=2"]);
        res.setHeader("x-multi", ["one", "two"]);
        res.writeHead(302, { location: "/elsewhere", "content-type": "application/json" });
        res.end(JSON.stringify({ method: req.method, body }));
      });
    });
    const client = create({ connections: 4, connectTimeoutMs: 1_000 });
    const answer = await client.request({
      url: new URL("/p?q=1", base),
      method: "POST",
      headers: { "user-agent": "actiongate/test", "content-type": "application/json", "idempotency-key": "msg_1" },
      body: '{"a":1}',
      signal: AbortSignal.timeout(5_000),
      maxResponseSize: 1 << 20,
    });
    await client.close();
    expect(answer.status).toBe(302);
    expect(answer.headers.location).toBe("/elsewhere");
    expect(answer.headers["set-cookie"]).toBe("a=1, b=2");
    expect(answer.setCookies).toEqual(["a=1", "b=2"]);
    expect(answer.headers["x-multi"]).toBe("one, two");
    expect(JSON.parse(answer.body.toString("utf8"))).toEqual({ method: "POST", body: '{"a":1}' });
    expect(received.map((request) => request.url)).toEqual(["/p?q=1"]);
    expect(received[0]!.headers).toMatchObject({
      "user-agent": "actiongate/test",
      "idempotency-key": "msg_1",
      "content-type": "application/json",
    });
  });

  test("never more than `connections` requests reach a slow server at once; the rest wait and all are answered", async () => {
    reset((_req, res) => void setTimeout(() => res.end("slow"), 60));
    const client = create({ connections: 3, connectTimeoutMs: 1_000 });
    const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => get(client, `/slow/${i}`)));
    await client.close();
    expect(answers.map((answer) => answer.body.toString())).toEqual(Array(12).fill("slow"));
    expect(received.length).toBe(12);
    // Exactly the cap: below it would mean requests were serialised, above it that nothing capped them.
    expect(mostInFlight).toBe(3);
  });

  test("a queued request whose signal aborts leaves the queue and never holds a slot", async () => {
    let releaseFirst!: () => void;
    const firstHeld = new Promise<void>((resolve) => (releaseFirst = resolve));
    reset((req, res) => {
      if (req.url === "/first") void firstHeld.then(() => res.end("first"));
      else res.end("next");
    });
    const client = create({ connections: 1, connectTimeoutMs: 1_000 });
    const first = get(client, "/first");
    const abandoned = get(client, "/abandoned", AbortSignal.timeout(100));
    expect(
      await abandoned.then(
        () => "answered",
        (error: Error) => error.name,
      ),
    ).toMatch(/TimeoutError|AbortError/);
    releaseFirst();
    expect((await first).body.toString()).toBe("first");
    expect((await get(client, "/next")).body.toString()).toBe("next");
    await client.close();
    expect(received.map((request) => request.url)).toEqual(["/first", "/next"]);
  });

  test("an answer over maxResponseSize fails with ResponseTooLargeError; one at the limit is read whole", async () => {
    reset((req, res) => {
      if (req.url === "/declared") res.writeHead(200, { "content-length": "1001" }).end("x".repeat(1001));
      else if (req.url === "/exact") res.writeHead(200, { "content-length": "1000" }).end("x".repeat(1000));
      else {
        // Chunked, no length: only counting while reading can stop it.
        res.writeHead(200);
        for (let i = 0; i < 11; i++) res.write("x".repeat(100));
        res.end();
      }
    });
    const client = create({ connections: 2, connectTimeoutMs: 1_000 });
    await expect(get(client, "/declared", undefined, 1000)).rejects.toBeInstanceOf(ResponseTooLargeError);
    await expect(get(client, "/chunked", undefined, 1000)).rejects.toBeInstanceOf(ResponseTooLargeError);
    expect((await get(client, "/exact", undefined, 1000)).body.length).toBe(1000);
    await client.close();
  });

  test("an endless answer is cut off at the limit and its connection dropped, not read to the end", async () => {
    let serverSawClose!: () => void;
    const closed = new Promise<void>((resolve) => (serverSawClose = resolve));
    reset((_req, res) => {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      const chunk = Buffer.alloc(64 * 1024, 1);
      const timer = setInterval(() => res.write(chunk), 1);
      res.on("close", () => {
        clearInterval(timer);
        serverSawClose();
      });
    });
    const client = create({ connections: 1, connectTimeoutMs: 1_000 });
    await expect(get(client, "/endless", undefined, 1 << 20)).rejects.toThrow("answer is larger than 1048576 bytes");
    await closed;
    await client.close();
  });
});

describe.each(clients)("%s through a forward proxy", (_name, create) => {
  const certs = generateTestCertificates();
  let proxy: ForwardProxy;
  let tlsServer: HttpsServer;
  let tlsBase: string;
  beforeAll(async () => {
    proxy = await startForwardProxy({ credentials: { username: "gw", password: "p:ss" } });
    tlsServer = createHttpsServer({ cert: certs.serverCert, key: certs.serverKey }, (req, res) => {
      res.setHeader("set-cookie", [
        "SAP_SESSIONID=abc; Path=/; Expires=Wed, 21 Oct 2037 07:28:00 GMT; HttpOnly",
        "x=1",
      ]);
      res.end(`tls ${req.url}`);
    });
    await new Promise<void>((resolve) => tlsServer.listen(0, "127.0.0.1", resolve));
    tlsBase = `https://127.0.0.1:${(tlsServer.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await proxy.close();
    tlsServer.closeAllConnections();
    tlsServer.close();
  });
  const authorization = `Basic ${Buffer.from("gw:p:ss").toString("base64")}`;
  const request = (client: HttpClient, url: string) =>
    client.request({
      url: new URL(url),
      method: "GET",
      headers: {},
      signal: AbortSignal.timeout(5_000),
      maxResponseSize: 1 << 20,
    });

  test("an https target is reached through CONNECT, with the proxy credentials and the target's private CA", async () => {
    const client = create({
      connections: 2,
      connectTimeoutMs: 1_000,
      tls: { ca: certs.ca, rejectUnauthorized: true },
      proxy: { url: proxy.url, authorization, noProxy: [] },
    });
    const before = proxy.requests.length;
    const answer = await request(client, `${tlsBase}/secure?q=1`);
    await client.close();
    expect(answer.body.toString()).toBe("tls /secure?q=1");
    expect(answer.setCookies).toEqual([
      "SAP_SESSIONID=abc; Path=/; Expires=Wed, 21 Oct 2037 07:28:00 GMT; HttpOnly",
      "x=1",
    ]);
    // The proxy saw the host and port only: the path and everything else went inside the TLS tunnel.
    expect(proxy.requests.slice(before)).toEqual([
      { method: "CONNECT", target: new URL(tlsBase).host, proxyAuthorization: authorization, allowed: true },
    ]);
  });

  test("an http target goes through the proxy too; a no_proxy host goes directly", async () => {
    reset((req, res) => res.end(`plain ${req.url}`));
    const client = create({
      connections: 2,
      connectTimeoutMs: 1_000,
      proxy: { url: proxy.url, authorization, noProxy: [] },
    });
    const before = proxy.requests.length;
    expect((await request(client, `${base}/via`)).body.toString()).toBe("plain /via");
    const seen = proxy.requests.slice(before);
    expect(seen).toHaveLength(1);
    // Bun's fetch sends the request in absolute form, undici tunnels it: the proxy carries it either way.
    expect([`GET ${base}/via`, `CONNECT ${new URL(base).host}`]).toContain(`${seen[0]!.method} ${seen[0]!.target}`);
    await client.close();

    const direct = create({
      connections: 2,
      connectTimeoutMs: 1_000,
      proxy: { url: proxy.url, noProxy: ["127.0.0.1"] },
    });
    const count = proxy.requests.length;
    expect((await request(direct, `${base}/direct`)).body.toString()).toBe("plain /direct");
    await direct.close();
    expect(proxy.requests.length).toBe(count);
  });

  test("wrong proxy credentials are a ProxyRefusedError (407) for http and https targets alike", async () => {
    const client = create({
      connections: 2,
      connectTimeoutMs: 1_000,
      tls: { ca: certs.ca, rejectUnauthorized: true },
      proxy: { url: proxy.url, authorization: `Basic ${Buffer.from("gw:wrong").toString("base64")}`, noProxy: [] },
    });
    for (const url of [`${tlsBase}/x`, `${base}/x`]) {
      const error = await request(client, url).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(ProxyRefusedError);
      expect(error).toMatchObject({ status: 407, code: "PROXY_AUTH_REQUIRED" });
    }
    await client.close();
  });
});

describe("fetch (Bun) specifics", () => {
  test("a gzip answer is measured after decompression: a small bomb with a small content-length is still refused", async () => {
    const bomb = gzipSync(Buffer.alloc(5 << 20));
    reset((_req, res) =>
      res.writeHead(200, { "content-encoding": "gzip", "content-length": String(bomb.length) }).end(bomb),
    );
    const client = createFetchClient({ connections: 1, connectTimeoutMs: 1_000 });
    expect(bomb.length).toBeLessThan(1 << 20);
    await expect(get(client, "/bomb", undefined, 1 << 20)).rejects.toBeInstanceOf(ResponseTooLargeError);
  });

  test("under Bun, createHttpClient picks fetch: no per-origin pool, so an unlimited burst would exceed the cap", async () => {
    // The default client under Bun must behave like the fetch client above, slot cap included.
    reset((_req, res) => void setTimeout(() => res.end("slow"), 40));
    const client = createHttpClient({ connections: 2, connectTimeoutMs: 1_000 });
    await Promise.all(Array.from({ length: 6 }, (_, i) => get(client, `/burst/${i}`)));
    expect(mostInFlight).toBe(2);
    expect(typeof Bun).toBe("object");
  });
});

describe("RequestSlots", () => {
  test("first come, first served; a released slot goes to the oldest waiter; an aborted waiter leaves", async () => {
    const slots = new RequestSlots(1);
    expect(slots.tryAcquire()).toBe(true);
    const order: string[] = [];
    const controller = new AbortController();
    const a = slots.acquire(AbortSignal.timeout(5_000)).then(() => order.push("a"));
    const b = slots.acquire(controller.signal).then(
      () => order.push("b"),
      () => order.push("b aborted"),
    );
    const c = slots.acquire(AbortSignal.timeout(5_000)).then(() => order.push("c"));
    expect(slots.queued).toBe(3);
    controller.abort();
    await b;
    expect(slots.queued).toBe(2);
    slots.release(); // to a
    await a;
    expect(slots.tryAcquire()).toBe(false); // a holds it; no newcomer jumps the queue
    slots.release(); // to c
    await c;
    slots.release();
    expect(order).toEqual(["b aborted", "a", "c"]);
    expect(slots.active).toBe(0);
    expect(slots.queued).toBe(0);
  });

  test("an already aborted signal is refused at once without queueing", async () => {
    const slots = new RequestSlots(1);
    slots.tryAcquire();
    await expect(slots.acquire(AbortSignal.abort(new Error("gone")))).rejects.toThrow("gone");
    expect(slots.queued).toBe(0);
  });
});

describe("proxy variables", () => {
  test("under Bun they are removed, so a call to a target never goes through the proxy they name", async () => {
    const proxy = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("via proxy") });
    const target = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("direct") });
    const saved = { HTTP_PROXY: process.env.HTTP_PROXY, https_proxy: process.env.https_proxy };
    process.env.HTTP_PROXY = `http://127.0.0.1:${proxy.port}`;
    process.env.https_proxy = `http://127.0.0.1:${proxy.port}`;
    try {
      expect(ignoreProxyEnvironment()).toEqual(["HTTP_PROXY", "https_proxy"]);
      expect(process.env.HTTP_PROXY).toBeUndefined();
      const client = createFetchClient({ connections: 1, connectTimeoutMs: 1_000 });
      const answer = await client.request({
        url: new URL(`http://127.0.0.1:${target.port}/`),
        method: "GET",
        headers: {},
        signal: AbortSignal.timeout(2_000),
        maxResponseSize: 1024,
      });
      expect(answer.body.toString()).toBe("direct");
      expect(ignoreProxyEnvironment()).toEqual([]);
    } finally {
      for (const [name, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
      proxy.stop(true);
      target.stop(true);
    }
  });
});
