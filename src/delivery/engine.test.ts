import { afterEach, describe, expect, test } from "bun:test";
import {
  delivered,
  outboxEventFor,
  rejected,
  scriptedEpilot,
  scriptedTarget,
  testRoute,
  unreachable,
} from "../../test/support/delivery.ts";
import { waitFor } from "../../test/support/gateway.ts";
import { silentLogger } from "../log/logger.ts";
import { openMemoryStore } from "../store/memory-store.ts";
import type { Store } from "../store/types.ts";
import type { Target, TargetOutcome } from "../targets/types.ts";

/** The parts of a Target these tests do not exercise. */
const stubTarget = (type: string) => ({
  type,
  ownHeaders: [],
  render: async () => ({ ok: false as const, reason: "not rendered in this test" }),
  describe: () => ({ type, method: "POST", url: "http://stub.invalid/" }),
  interpret: (): TargetOutcome => {
    throw new Error("a stub target reads no answer");
  },
});

import { type DeliveryConfigLease, DeliveryEngine } from "./engine.ts";
import type { Route } from "./route.ts";

/** The poll loop over a real (memory) store: claims, attempts, what it records, leases and reloads. */
const engines: DeliveryEngine[] = [];
afterEach(async () => {
  await Promise.all(engines.splice(0).map((engine) => engine.stop()));
});

function start(store: Store, routes: () => readonly Route[], options: { leaseMs?: number } = {}) {
  const { epilot } = scriptedEpilot();
  let acquired = 0;
  let released = 0;
  const acquireConfig = (): DeliveryConfigLease => {
    acquired++;
    return { routes: routes(), epilot, release: () => void released++ };
  };
  const engine = new DeliveryEngine({
    outbox: store.outbox,
    acquireConfig,
    logger: silentLogger,
    pollIntervalMs: 5,
    ...(options.leaseMs ? { leaseMs: options.leaseMs } : {}),
  });
  engines.push(engine);
  engine.start();
  return { engine, leases: () => ({ acquired, released }) };
}

const noCallback = (raw: Record<string, any>) => {
  delete raw.data.callback_post_url;
  delete raw.data.resume_token;
};

