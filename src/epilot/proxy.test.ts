import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type ForwardProxy, startForwardProxy } from "../../test/support/forward-proxy.ts";
import { type RecordingServer, startRecordingServer } from "../../test/support/recording-server.ts";
import { generateTestKeyPair } from "../../test/support/signing.ts";
import { silentLogger } from "../log/logger.ts";
import { proxySchema } from "../runtime/proxy.ts";
import { remoteKeySource } from "../verify/key-source.ts";
import { createEpilotCallbacks } from "./callbacks.ts";
import { epilotSchema } from "./schema.ts";

/** `epilot.proxy`: the key, resume and write-back calls go through a real forward proxy on loopback. */

let epilot: RecordingServer;
let proxy: ForwardProxy;
const pair = generateTestKeyPair();
beforeAll(async () => {
  epilot = await startRecordingServer((request) =>
    request.url.includes("public-key") ? { body: pair.keyDocument } : { status: 200, body: { ok: true } },
  );
  proxy = await startForwardProxy({ credentials: { username: "egress", password: "pr0xy" } });
});
afterAll(async () => {
  await proxy.close();
  await epilot.close();
});

const config = (proxyValue: unknown) =>
  epilotSchema.parse({
    callback_hosts: [`127.0.0.1:${epilot.port}`],
    entity_api_url: epilot.url,
    timeout: "2s",
    proxy: proxyValue,
  });
const authorization = `Basic ${Buffer.from("egress:pr0xy").toString("base64")}`;
const TOKEN = "eyJhbGciOiJSUzI1NiJ9.e30.x-epilot-token";

describe("epilot.proxy", () => {
  test("resume and write-back go through the proxy with its credentials, and still reach epilot", async () => {
    const callbacks = createEpilotCallbacks(
      config({ url: proxy.url, username: "egress", password: "pr0xy" }),
      "actiongate/test",
    );
    const before = { proxied: proxy.requests.length, received: epilot.requests.length };
    expect(await callbacks.resume(`${epilot.url}/v1/automation/public/executions:resume`, "resume-token")).toEqual({
      kind: "ok",
      status: 200,
    });
    expect(await callbacks.writeBack({ schema: "contract", id: "c-1" }, { erp_id: "E-1" }, TOKEN)).toEqual({
      kind: "ok",
      status: 200,
    });
    await callbacks.close?.();
    const proxied = proxy.requests.slice(before.proxied);
    expect(proxied.map((request) => [request.method, request.proxyAuthorization, request.allowed])).toEqual([
      ["POST", authorization, true],
      ["PATCH", authorization, true],
    ]);
    const received = epilot.requests.slice(before.received);
    expect(received.map((request) => `${request.method} ${request.url}`)).toEqual([
      "POST /v1/automation/public/executions:resume",
      "PATCH /v1/entity/contract/c-1",
    ]);
    expect(received[1]!.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(received[1]!.json).toEqual({ erp_id: "E-1" });
    // The proxy's credentials are for the proxy only: epilot never sees them.
    for (const request of received) expect(request.headers["proxy-authorization"]).toBeUndefined();
  });

  test("wrong proxy credentials: a retry outcome that says the proxy refused, nothing reaches epilot", async () => {
    const callbacks = createEpilotCallbacks(config(`http://egress:wrong@127.0.0.1:${proxy.port}`), "actiongate/test");
    const before = epilot.requests.length;
    expect(await callbacks.resume(`${epilot.url}/resume`, "resume-token")).toEqual({
      kind: "retry",
      reason: `resume call to 127.0.0.1:${epilot.port}/resume failed: the proxy refused the credentials (HTTP 407) (PROXY_AUTH_REQUIRED)`,
    });
    expect(await callbacks.writeBack({ schema: "contract", id: "c-1" }, { erp_id: "E-1" }, TOKEN)).toMatchObject({
      kind: "retry",
    });
    expect(epilot.requests.length).toBe(before);
  });

  test("no_proxy: epilot's hosts listed there are called directly", async () => {
    const callbacks = createEpilotCallbacks(config({ url: proxy.url, no_proxy: ["127.0.0.1"] }), "actiongate/test");
    const before = proxy.requests.length;
    expect((await callbacks.resume(`${epilot.url}/resume`, "resume-token")).kind).toBe("ok");
    expect(proxy.requests.length).toBe(before);
  });

  test("the verification key is fetched through the proxy", async () => {
    const keys = remoteKeySource({
      url: `${epilot.url}/v1/.well-known/public-key`,
      refreshIntervalMs: 3_600_000,
      logger: silentLogger,
      proxy: proxySchema.parse({ url: proxy.url, username: "egress", password: "pr0xy" }),
    });
    const before = proxy.requests.length;
    keys.start();
    try {
      const deadline = Date.now() + 2_000;
      while (!keys.current() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(keys.current()).toBeDefined();
      expect(proxy.requests.slice(before)).toEqual([
        {
          method: "GET",
          target: `${epilot.url}/v1/.well-known/public-key`,
          proxyAuthorization: authorization,
          allowed: true,
        },
      ]);
    } finally {
      keys.stop();
    }
  });
});
