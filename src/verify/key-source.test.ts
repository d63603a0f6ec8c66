import { afterEach, describe, expect, test } from "bun:test";
import { type KeyObject, sign, verify } from "node:crypto";
import { createServer, type Server } from "node:http";
import { closedPort, type RecordingServer, startRecordingServer } from "../../test/support/recording-server.ts";
import { generateTestKeyPair, signedHeaders } from "../../test/support/signing.ts";
import { createLogger, type Logger } from "../log/logger.ts";
import { type RemoteKeySet, type RemoteKeySource, remoteKeySet, remoteKeySource } from "./key-source.ts";
import { parsePublicKey } from "./keys.ts";
import { type PublicKeySource, verifySignature } from "./signature.ts";

interface CapturedLogger {
  logger: Logger;
  lines: Record<string, any>[];
}

function capturedLogger(): CapturedLogger {
  const lines: Record<string, any>[] = [];
  return { logger: createLogger({ level: "debug", sink: (line) => lines.push(JSON.parse(line) as any) }), lines };
}

async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resources each test opened, closed after it whatever happens. */
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function keyServer(document: string): Promise<RecordingServer & { requestTimes: number[] }> {
  const requestTimes: number[] = [];
  const server = await startRecordingServer(() => {
    requestTimes.push(Date.now());
    return { body: document, headers: { "content-type": "application/json" } };
  });
  cleanups.push(() => server.close());
  return Object.assign(server, { requestTimes });
}

function source(
  options: Partial<Parameters<typeof remoteKeySource>[0]> & { url: string; logger: Logger },
): RemoteKeySource {
  const created = remoteKeySource({ refreshIntervalMs: 3_600_000, ...options });
  cleanups.push(() => created.stop());
  return created;
}

function set(urls: string[], options: Partial<Parameters<typeof remoteKeySet>[1]> & { logger: Logger }): RemoteKeySet {
  const created = remoteKeySet(urls, { refreshIntervalMs: 3_600_000, ...options });
  cleanups.push(() => created.stop());
  return created;
}

function verifyWith(keys: PublicKeySource, privateKey: KeyObject) {
  const body = '{"type":"external_integration"}';
  const headers = signedHeaders(body, { id: "msg_keyset", privateKey });
  return verifySignature(
    { headers: new Headers(headers), body: new TextEncoder().encode(body) },
    { keySource: keys, toleranceMs: 300_000 },
  );
}