describe("DeliveryEngine", () => {
  test("marks the store while it polls, so tools can tell a gateway delivers; stopping removes the mark", async () => {
    const store = openMemoryStore({ replayWindowMs: 60_000 });
    const { engine } = start(store, () => [testRoute()]);
    await waitFor(async () => (await store.outbox.lastDelivering()) !== undefined, 5_000, "the delivery mark");
    expect(Date.now() - (await store.outbox.lastDelivering())!).toBeLessThan(5_000);
    await engine.stop();
    expect(await store.outbox.lastDelivering()).toBeUndefined();
  });

  test("each attempt's decision is told to onResult (retried, then dead-lettered), never a postponed one", async () => {
    const store = openMemoryStore({ replayWindowMs: 60_000 });
    const route = testRoute({ target: scriptedTarget(rejected(503)), maxAttempts: 2 });
    const results: string[] = [];
    const engine = new DeliveryEngine({
      outbox: store.outbox,
      acquireConfig: () => ({ routes: [route], epilot: scriptedEpilot().epilot, release: () => {} }),
      logger: silentLogger,
      pollIntervalMs: 5,
      onResult: (name, result, deadLettered) => results.push(`${name}:${result.kind}:${deadLettered}`),
    });
    engines.push(engine);
    await store.outbox.add(await outboxEventFor(route, { edit: noCallback }));
    engine.start();
    await waitFor(async () => (await store.deadLetters.countByRoute()).erp === 1, 5_000, "the dead letter");
    expect(results).toEqual(["erp:retry:false", "erp:retry:true"]);
  });

  test("a failing target gets exactly max_attempts attempts, then the event is a dead letter with each one", async () => {
    const store = openMemoryStore({ replayWindowMs: 60_000 });
    const target = scriptedTarget(rejected(503));
    const route = testRoute({ target, maxAttempts: 4 });
    await store.outbox.add(await outboxEventFor(route, { edit: noCallback }));
    start(store, () => [route]);
    await waitFor(async () => (await store.deadLetters.list()).length === 1, 5_000, "the dead letter");
    const [letter] = await store.deadLetters.list();
    expect(target.calls).toHaveLength(4);
    expect(letter!.attempts).toBe(4);
    expect(letter!.history.map((attempt) => attempt.outcome)).toEqual(Array(4).fill("target_failed"));
    expect(letter!.reason).toBe("gave up after 4 attempts at deliver: target answered HTTP 503");
    expect(await store.outbox.depth()).toEqual({});
  });

  test("max_attempts 1: one attempt and no retry", async () => {
    const store = openMemoryStore({ replayWindowMs: 60_000 });
    const target = scriptedTarget(unreachable);
    const route = testRoute({ target, maxAttempts: 1 });
    await store.outbox.add(await outboxEventFor(route, { edit: noCallback }));
    start(store, () => [route]);
    await waitFor(async () => (await store.deadLetters.list()).length === 1, 5_000, "the dead letter");
    expect(target.calls).toHaveLength(1);
  });

  test("a retry that then succeeds completes the event; its history is gone with it", async () => {
    const store = openMemoryStore({ replayWindowMs: 60_000 });
    const target = scriptedTarget(rejected(503), rejected(503), delivered());
    const route = testRoute({ target, maxAttempts: 5 });
    await store.outbox.add(await outboxEventFor(route, { edit: noCallback }));
    start(store, () => [route]);
    await waitFor(async () => Object.keys(await store.outbox.depth()).length === 0, 5_000, "the event done");
    expect(target.calls).toHaveLength(3);
    expect(await store.deadLetters.list()).toEqual([]);
  });

  test("while the breaker is open nothing is sent and no attempt is spent; the event waits in the outbox", async () => {
    const store = openMemoryStore({ replayWindowMs: 60_000 });
    const target = scriptedTarget(delivered());
    const route = testRoute({ target, failureThreshold: 1, cooldownMs: 60_000 });
    route.breaker.recordFailure();
    await store.outbox.add(await outboxEventFor(route, { edit: noCallback }));
    start(store, () => [route]);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(target.calls).toHaveLength(0);
    const [event] = await store.outbox.claim("erp", 10, Date.now() + 120_000, 1_000);
    expect(event?.attempts).toBe(0);
    expect(event?.history).toEqual([]);
  });

  test("at most delivery.concurrency attempts of a route run at once", async () => {
    const store = openMemoryStore({ replayWindowMs: 60_000 });
    let running = 0;
    let most = 0;
    const slow: Target = {
      ...stubTarget("slow"),
      async deliver() {
        running++;
        most = Math.max(most, running);
        await new Promise((resolve) => setTimeout(resolve, 20));
        running--;
        return delivered();
      },
      close: async () => {},
    };
    const route = testRoute({ target: slow, concurrency: 2 });
    for (let i = 0; i < 8; i++) await store.outbox.add(await outboxEventFor(route, { edit: noCallback }));
    start(store, () => [route]);
    await waitFor(async () => Object.keys(await store.outbox.depth()).length === 0, 5_000, "all events done");
    expect(most).toBe(2);
  });

  test("two engines on one store send each event once: a leased event is not claimed twice", async () => {
    const store = openMemoryStore({ replayWindowMs: 60_000 });
    const ids: string[] = [];
    const slow: Target = {
      ...stubTarget("slow"),
      async deliver(message) {
        ids.push(message.webhookId);
        await new Promise((resolve) => setTimeout(resolve, 30));
        return delivered();
      },
      close: async () => {},
    };
    const route = testRoute({ target: slow, concurrency: 4 });
    for (let i = 0; i < 10; i++) await store.outbox.add(await outboxEventFor(route, { edit: noCallback }));
    start(store, () => [route], { leaseMs: 10_000 });
    start(store, () => [route], { leaseMs: 10_000 });
    await waitFor(async () => Object.keys(await store.outbox.depth()).length === 0, 5_000, "all events done");
    expect(ids).toHaveLength(10);
    expect(new Set(ids).size).toBe(10);
  });

  test("events of a route that is no longer configured wait (never buried) and are reported", async () => {
    const store = openMemoryStore({ replayWindowMs: 60_000 });
    const gone = testRoute({ name: "gone" });
    await store.outbox.add(await outboxEventFor(gone, { edit: noCallback }));
    const { engine } = start(store, () => [testRoute({ name: "other" })]);
    await waitFor(() => Object.keys(engine.orphanedEvents()).length > 0, 5_000, "the orphan report");
    expect(engine.orphanedEvents()).toEqual({ gone: 1 });
    expect(await store.deadLetters.list()).toEqual([]);
    expect(await store.outbox.depth()).toEqual({ gone: 1 });
  });

  test("each attempt runs on the config in force when it starts, and releases it", async () => {
    const store = openMemoryStore({ replayWindowMs: 60_000 });
    const before = scriptedTarget(rejected(503));
    const after = scriptedTarget(delivered());
    let routes = [testRoute({ target: before, maxAttempts: 1_000 })];
    const { leases } = start(store, () => routes);
    await store.outbox.add(await outboxEventFor(routes[0]!, { edit: noCallback }));
    await waitFor(() => before.calls.length >= 1, 5_000, "a first attempt");
    routes = [testRoute({ target: after, maxAttempts: 10 })];
    await waitFor(
      async () => Object.keys(await store.outbox.depth()).length === 0,
      5_000,
      "the event done on the new config",
    );
    expect(after.calls).toHaveLength(1);
    await engines.splice(0)[0]!.stop();
    expect(leases().released).toBe(leases().acquired);
  });

  test("stop() waits for the attempt in flight and records it", async () => {
    const store = openMemoryStore({ replayWindowMs: 60_000 });
    let finish: () => void = () => {};
    const held: Target = {
      ...stubTarget("held"),
      deliver: () => new Promise((resolve) => (finish = () => resolve(delivered()))),
      close: async () => {},
    };
    const route = testRoute({ target: held });
    await store.outbox.add(await outboxEventFor(route, { edit: noCallback }));
    const { engine } = start(store, () => [route]);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const stopped = engine.stop();
    finish();
    await stopped;
    expect(await store.outbox.depth()).toEqual({});
  });
});
