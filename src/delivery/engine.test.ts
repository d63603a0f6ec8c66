import { afterEach, describe, expect, test } from "bun:test";
import {
  delivered,
  outboxEventFor,
  outboxEventForMessage,
  rejected,
  scriptedEpilot,
  scriptedTarget,
  testRoute,
  throwingTarget,
  unreachable,
} from "../../test/support/delivery.ts";
import { waitFor } from "../../test/support/gateway.ts";
import { createLogger, silentLogger } from "../log/logger.ts";
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

  test("a target that throws on every attempt is a dead letter after max_attempts, never retried forever", async () => {
    const store = openMemoryStore({ replayWindowMs: 60_000 });
    const target = throwingTarget("socket exploded");
    const route = testRoute({ target, maxAttempts: 3 });
    await store.outbox.add(await outboxEventFor(route, { edit: noCallback }));
    start(store, () => [route]);
    await waitFor(async () => (await store.deadLetters.list()).length === 1, 5_000, "the dead letter");
    const [letter] = await store.deadLetters.list();
    expect(target.calls).toHaveLength(3);
    expect(letter!.attempts).toBe(3);
    expect(letter!.history.map((attempt) => attempt.outcome)).toEqual(Array(3).fill("internal_error"));
    expect(letter!.reason).toStartWith("gave up after 3 attempts at deliver");
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

describe("DeliveryEngine: ordered delivery", () => {
  /** A target that records, per entity, how many of its events it holds at once and in which order they came. */
  function entityTarget(failFirst: Record<string, number>) {
    const inFlight = new Map<string, number>();
    let mostAtOnce = 0;
    const order: { entity: string; n: number; ok: boolean }[] = [];
    const target: Target = {
      ...stubTarget("entities"),
      async deliver(message) {
        const { entity, n } = (message.payload as any).payload;
        inFlight.set(entity, (inFlight.get(entity) ?? 0) + 1);
        mostAtOnce = Math.max(mostAtOnce, inFlight.get(entity)!);
        await new Promise((resolve) => setTimeout(resolve, 3));
        inFlight.set(entity, inFlight.get(entity)! - 1);
        const failing = (failFirst[entity] ?? 0) > 0;
        if (failing) failFirst[entity]!--;
        order.push({ entity, n, ok: !failing });
        return failing ? rejected(503) : delivered();
      },
      close: async () => {},
    };
    return { target, order, mostAtOnce: () => mostAtOnce };
  }

  test("events of one key go one at a time and in order, across retries; another key flows meanwhile", async () => {
    const store = openMemoryStore({ replayWindowMs: 60_000 });
    const entities = entityTarget({ A: 6 });
    const route = testRoute({
      target: entities.target,
      source: "erp-feed",
      orderKey: "payload.entity",
      concurrency: 8,
      maxAttempts: 20,
    });
    const sequence = ["A", "B", "A", "B", "A", "B", "B", "B"];
    for (const [n, entity] of sequence.entries()) {
      await store.outbox.add(
        await outboxEventForMessage(route, (raw) => {
          raw.event_id = `evt_${n}`;
          raw.payload = { entity, n };
        }),
      );
    }
    start(store, () => [route]);
    await waitFor(async () => Object.keys(await store.outbox.depth()).length === 0, 5_000, "every event delivered");
    expect(entities.mostAtOnce()).toBe(1);
    const deliveredOf = (entity: string) => entities.order.filter((o) => o.entity === entity && o.ok).map((o) => o.n);
    expect(deliveredOf("A")).toEqual([0, 2, 4]);
    expect(deliveredOf("B")).toEqual([1, 3, 5, 6, 7]);
    // B did not wait for A's retries: all of B was delivered before A's first success.
    const firstA = entities.order.findIndex((o) => o.entity === "A" && o.ok);
    const lastB = entities.order.findLastIndex((o) => o.entity === "B");
    expect(lastB).toBeLessThan(firstA);
  });

  test("a dead-lettered head lets the next event of its key go", async () => {
    const store = openMemoryStore({ replayWindowMs: 60_000 });
    const entities = entityTarget({ A: 2 });
    const route = testRoute({
      target: entities.target,
      source: "erp-feed",
      orderKey: "payload.entity",
      maxAttempts: 2,
    });
    for (const n of [0, 1]) {
      await store.outbox.add(
        await outboxEventForMessage(route, (raw) => {
          raw.event_id = `evt_${n}`;
          raw.payload = { entity: "A", n };
        }),
      );
    }
    start(store, () => [route]);
    await waitFor(async () => Object.keys(await store.outbox.depth()).length === 0, 5_000, "the outbox empty");
    expect((await store.deadLetters.list()).map((letter) => letter.id)).toEqual([
      "poll:5b0c7a4e-2f1d-4e6a-9c3b-8d7e6f5a4b21:evt_0",
    ]);
    expect(entities.order.map((o) => [o.n, o.ok])).toEqual([
      [0, false],
      [0, false],
      [1, true],
    ]);
  });

  test("a polled message goes to its target with its event_id as the idempotency key", async () => {
    const store = openMemoryStore({ replayWindowMs: 60_000 });
    const target = scriptedTarget(delivered());
    const route = testRoute({ target, source: "erp-feed" });
    await store.outbox.add(await outboxEventForMessage(route));
    start(store, () => [route]);
    await waitFor(() => target.calls.length === 1, 5_000, "the delivery");
    expect(target.calls[0]!.idempotencyKey).toBe("01JDXK7PZ8H4N6Q2S0V3X5Z7B9");
  });
});

describe("DeliveryEngine: result listeners", () => {
  test("every listener hears each attempt with its event; one that throws changes nothing", async () => {
    const store = openMemoryStore({ replayWindowMs: 60_000 });
    const target = scriptedTarget(rejected(503), delivered());
    const route = testRoute({ target });
    const event = await outboxEventFor(route, { edit: noCallback });
    await store.outbox.add(event);
    const heard: [string, string, boolean, string, number][] = [];
    const { epilot } = scriptedEpilot();
    const lines: string[] = [];
    const engine = new DeliveryEngine({
      outbox: store.outbox,
      acquireConfig: () => ({ routes: [route], epilot, release: () => {} }),
      logger: createLogger({ level: "error", sink: (line) => lines.push(line) }),
      pollIntervalMs: 5,
      onResult: [
        () => {
          throw new Error("listener bug");
        },
        (name, result, dead, claimed) => heard.push([name, result.kind, dead, claimed.id, claimed.attempts]),
      ],
    });
    engines.push(engine);
    engine.start();
    await waitFor(() => heard.length === 2, 5_000, "both attempts heard");
    expect(heard).toEqual([
      ["erp", "retry", false, event.id, 0],
      ["erp", "done", false, event.id, 1],
    ]);
    expect(await store.outbox.depth()).toEqual({});
    expect(lines.filter((line) => line.includes("a delivery result listener failed"))).toHaveLength(2);
  });
});