describe("remoteKeySource", () => {
  test("start() loads epilot's JSON key document from the URL", async () => {
    const pair = generateTestKeyPair();
    const server = await keyServer(pair.keyDocument);
    const { logger, lines } = capturedLogger();
    const keys = source({ url: `${server.url}/v1/.well-known/public-key`, logger });
    expect(keys.current()).toBeUndefined();
    expect(keys.fetchedAt()).toBeUndefined();

    const before = Date.now();
    keys.start();
    await waitFor(() => keys.current() !== undefined, 2_000, "the key");

    expect(keys.current()!.equals(parsePublicKey(pair.publicKeyPem))).toBe(true);
    expect(keys.fetchedAt()).toBeGreaterThanOrEqual(before);
    expect(server.requests).toHaveLength(1);
    expect(server.requests[0]!.method).toBe("GET");
    expect(server.requests[0]!.url).toBe("/v1/.well-known/public-key");
    expect(server.requests[0]!.headers.accept).toBe("application/json");
    expect(lines.filter((line) => line.msg === "verification key loaded")).toHaveLength(1);
    expect(lines.filter((line) => line.level === "warn")).toHaveLength(0);
  });

  test("a server answering 500 at first: no key, a warning, then loaded on the backoff retry", async () => {
    const pair = generateTestKeyPair();
    const requestTimes: number[] = [];
    let healthy = false;
    const server = await startRecordingServer(() => {
      requestTimes.push(Date.now());
      return healthy ? { body: pair.keyDocument } : { status: 500, body: "internal error" };
    });
    cleanups.push(() => server.close());
    const { logger, lines } = capturedLogger();
    const keys = source({ url: server.url, logger });

    keys.start();
    await waitFor(() => lines.some((line) => line.level === "warn"), 2_000, "the warning");
    expect(keys.current()).toBeUndefined();
    expect(keys.fetchedAt()).toBeUndefined();
    const warning = lines.find((line) => line.level === "warn")!;
    expect(warning.msg).toBe("verification key fetch failed");
    expect(warning.error).toContain("500");
    expect(warning.attempt).toBe(1);
    expect(warning.have_key).toBe(false);
    expect(warning.key_url).toBe(server.url);

    healthy = true;
    await waitFor(() => keys.current() !== undefined, 2_500, "the key after the retry");
    expect(keys.current()!.equals(parsePublicKey(pair.whpk))).toBe(true);
    expect(requestTimes).toHaveLength(2);
    // The first retry waits about a second, not less (no hammering), not much more.
    const gap = requestTimes[1]! - requestTimes[0]!;
    expect(gap).toBeGreaterThanOrEqual(900);
    expect(gap).toBeLessThan(2_000);
    expect(lines.some((line) => line.msg === "verification key loaded")).toBe(true);
  }, 6_000);

  test("a closed port at first: a warning naming the failure, then loaded once a server listens there", async () => {
    const pair = generateTestKeyPair();
    const port = await closedPort();
    const { logger, lines } = capturedLogger();
    const keys = source({ url: `http://127.0.0.1:${port}/key`, logger });

    keys.start();
    await waitFor(() => lines.some((line) => line.level === "warn"), 2_000, "the warning");
    expect(keys.current()).toBeUndefined();
    const warning = lines.find((line) => line.level === "warn")!;
    expect(warning.msg).toBe("verification key fetch failed");
    expect(typeof warning.error).toBe("string");
    expect(warning.error.length).toBeGreaterThan(0);

    let served = 0;
    const server: Server = createServer((_req, res) => {
      served++;
      res.writeHead(200, { "content-type": "application/json" });
      res.end(pair.keyDocument);
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", resolve);
    });
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    );

    await waitFor(() => keys.current() !== undefined, 2_500, "the key once the server is up");
    expect(keys.current()!.equals(parsePublicKey(pair.publicKeyPem))).toBe(true);
    expect(served).toBe(1);
  }, 6_000);

  test("a fetch that answers too slowly counts as a failure", async () => {
    const pair = generateTestKeyPair();
    const server = await startRecordingServer({ body: pair.keyDocument, delayMs: 1_000 });
    cleanups.push(() => server.close());
    const { logger, lines } = capturedLogger();
    const keys = source({ url: server.url, logger, fetchTimeoutMs: 100 });
    keys.start();
    await waitFor(() => lines.some((line) => line.level === "warn"), 900, "the timeout warning");
    expect(keys.current()).toBeUndefined();
  });

  test("a document that is not a key is a failure, logged, and leaves no key", async () => {
    const server = await keyServer(JSON.stringify({ public_key: "not a key" }));
    const { logger, lines } = capturedLogger();
    const keys = source({ url: server.url, logger });
    keys.start();
    await waitFor(() => lines.some((line) => line.level === "warn"), 2_000, "the warning");
    expect(keys.current()).toBeUndefined();
    expect(lines.find((line) => line.level === "warn")!.error).toMatch(/PEM|whpk|key/);
  });

  test("key rotation: a signature with the new key fails with the old key, refreshAfterFailure fetches the new one", async () => {
    const oldPair = generateTestKeyPair();
    const newPair = generateTestKeyPair();
    let document = oldPair.keyDocument;
    const server = await startRecordingServer(() => ({ body: document }));
    cleanups.push(() => server.close());
    const { logger } = capturedLogger();
    const keys = source({ url: server.url, logger, failureRefetchIntervalMs: 50 });
    keys.start();
    await waitFor(() => keys.current() !== undefined, 2_000, "the old key");
    const oldKey = keys.current()!;
    expect(oldKey.equals(parsePublicKey(oldPair.whpk))).toBe(true);

    // epilot rotates.
    document = newPair.keyDocument;
    const message = Buffer.from("msg_rotated.1800000000.{}");
    const signature = sign(null, message, newPair.privateKey);
    expect(verify(null, message, oldKey, signature)).toBe(false);

    await sleep(60);
    const refreshed = await keys.refreshAfterFailure();
    expect(refreshed).toBeDefined();
    expect(refreshed!.equals(parsePublicKey(newPair.whpk))).toBe(true);
    expect(verify(null, message, refreshed!, signature)).toBe(true);
    expect(keys.current()!.equals(refreshed!)).toBe(true);
    expect(server.requests).toHaveLength(2);
  });

  test("key rotation through verifySignature: the call signed with the new key is accepted", async () => {
    const oldPair = generateTestKeyPair();
    const newPair = generateTestKeyPair();
    let document = oldPair.keyDocument;
    const server = await startRecordingServer(() => ({ body: document }));
    cleanups.push(() => server.close());
    const keys = set([server.url], { logger: capturedLogger().logger, failureRefetchIntervalMs: 50 });
    keys.start();
    await waitFor(() => keys.current().length > 0, 2_000, "the old key");

    document = newPair.keyDocument;
    await sleep(60);
    const result = await verifyWith(keys, newPair.privateKey);
    expect(result.ok).toBe(true);
    if (result.ok) expect(result.call.scheme).toBe("v1a");
    expect(keys.current()).toHaveLength(1);
    expect(keys.current()[0]!.equals(parsePublicKey(newPair.publicKeyPem))).toBe(true);
  });

  test("the on-failure refetch is rate-limited by failureRefetchIntervalMs", async () => {
    const pair = generateTestKeyPair();
    const server = await keyServer(pair.keyDocument);
    const keys = source({ url: server.url, logger: capturedLogger().logger, failureRefetchIntervalMs: 400 });
    keys.start();
    await waitFor(() => keys.current() !== undefined, 2_000, "the key");
    expect(server.requests).toHaveLength(1);

    // Right after the initial fetch: no extra request, however many bad signatures arrive.
    for (let i = 0; i < 10; i++) expect(await keys.refreshAfterFailure()).toBeUndefined();
    expect(server.requests).toHaveLength(1);

    // After the interval: one request, shared by concurrent failures.
    await sleep(450);
    const concurrent = await Promise.all(Array.from({ length: 5 }, () => keys.refreshAfterFailure()));
    expect(server.requests).toHaveLength(2);
    for (const key of concurrent) expect(key!.equals(parsePublicKey(pair.whpk))).toBe(true);

    // And then quiet again for the next interval.
    for (let i = 0; i < 10; i++) expect(await keys.refreshAfterFailure()).toBeUndefined();
    expect(server.requests).toHaveLength(2);
  });

  test("refreshes on refreshIntervalMs while running, and stop() ends it", async () => {
    const pair = generateTestKeyPair();
    const server = await keyServer(pair.keyDocument);
    const { logger, lines } = capturedLogger();
    const keys = source({ url: server.url, logger, refreshIntervalMs: 100 });
    keys.start();
    await waitFor(() => server.requests.length >= 3, 2_000, "periodic refreshes");
    // An unchanged key is not announced again.
    expect(lines.filter((line) => line.msg === "verification key loaded")).toHaveLength(1);

    keys.stop();
    await sleep(50);
    const afterStop = server.requests.length;
    await sleep(400);
    expect(server.requests.length).toBe(afterStop);
    // The key stays usable after stop.
    expect(keys.current()!.equals(parsePublicKey(pair.whpk))).toBe(true);
  });

  test("stop() also ends the backoff retries of a failing URL", async () => {
    const server = await startRecordingServer({ status: 503, body: "down" });
    cleanups.push(() => server.close());
    const keys = source({ url: server.url, logger: capturedLogger().logger });
    keys.start();
    await waitFor(() => server.requests.length === 1, 2_000, "the first attempt");
    await sleep(50);
    keys.stop();
    await sleep(1_300);
    expect(server.requests).toHaveLength(1);
  }, 5_000);
});

