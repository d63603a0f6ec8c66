import { afterEach, describe, expect, test } from "bun:test";
import { startInProcessGateway, waitFor } from "../../test/support/gateway.ts";
import { startRecordingServer } from "../../test/support/recording-server.ts";
import { fixturePayload, generateTestKeyPair, signedHeaders, uniqueWebhookId } from "../../test/support/signing.ts";

/** delivery.order_key on a route of custom action calls: the calls of one entity go one at a time, in order. */
const keys = generateTestKeyPair();
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe("ordered async custom actions", () => {
  test("a failing call holds back the later calls of its entity, not those of another; no key is a 400", async () => {
    const legacy = await startRecordingServer();
    cleanups.push(() => legacy.close());
    let failures = 3;
    legacy.respondWith((request) => (request.json.entity === "A" && failures-- > 0 ? { status: 503 } : {}));
    const gateway = await startInProcessGateway(`
server: { host: 127.0.0.1, port: 0 }
verification: { public_key: "${keys.whpk}" }
store: { path: store.db }
routes:
  - name: erp
    transform: '{ "entity": data.entity._id, "n": data.entity.n }'
    target: { type: http, url: "${legacy.url}/erp", timeout: 1s }
    delivery:
      mode: async
      order_key: data.entity._id
      backoff: { initial: 20ms, max: 40ms }
`);
    cleanups.push(() => gateway.stop());
    const call = (entity: string | undefined, n: number) => {
      const body = fixturePayload();
      delete body.data.callback_post_url;
      delete body.data.resume_token;
      body.data.entity = { ...body.data.entity, _id: entity, n };
      if (entity === undefined) delete body.data.entity._id;
      const text = JSON.stringify(body);
      return fetch(`${gateway.url}/actions/erp`, {
        method: "POST",
        body: text,
        headers: signedHeaders(text, { privateKey: keys.privateKey, id: uniqueWebhookId() }),
      });
    };
    for (const [entity, n] of [
      ["A", 1],
      ["B", 2],
      ["A", 3],
      ["B", 4],
    ] as const)
      expect((await call(entity, n)).status).toBe(202);
    await waitFor(
      () => legacy.requests.filter((r) => r.json.entity === "A" && r.json.n === 3).length === 1,
      10_000,
      "A's second call",
    );
    const arrivals = legacy.requests.map((request) => `${request.json.entity}${request.json.n}`);
    // A1 was tried until it went through (three 503s), and only then A3; B flowed meanwhile.
    expect(arrivals.filter((arrival) => arrival.startsWith("A"))).toEqual(["A1", "A1", "A1", "A1", "A3"]);
    expect(arrivals.indexOf("B4")).toBeLessThan(arrivals.lastIndexOf("A1"));

    const unkeyed = await call(undefined, 5);
    expect(unkeyed.status).toBe(400);
    expect(((await unkeyed.json()) as any).error_output.error_reason).toBe(
      "The delivery.order_key of route erp produced no value for this payload",
    );
  });
});
