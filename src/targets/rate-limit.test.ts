import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { outboundMessageOf } from "../../test/support/calls.ts";
import { type RecordingServer, startRecordingServer } from "../../test/support/recording-server.ts";
import { silentLogger } from "../log/logger.ts";
import { createHttpTarget, httpTargetSchema } from "./http.ts";
import { RateLimiter } from "./rate-limit.ts";

/** Times relative to the first. */
const relative = (times: number[]) => times.map((at) => at - times[0]!);

describe("RateLimiter (clock stepped by the sleeps it asks for)", () => {
  /** A limiter on a clock that moves only when told or slept on; its sleeps are recorded and end at once. */
  function limiter(requests: number, perMs: number) {
    let clock = 0;
    const sleeps: number[] = [];
    const limit = new RateLimiter({
      requests,
      perMs,
      now: () => clock,
      sleep: async (ms) => {
        const wakeAt = clock + ms;
        sleeps.push(ms);
        await Promise.resolve();
        clock = Math.max(clock, wakeAt);
      },
    });
    return { limit, sleeps, advance: (ms: number) => (clock += ms), now: () => clock };
  }

  test("within the window calls start at once; beyond it each books the turn `per` after the call `requests` before", async () => {
    const { limit, sleeps } = limiter(3, 1_000);
    const turns = await Promise.all(Array.from({ length: 7 }, () => limit.take(10_000)));
    expect(turns.every((turn) => turn.ok)).toBe(true);
    // 3 at once, 3 after 1s, 1 after 2s: no window of 1s ever holds more than 3 starts.
    expect(sleeps).toEqual([1_000, 1_000, 1_000, 2_000]);
    expect(limit.state()).toMatchObject({ delayedTotal: 4, refusedTotal: 0, waiting: 0 });
  });

  test("a turn further away than max_wait books nothing and says when to come back", async () => {
    const { limit, advance, now } = limiter(1, 1_000);
    expect(await limit.take(0)).toEqual({ ok: true });
    expect(await limit.take(500)).toEqual({ ok: false, retryAt: now() + 1_000 });
    advance(400);
    // Refused calls took no turn: the next free one is still 1s after the first.
    expect(await limit.take(500)).toEqual({ ok: false, retryAt: 1_000 });
    advance(600);
    expect(await limit.take(0)).toEqual({ ok: true });
    expect(limit.state()).toMatchObject({ refusedTotal: 2, heldBack: true, nextStartAt: 2_000 });
    advance(1_000);
    expect(limit.state().heldBack).toBe(false);
  });

  test("the window slides: after a quiet interval the full burst is allowed again, never more", async () => {
    const { limit, advance } = limiter(2, 1_000);
    await limit.take(0);
    await limit.take(0);
    advance(1_000);
    expect(await limit.take(0)).toEqual({ ok: true });
    expect(await limit.take(0)).toEqual({ ok: true });
    expect((await limit.take(0)).ok).toBe(false);
  });
});

describe("rate_limit on a target (real server, real timers)", () => {
  let server: RecordingServer;
  const arrivals: number[] = [];
  beforeAll(async () => {
    server = await startRecordingServer((request) => {
      arrivals.push(performance.now());
      return request.url === "/unauthorized" ? { status: 401 } : {};
    });
  });
  afterAll(() => server.close());
  const context = { configDir: "/tmp", logger: silentLogger, userAgent: "actiongate/test" };
  const message = () => outboundMessageOf({ body: {}, payload: {} }, "msg_1");

  test("8 concurrent calls with 2 per 300ms: every call arrives at least 300ms after the one two before it", async () => {
    const target = createHttpTarget(
      httpTargetSchema.parse({
        type: "http",
        url: server.url,
        rate_limit: { requests: 2, per: "300ms", max_wait: "5s" },
      }),
      context,
    );
    // Two kept-alive connections first, so that a connect does not delay the first arrivals and not the later ones.
    await Promise.all([target.deliver(await message()), target.deliver(await message())]);
    await new Promise((resolve) => setTimeout(resolve, 350));
    arrivals.length = 0;
    const outcomes = await Promise.all(Array.from({ length: 8 }, async () => target.deliver(await message())));
    await target.close();
    expect(outcomes.every((outcome) => outcome.kind === "delivered")).toBe(true);
    const times = relative(arrivals.sort((a, b) => a - b));
    expect(times).toHaveLength(8);
    // The spacing the limit promises, whatever the machine's speed: no 300ms window holds 3 arrivals.
    // (15ms of slack for the jitter between a call's start and its arrival on a busy machine; without
    // the limit all 8 arrive within a few milliseconds.)
    for (let i = 2; i < times.length; i++) expect(times[i]! - times[i - 2]!).toBeGreaterThanOrEqual(285);
  });

  test("a call whose turn is beyond max_wait is held back at once with the time of its turn; nothing is sent", async () => {
    const target = createHttpTarget(
      httpTargetSchema.parse({
        type: "http",
        url: server.url,
        rate_limit: { requests: 1, per: "10s", max_wait: "100ms" },
      }),
      context,
    );
    const before = server.requests.length;
    const startedAt = Date.now();
    expect((await target.deliver(await message())).kind).toBe("delivered");
    const held = await target.deliver(await message());
    await target.close();
    expect(held.kind).toBe("held_back");
    if (held.kind === "held_back") expect(held.retryAt).toBeGreaterThanOrEqual(startedAt + 10_000);
    expect(server.requests.length).toBe(before + 1);
    expect(target.rateLimitState?.()).toMatchObject({ refusedTotal: 1, heldBack: true, requests: 1, perMs: 10_000 });
    expect(target.describe().rate_limit).toEqual({ requests: 1, per: "10s", max_wait: "100ms" });
  });
});
