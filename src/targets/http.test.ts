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
    const timedOut = await target.deliver(await message({}));
    expect(timedOut).toEqual({ kind: "timeout", timeoutMs: 300, url: expect.any(URL) });
    // Where it went is for the operator's records (attempts, logs); epilot's answers never show it.
    expect(timedOut.kind === "timeout" && timedOut.url?.origin).toBe(server.url);
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

  test("a placeholder whose expression fails for this payload is the payload's fault, nothing is sent", async () => {
    const before = server.requests.length;
    const target = createHttpTarget(
      httpTargetSchema.parse({
        type: "http",
        url: `${server.url}/c/{{ data.n + 1 }}`,
        headers: { "X-N": "{{ data.n * 2 }}" },
      }),
      context,
    );
    const outcome = await target.deliver(await message({}, { data: { n: "seven" } }));
    expect(outcome).toMatchObject({ kind: "invalid_message" });
    expect(outcome.kind === "invalid_message" && outcome.reason).toStartWith(
      "a {{ }} placeholder failed for this payload",
    );
    expect(server.requests.length).toBe(before);
    await target.close();
  });

  test("header values: control characters and characters beyond ISO-8859-1 are refused, Latin-1 goes out as it is", async () => {
    const target = createHttpTarget(
      httpTargetSchema.parse({ type: "http", url: `${server.url}/h`, headers: { "X-Name": "{{ data.name }}" } }),
      context,
    );
    const before = server.requests.length;
    for (const name of ["Łukasz Żółć", "evil\u001b[31m", "a\u007fb", "tab\u0000null"]) {
      const outcome = await target.deliver(await message({}, { data: { name } }));
      expect(outcome.kind).toBe("invalid_message");
      expect(outcome.kind === "invalid_message" && outcome.reason).toMatch(
        /^header X-Name: a value holds (the control character )?U\+/,
      );
    }
    expect(server.requests.length).toBe(before);
    expect((await target.deliver(await message({}, { data: { name: "Jürgen Müller" } }))).kind).toBe("delivered");
    expect(server.requests.at(-1)!.headers["x-name"]).toBe("Jürgen Müller");
    // The route can encode what a header cannot carry.
    const encoding = createHttpTarget(
      httpTargetSchema.parse({
        type: "http",
        url: `${server.url}/h`,
        headers: { "X-Name": "UTF-8''{{ $encodeUrlComponent(data.name) }}" },
      }),
      context,
    );
    expect((await encoding.deliver(await message({}, { data: { name: "Łukasz" } }))).kind).toBe("delivered");
    expect(server.requests.at(-1)!.headers["x-name"]).toBe("UTF-8''%C5%81ukasz");
    await target.close();
    await encoding.close();
  });

  test("placeholders may not choose the scheme, host or port; a static header is checked at load", () => {
    for (const url of [
      "http://{{ data.host }}/api",
      "http://erp:{{ data.port }}/api",
      "{{ data.url }}",
      "http://{{ data.user }}@erp/api",
      "http{{ data.s }}://erp/api",
    ]) {
      expect(() => createHttpTarget(httpTargetSchema.parse({ type: "http", url }), context)).toThrow(
        "may hold {{ }} placeholders only in the path, query or fragment, not in the scheme, host or port",
      );
    }
    expect(() =>
      createHttpTarget(
        httpTargetSchema.parse({ type: "http", url: "http://erp/{{ data.id }}?q={{ data.q }}#{{ data.f }}" }),
        context,
      ),
    ).not.toThrow();
    expect(() =>
      createHttpTarget(
        httpTargetSchema.parse({ type: "http", url: "http://erp/", headers: { "X-A": "Łódź" } }),
        context,
      ),
    ).toThrow("holds U+0141, which an HTTP header cannot carry");
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