describe("remoteKeySet: several key URLs", () => {
  test("a signature valid under the key of either URL passes; each URL is fetched once", async () => {
    const first = generateTestKeyPair();
    const second = generateTestKeyPair();
    const a = await keyServer(first.keyDocument);
    const b = await keyServer(JSON.stringify({ publicKey: second.publicKeyPem }));
    const keys = set([`${a.url}/key`, `${b.url}/key`], { logger: capturedLogger().logger });
    expect(keys.awaitingKey()).toBe(true);
    keys.start();
    await waitFor(() => keys.current().length === 2, 2_000, "both keys");
    expect(keys.awaitingKey()).toBe(false);
    expect((await verifyWith(keys, first.privateKey)).ok).toBe(true);
    expect((await verifyWith(keys, second.privateKey)).ok).toBe(true);
    const stranger = await verifyWith(keys, generateTestKeyPair().privateKey);
    expect(stranger).toMatchObject({ ok: false, reason: "no_matching_signature" });
    expect([a.requests.length, b.requests.length]).toEqual([1, 1]);
  });

  test("two URLs serving the same key: one key, one verification", async () => {
    const pair = generateTestKeyPair();
    const a = await keyServer(pair.keyDocument);
    const b = await keyServer(pair.keyDocument);
    const keys = set([a.url, b.url], { logger: capturedLogger().logger });
    keys.start();
    await waitFor(
      () => a.requests.length === 1 && b.requests.length === 1 && keys.sources.every((s) => s.current()),
      2_000,
      "both fetched",
    );
    expect(keys.current()).toHaveLength(1);
  });

  test("one URL down: ready on the other's key; the down one is retried at the refresh interval, not every second", async () => {
    const pair = generateTestKeyPair();
    const up = await keyServer(pair.keyDocument);
    // It answers after the other URL's key is in, as a dead URL's timeout would.
    const down = await startRecordingServer({ status: 404, body: "not found", delayMs: 200 });
    cleanups.push(() => down.close());
    const { logger, lines } = capturedLogger();
    const keys = set([down.url, up.url], { logger, refreshIntervalMs: 10_000 });
    keys.start();
    await waitFor(() => keys.current().length === 1, 2_000, "the key of the URL that is up");
    expect(keys.awaitingKey()).toBe(false);
    await waitFor(() => lines.some((line) => line.level === "warn"), 2_000, "the warning for the URL that is down");
    expect(lines.find((line) => line.level === "warn")).toMatchObject({ key_url: down.url, have_key: false });
    // With the short backoff it would have been tried again after 1s.
    await sleep(1_500);
    expect(down.requests).toHaveLength(1);
    expect((await verifyWith(keys, pair.privateKey)).ok).toBe(true);
  }, 6_000);

  test("rotation on one URL heals through refreshAfterFailure while the other keeps its key", async () => {
    const steady = generateTestKeyPair();
    const oldPair = generateTestKeyPair();
    const newPair = generateTestKeyPair();
    let document = oldPair.keyDocument;
    const rotating = await startRecordingServer(() => ({ body: document }));
    cleanups.push(() => rotating.close());
    const other = await keyServer(steady.keyDocument);
    const keys = set([rotating.url, other.url], { logger: capturedLogger().logger, failureRefetchIntervalMs: 50 });
    keys.start();
    await waitFor(() => keys.current().length === 2, 2_000, "both keys");

    document = newPair.keyDocument;
    await sleep(60);
    expect((await verifyWith(keys, newPair.privateKey)).ok).toBe(true);
    expect((await verifyWith(keys, steady.privateKey)).ok).toBe(true);
    expect((await verifyWith(keys, oldPair.privateKey)).ok).toBe(false);
  });

  test("seedFrom: a reloaded set takes over the keys of the URLs it shares, before fetching its own", async () => {
    const pair = generateTestKeyPair();
    const server = await keyServer(pair.keyDocument);
    const before = set([server.url], { logger: capturedLogger().logger });
    before.start();
    await waitFor(() => before.current().length === 1, 2_000, "the key");
    const unrelated = await keyServer(generateTestKeyPair().keyDocument);
    const after = set([unrelated.url, server.url], { logger: capturedLogger().logger });
    after.seedFrom(before);
    expect(after.current()).toHaveLength(1);
    expect(after.current()[0]!.equals(before.current()[0]!)).toBe(true);
    expect(after.awaitingKey()).toBe(false);
    expect(after.fetchedAt()).toBe(before.fetchedAt()!);
  });
});
