import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type GatewayProcess, spawnGateway, tempDir, waitFor } from "../support/gateway.ts";
import { closedPort, type RecordingServer, startRecordingServer } from "../support/recording-server.ts";
import { fixturePayload, generateTestKeyPair, signedHeaders } from "../support/signing.ts";

/**
 * Which keys a config trusts decides what the gateway waits for, through the compiled binary: a
 * setup with only HMAC secrets, or only a key of its own, fetches nothing and is ready at once on a
 * machine without internet; a key URL it names is waited for (503) until it answers; keys from the
 * config and from URLs are trusted together.
 */
const mine = generateTestKeyPair();
const epilots = generateTestKeyPair();
const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

let erp: RecordingServer;
const running: GatewayProcess[] = [];
beforeAll(async () => {
  erp = await startRecordingServer({ body: { ok: true } });
});
afterAll(async () => {
  await Promise.all(running.map((gateway) => gateway.stop()));
  await erp.close();
});

async function start(verification: string): Promise<{ gateway: GatewayProcess; admin: string }> {
  const cwd = tempDir({
    "config.yaml": `server: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
verification:
${verification}
routes:
  - name: erp
    target: { type: http, url: "${erp.url}/erp" }
`,
  });
  const gateway = await spawnGateway(["serve", "--config", "config.yaml"], { cwd });
  running.push(gateway);
  const listening = gateway.logs().find((line) => line.msg === "listening")!;
  return { gateway, admin: `http://127.0.0.1:${listening.admin_port}` };
}

async function readiness(admin: string) {
  const answer = await fetch(`${admin}/readyz`);
  return { status: answer.status, key: ((await answer.json()) as any).checks.verification_key };
}

function call(gateway: GatewayProcess, signing: { privateKey?: any; hmacSecret?: string }) {
  const body = JSON.stringify(fixturePayload());
  return fetch(`${gateway.url}/actions/erp`, { method: "POST", body, headers: signedHeaders(body, signing) });
}

describe("what a gateway waits for depends on the keys it trusts", () => {
  test("HMAC secrets only: nothing fetched, ready at once, v1 calls served", async () => {
    const { gateway, admin } = await start(`  secrets: ["${SECRET}"]`);
    expect(await readiness(admin)).toEqual({ status: 200, key: { ok: true, source: "none" } });
    expect((await call(gateway, { hmacSecret: SECRET })).status).toBe(200);
    expect(gateway.logs().some((line) => line.msg === "verification key fetch failed")).toBe(false);
    expect(gateway.logs().find((line) => line.msg === "listening")!.verification).toBe(
      "trusts v1 (HMAC) with 1 secret (verification.secrets); not epilot's key (add public_key_url: epilot for calls from epilot)",
    );
  });

  test("a local key only (as init writes it): ready at once, signed calls served, epilot's key not fetched", async () => {
    const { gateway, admin } = await start(`  public_key: "${mine.whpk}"`);
    const ready = await readiness(admin);
    expect(ready.status).toBe(200);
    expect(ready.key).toMatchObject({ ok: true, source: "config" });
    expect((await call(gateway, { privateKey: mine.privateKey })).status).toBe(200);
    expect((await call(gateway, { privateKey: epilots.privateKey })).status).toBe(401);
  });

  test("a local key and a key URL that does not answer: not ready, and a call the local key does not verify is 503", async () => {
    const down = await closedPort();
    const { gateway, admin } = await start(
      `  public_key: "${mine.whpk}"\n  public_key_url: "http://127.0.0.1:${down}/key"`,
    );
    expect(await readiness(admin)).toEqual({ status: 503, key: { ok: false, source: "url" } });
    expect((await call(gateway, { privateKey: mine.privateKey })).status).toBe(200);
    expect((await call(gateway, { privateKey: epilots.privateKey })).status).toBe(503);
  });

  test("two key URLs, one down: ready on the other's key (a publicKey document), calls under either key of the config served", async () => {
    const down = await closedPort();
    const keyServer = await startRecordingServer({ body: { publicKey: epilots.publicKeyPem } });
    try {
      const { gateway, admin } = await start(
        `  public_key: "${mine.whpk}"\n  public_key_url: ["http://127.0.0.1:${down}/key", "${keyServer.url}/key"]`,
      );
      await waitFor(async () => (await readiness(admin)).status === 200, 5_000, "readiness on the URL that is up");
      expect((await readiness(admin)).key).toMatchObject({ ok: true, source: "url" });
      expect((await call(gateway, { privateKey: epilots.privateKey })).status).toBe(200);
      expect((await call(gateway, { privateKey: mine.privateKey })).status).toBe(200);
      expect((await call(gateway, { privateKey: generateTestKeyPair().privateKey })).status).toBe(401);
    } finally {
      await keyServer.close();
    }
  });
});
