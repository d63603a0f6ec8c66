import { describe, expect, test } from "bun:test";
import { parsedCallOf, parsedMessageOf } from "../../test/support/calls.ts";
import { testRoute } from "../../test/support/delivery.ts";
import { silentLogger } from "../log/logger.ts";
import { orderKeyOf, orderKeyText } from "./order-key.ts";

describe("orderKeyOf", () => {
  test("a polled message is ordered by its group, unless the route's order_key gives a value", async () => {
    const message = parsedMessageOf((raw) => (raw.group = "7"));
    expect(await orderKeyOf(message, testRoute({ source: "erp-feed" }), message.document, silentLogger)).toEqual({
      ok: true,
      key: "7",
    });
    const byEntity = testRoute({ source: "erp-feed", orderKey: "payload.contract._id" });
    expect(await orderKeyOf(message, byEntity, message.document, silentLogger)).toEqual({
      ok: true,
      key: "3f2c1a90-5d7e-4b8a-9c11-2f6e8d0b7a41",
    });
    const missing = parsedMessageOf((raw) => delete raw.payload.contract);
    expect(await orderKeyOf(missing, byEntity, missing.document, silentLogger)).toEqual({ ok: true, key: "0" });
  });

  test("a call is unordered without order_key; with one, no value is a 400 and a failing expression a 500", async () => {
    const call = await parsedCallOf();
    expect(await orderKeyOf(call, testRoute(), call.payload, silentLogger)).toEqual({ ok: true, key: undefined });
    const route = testRoute({ orderKey: "data.entity._id" });
    expect(await orderKeyOf(call, route, call.payload, silentLogger)).toEqual({
      ok: true,
      key: "3f2c1a90-5d7e-4b8a-9c11-2f6e8d0b7a41",
    });
    const none = await orderKeyOf(call, testRoute({ orderKey: "data.nothing_here" }), call.payload, silentLogger);
    expect(none.ok === false && none.answer).toMatchObject({
      status: 400,
      outcome: "bad_request",
      body: {
        error_output: { error_reason: "The delivery.order_key of route erp produced no value for this payload" },
      },
    });
    const failing = await orderKeyOf(call, testRoute({ orderKey: '$error("no key")' }), call.payload, silentLogger);
    expect(failing.ok === false && failing.answer).toMatchObject({ status: 500, outcome: "transform_failed" });
  });

  test("key text: scalars as text, objects as JSON; nothing, null and empty text are no key", () => {
    expect([
      orderKeyText("a"),
      orderKeyText(42),
      orderKeyText(true),
      orderKeyText({ id: 1 }),
      orderKeyText([1, "a"]),
    ]).toEqual(["a", "42", "true", '{"id":1}', '[1,"a"]']);
    expect([orderKeyText(undefined), orderKeyText(null), orderKeyText("")]).toEqual([undefined, undefined, undefined]);
  });
});
