import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { outboundMessageOf } from "../../test/support/calls.ts";
import { closedPort, type RecordingServer, startRecordingServer } from "../../test/support/recording-server.ts";
import { silentLogger } from "../log/logger.ts";
import { createHttpTarget, httpTargetSchema } from "./http.ts";

const context = { configDir: "/tmp", logger: silentLogger, userAgent: "actiongate/test" };
const message = (body: unknown, payload: unknown = { data: { id: "a/b" } }) =>
  outboundMessageOf({ body, payload }, "msg_1");

let server: RecordingServer;
beforeAll(async () => {
  server = await startRecordingServer();
});
afterAll(() => server.close());

describe("http target", () => {
  test("sends JSON with the idempotency key and rendered URL and headers", async () => {
    server.respondWith({ body: { ref: "E-1" } });
    const config = httpTargetSchema.parse({
      type: "http",
      url: `${server.url}/c/{{ data.id }}`,
      headers: { "X-Id": "{{ data.id }}" },
    });
    const target = createHttpTarget(config, context);
    const outcome = await target.deliver(await message({ a: 1 }));
    await target.close();
    expect(outcome).toMatchObject({ kind: "delivered", response: { status: 200, body: { ref: "E-1" } } });
    const received = server.requests.at(-1)!;
    expect(received.url).toBe("/c/a%2Fb");
    expect(received.headers["x-id"]).toBe("a/b");
    expect(received.headers["idempotency-key"]).toBe("msg_1");
    expect(received.json).toEqual({ a: 1 });
  });

  test("non-2xx is rejected, a slow answer times out, a closed port is unreachable", async () => {
    server.respondWith({ status: 500, body: "boom" });
    const target = createHttpTarget(
      httpTargetSchema.parse({ type: "http", url: server.url, timeout: "300ms" }),
      context,
    );
    expect(await target.deliver(await message({}))).toMatchObject({
      kind: "rejected",
      reason: "target answered HTTP 500",
    });
    server.respondWith({ delayMs: 1_000 });
    expect(await target.deliver(await message({}))).toEqual({ kind: "timeout", timeoutMs: 300 });
    await target.close();
    const down = createHttpTarget(
      httpTargetSchema.parse({ type: "http", url: `http://127.0.0.1:${await closedPort()}` }),
      context,
    );
    expect(await down.deliver(await message({}))).toMatchObject({ kind: "unreachable", reason: "connection refused" });
    await down.close();
  });

  test("a placeholder without a value is the payload's fault", async () => {
    const target = createHttpTarget(
      httpTargetSchema.parse({ type: "http", url: `${server.url}/{{ data.missing }}` }),
      context,
    );
    expect(await target.deliver(await message({}))).toMatchObject({ kind: "invalid_message" });
    await target.close();
  });

  test("a bad URL or expression is reported at its key", () => {
    expect(() => createHttpTarget(httpTargetSchema.parse({ type: "http", url: "ftp://x" }), context)).toThrow(
      "must be an absolute http(s) URL",
    );
    expect(() => createHttpTarget(httpTargetSchema.parse({ type: "http", url: "http://x/{{ ( }}" }), context)).toThrow(
      "invalid {{ }} expression",
    );
  });
});
