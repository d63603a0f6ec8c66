import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { tempDir, waitFor } from "../../test/support/gateway.ts";
import { type IntegrationToolkit, startIntegrationToolkit } from "../../test/support/integration-toolkit.ts";
import { integrationToolkitPollConfig, pollFixture } from "../../test/support/poll.ts";
import { openMemoryStore } from "../store/memory-store.ts";
import { openSqliteStore } from "../store/sqlite-store.ts";
import type { PollInbox, Store } from "../store/types.ts";
import { type PollObserver, PollSource } from "./source.ts";

const opened: { close(): Promise<void> }[] = [];
const sources: PollSource[] = [];
afterEach(async () => {
  for (const source of sources.splice(0)) await source.stop();
  for (const thing of opened.splice(0).reverse()) await thing.close();
});

async function toolkit(visibilityTimeoutMs = 400): Promise<IntegrationToolkit> {
  const standIn = await startIntegrationToolkit({ visibilityTimeoutMs });
  opened.push(standIn);
  return standIn;
}

/** What the observer heard, summed. */
function counter() {
  const messages: Record<string, number> = {};
  const acks: Record<string, number> = {};
  const lags: number[] = [];
  const observer: PollObserver = {
    messages: (_source, result, count) => (messages[result] = (messages[result] ?? 0) + count),
    acks: (_source, result, count) => (acks[result] = (acks[result] ?? 0) + count),
    lag: (_source, seconds) => lags.push(seconds),
  };
  return { messages, acks, lags, observer };
}

interface SourceSetup {
  standIn: IntegrationToolkit;
  store?: Store;
  inbox?: PollInbox;
  routes?: string;
  poll?: Record<string, string | number>;
  ownerId?: string;
}

/** A poll source over the stand-in, with routes compiled from YAML (by default one route for every message). */
function pollSource(setup: SourceSetup) {
  const store = setup.store ?? openMemoryStore({ replayWindowMs: 60_000 });
  if (!setup.store) opened.push(store);
  const fixture = pollFixture(integrationToolkitPollConfig(setup.standIn, setup.poll), setup.routes);
  opened.push(fixture);
  const heard = counter();
  const source = new PollSource({
    config: fixture.source,
    inbox: setup.inbox ?? store.inbox,
    acquireConfig: () => ({ routes: fixture.routes, release: () => {} }),
    logger: fixture.logger,
    userAgent: "actiongate/test",
    observer: heard.observer,
    ...(setup.ownerId ? { ownerId: setup.ownerId } : {}),
  });
  sources.push(source);
  return { source, store, heard, fixture };
}

/** Ids of the events the outbox holds for `route`, in the order they would be delivered (one per key at a time). */
async function storedIds(store: Store, route = "contracts"): Promise<string[]> {
  const ids: string[] = [];
  const later = Date.now() + 10 * 60_000;
  for (;;) {
    const [next] = await store.outbox.claim(route, 1, later, 60_000);
    if (!next) return ids;
    ids.push(next.id);
    await store.outbox.complete(next.id, { at: later, stage: "deliver", outcome: "delivered" });
  }
}

describe("PollSource", () => {
  test("stores every message once, then acknowledges them in stream order; a full batch is followed at once", async () => {
    const standIn = await toolkit();
    const ids = standIn.enqueue(Array.from({ length: 250 }, () => ({})));
    const { source, store, heard } = pollSource({ standIn, poll: { interval: "10s", limit: 100 } });
    const started = Date.now();
    source.start();
    await waitFor(() => heard.acks.accepted === 250, 5_000, "every message acknowledged");
    // Three full batches within far less than one interval: has_more was followed at once.
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(standIn.acked).toEqual(ids);
    expect(standIn.acks.every((record) => record.results.every((result) => result.status === "accepted"))).toBe(true);
    expect(heard.messages).toEqual({ stored: 250 });
    expect(heard.acks).toEqual({ accepted: 250 });
    expect(standIn.maxPollsInFlight()).toBe(1);
    // Stored under the duplicate key, in the stream's order (the default order key is the group).
    expect(await storedIds(store)).toEqual(
      Array.from({ length: 250 }, (_, i) => `poll:uc-contracts:evt_${String(i + 1).padStart(6, "0")}`),
    );
    expect(source.status()).toMatchObject({ ok: true, state: "polling", consecutive_failures: 0 });
  });

  test("an empty batch waits the interval, even when has_more says more are waiting", async () => {
    const standIn = await toolkit(60_000);
    standIn.enqueue([{}]);
    // Another consumer holds the stream's lease: every poll answers empty with has_more: true.
    const taken = await fetch(`${standIn.url}/v1/integrations/${standIn.integrationId}/outbound/messages/poll`, {
      method: "POST",
      headers: { authorization: `Bearer ${standIn.consumerToken}`, "content-type": "application/json" },
      body: JSON.stringify({ limit: 1 }),
    });
    expect(((await taken.json()) as any).messages).toHaveLength(1);
    const { source, heard } = pollSource({ standIn, poll: { interval: "250ms" } });
    source.start();
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    // At most one poll per interval (plus the first), not a tight loop on has_more.
    expect(standIn.polls.length - 1).toBeGreaterThanOrEqual(2);
    expect(standIn.polls.length - 1).toBeLessThanOrEqual(6);
    expect(heard.lags.every((lag) => lag === 0)).toBe(true);
  });

  test("a message whose ack did not get through comes again after its lease and is acknowledged, not stored twice", async () => {
    const standIn = await toolkit(300);
    const ids = standIn.enqueue([{}, {}, {}]);
    standIn.ackFailure = { status: 503 };
    const { source, store, heard } = pollSource({ standIn, poll: { interval: "100ms", timeout: "1s" } });
    source.start();
    await waitFor(() => (heard.acks.failed ?? 0) >= 3, 10_000, "the ack given up after its tries");
    standIn.ackFailure = undefined;
    await waitFor(() => standIn.acked.length === 3, 10_000, "acknowledged once the ack gets through");
    expect(standIn.acked).toEqual(ids);
    expect(ids.every((id) => standIn.leasesOf(id) >= 2)).toBe(true);
    expect(heard.messages.stored).toBe(3);
    expect(heard.messages.duplicate).toBeGreaterThanOrEqual(3);
    expect(await store.outbox.depth()).toEqual({ contracts: 3 });
  });

  test("a lease that lapses before the ack: stale_lease, the message comes again, and is not stored twice", async () => {
    const standIn = await toolkit(200);
    const ids = standIn.enqueue([{}, {}]);
    const store = openMemoryStore({ replayWindowMs: 60_000 });
    opened.push(store);
    let slowCommits = 1;
    // A store that takes longer than the lease for the first commit (a slow disk, a busy database).
    const slowInbox: PollInbox = {
      ...store.inbox,
      async commit(source, entries, now) {
        const result = await store.inbox.commit(source, entries, now);
        if (slowCommits-- > 0) await new Promise((resolve) => setTimeout(resolve, 400));
        return result;
      },
    };
    const { source, heard } = pollSource({ standIn, store, inbox: slowInbox, poll: { interval: "100ms" } });
    source.start();
    await waitFor(() => standIn.acked.length === 2, 10_000, "acknowledged on the second delivery");
    expect(heard.acks.stale_lease).toBe(1);
    expect(standIn.acks[0]?.results.map((result) => result.reason)).toEqual(["stale_lease", "out_of_order"]);
    expect(heard.messages).toEqual({ stored: 2, duplicate: 2 });
    expect(standIn.acked).toEqual(ids);
    expect(await store.outbox.depth()).toEqual({ contracts: 2 });
  });

  test("the same event under another message id is stored once, in one batch or across batches", async () => {
    const standIn = await toolkit();
    standIn.enqueue([{ event_id: "evt_twice" }, { event_id: "evt_twice" }, { event_id: "evt_other" }]);
    const { source, store, heard } = pollSource({ standIn, poll: { interval: "100ms" } });
    source.start();
    await waitFor(() => standIn.acked.length === 3, 5_000, "all acknowledged");
    standIn.enqueue([{ event_id: "evt_twice" }]);
    await waitFor(() => standIn.acked.length === 4, 5_000, "the late copy acknowledged");
    expect(heard.messages).toEqual({ stored: 2, duplicate: 2 });
    expect((await storedIds(store)).sort()).toEqual(["poll:uc-contracts:evt_other", "poll:uc-contracts:evt_twice"]);
  });

  test("the same event of two use cases is two messages (the duplicate key is per use case)", async () => {
    const standIn = await toolkit();
    standIn.enqueue([
      { event_id: "evt_1", use_case_id: "uc-contracts" },
      { event_id: "evt_1", use_case_id: "uc-billing" },
    ]);
    const { source, store, heard } = pollSource({ standIn, poll: { interval: "100ms" } });
    source.start();
    await waitFor(() => standIn.acked.length === 2, 5_000, "both acknowledged");
    expect(heard.messages).toEqual({ stored: 2 });
    expect((await storedIds(store)).sort()).toEqual(["poll:uc-billing:evt_1", "poll:uc-contracts:evt_1"]);
  });

  test("a message no route takes is acknowledged and counted unrouted, never stored; those around it are stored", async () => {
    const standIn = await toolkit();
    const ids = standIn.enqueue([{}, { event_name: "meter.reading_added" }, {}]);
    const { source, store, heard, fixture } = pollSource({
      standIn,
      poll: { interval: "100ms" },
      routes: `
  - name: contracts
    match: { source: feed, event_name: contract.updated }
    target: { type: http, url: "http://127.0.0.1:9/contracts" }`,
    });
    source.start();
    await waitFor(() => standIn.acked.length === 3, 5_000, "all acknowledged");
    expect(standIn.acked).toEqual(ids);
    expect(heard.messages).toEqual({ unrouted: 1, stored: 2 });
    expect(await store.outbox.depth()).toEqual({ contracts: 2 });
    expect(fixture.logs().find((line) => line.msg.includes("taken by no route"))).toMatchObject({
      source: "feed",
      event_name: "meter.reading_added",
      message_id: ids[1],
    });
  });

  test("a message whose route cannot shape it is not acknowledged: the prefix before it is, the rest waits for the lease", async () => {
    const standIn = await toolkit(400);
    const ids = standIn.enqueue([{}, { payload: { fail: true, secret: "never-logged-4711" } }, {}]);
    const { source, store, heard, fixture } = pollSource({
      standIn,
      poll: { interval: "100ms" },
      routes: `
  - name: contracts
    match: { source: feed }
    transform: 'payload.fail ? $error("cannot map") : payload'
    target: { type: http, url: "http://127.0.0.1:9/contracts" }`,
    });
    source.start();
    await waitFor(() => standIn.acked.length === 1, 5_000, "the first acknowledged");
    await waitFor(() => (heard.messages.refused ?? 0) >= 2, 5_000, "the bad one refused again after its lease");
    expect(standIn.acked).toEqual([ids[0]!]);
    expect(standIn.pending().map((message) => message.id)).toEqual([ids[1]!, ids[2]!]);
    expect(standIn.leasesOf(ids[1]!)).toBeGreaterThanOrEqual(2);
    expect(await store.outbox.depth()).toEqual({ contracts: 1 });
    const refused = fixture.logs().find((line) => line.msg.startsWith("polled message not taken"));
    expect(refused).toMatchObject({ route: "contracts", message_id: ids[1] });
    expect(fixture.logText()).not.toContain("never-logged-4711");
  });

  test("a message that is not one (an envelope field missing) is refused, naming the field, not the content", async () => {
    const standIn = await toolkit(60_000);
    const ids = standIn.enqueue([{}, { envelope: { event_id: undefined, use_case_id: "with:colon" } }]);
    const { source, heard, fixture } = pollSource({ standIn, poll: { interval: "100ms" } });
    source.start();
    await waitFor(
      () => standIn.acked.length === 1 && heard.messages.refused === 1,
      5_000,
      "the good one taken, the bad one refused",
    );
    expect(standIn.acked).toEqual([ids[0]!]);
    const refused = fixture.logs().find((line) => line.msg.startsWith("polled message not taken"));
    expect(refused?.message_id).toBe(ids[1]);
    expect(refused?.problem).toContain("event_id");
    expect(refused?.problem).toContain("use_case_id");
  });

  test("a refused token is a configuration problem: shown in the status, polled again after the interval, doubling; no crash", async () => {
    const standIn = await toolkit();
    const { source, fixture } = pollSource({ standIn, poll: { interval: "100ms" } });
    const token = standIn.consumerToken;
    standIn.consumerToken = "another-token";
    standIn.enqueue([{}]);
    source.start();
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    const status = source.status();
    expect(status.ok).toBe(false);
    expect(status.config_problem).toContain("HTTP 401");
    // 100, 200, 400, 800 ms apart: not more than 5 polls in 1.2 s.
    expect(standIn.polls.length).toBeGreaterThanOrEqual(3);
    expect(standIn.polls.length).toBeLessThanOrEqual(5);
    expect(fixture.logs().filter((line) => line.msg.startsWith("poll source refused by epilot"))).toHaveLength(1);
    expect(fixture.logText()).not.toContain(token);
    standIn.consumerToken = token;
    await waitFor(() => standIn.acked.length === 1, 5_000, "polling again once the token is right");
    expect(source.status()).toMatchObject({ ok: true, consecutive_failures: 0 });
    expect(source.status().config_problem).toBeUndefined();
  });

  test("a poll API that fails (5xx, dropped connections) is retried with backoff and Retry-After", async () => {
    const standIn = await toolkit();
    standIn.enqueue([{}]);
    standIn.pollFailure = { status: 503, retryAfter: "1" };
    const { source } = pollSource({ standIn, poll: { interval: "50ms" } });
    source.start();
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    // Retry-After: 1 second between polls.
    expect(standIn.polls.length).toBeLessThanOrEqual(3);
    expect(source.status()).toMatchObject({ ok: true, last_error: "poll: HTTP 503" });
    expect(source.status().consecutive_failures).toBeGreaterThanOrEqual(1);
    standIn.pollFailure = "destroy";
    await new Promise((resolve) => setTimeout(resolve, 300));
    standIn.pollFailure = undefined;
    await waitFor(() => standIn.acked.length === 1, 10_000, "acknowledged once the API answers");
    expect(source.status().consecutive_failures).toBe(0);
  });

  test("a store that fails the commit: nothing is acknowledged; the batch is stored once it works", async () => {
    const standIn = await toolkit(300);
    const ids = standIn.enqueue([{}, {}]);
    const store = openMemoryStore({ replayWindowMs: 60_000 });
    opened.push(store);
    let failures = 2;
    const failingInbox: PollInbox = {
      ...store.inbox,
      async commit(source, entries, now) {
        if (failures-- > 0) throw new Error("disk I/O error");
        return store.inbox.commit(source, entries, now);
      },
    };
    const { source, heard } = pollSource({ standIn, store, inbox: failingInbox, poll: { interval: "100ms" } });
    source.start();
    await waitFor(() => standIn.acked.length === 2, 10_000, "stored and acknowledged once the store works");
    expect(standIn.acks.flatMap((record) => record.acks.map((ack) => ack.id))).toEqual(ids);
    expect(heard.messages).toEqual({ stored: 2 });
  });

  test("stop() abandons a poll in flight at once; its messages stay with epilot", async () => {
    const standIn = await toolkit();
    standIn.enqueue([{}]);
    standIn.pollDelayMs = 3_000;
    const { source, store } = pollSource({ standIn });
    source.start();
    await waitFor(() => standIn.maxPollsInFlight() === 1, 5_000, "a poll in flight");
    const started = Date.now();
    await source.stop();
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(source.status().state).toBe("stopped");
    expect(standIn.acked).toEqual([]);
    expect(await store.outbox.depth()).toEqual({});
  });

  test("two processes on one store: one polls, the other stands by and takes over once the first stops", async () => {
    const standIn = await toolkit();
    const dir = tempDir();
    const path = join(dir, "store.db");
    const storeA = openSqliteStore({ path, synchronous: "normal", replayWindowMs: 60_000 });
    const storeB = openSqliteStore({ path, synchronous: "normal", replayWindowMs: 60_000, releaseLeases: false });
    opened.push(storeA, storeB);
    const a = pollSource({ standIn, store: storeA, ownerId: "replica-a", poll: { interval: "100ms" } });
    a.source.start();
    await waitFor(() => a.source.status().state === "polling", 5_000, "a polls");
    const b = pollSource({ standIn, store: storeB, ownerId: "replica-b", poll: { interval: "100ms" } });
    b.source.start();
    await waitFor(() => b.source.status().state === "standby", 5_000, "b stands by");
    standIn.enqueue([{}, {}]);
    await waitFor(() => standIn.acked.length === 2, 5_000, "a takes the messages");
    expect(a.heard.messages).toEqual({ stored: 2 });
    expect(b.heard.messages).toEqual({});
    await a.source.stop();
    standIn.enqueue([{}]);
    await waitFor(() => standIn.acked.length === 3, 5_000, "b takes over");
    expect(b.heard.messages).toEqual({ stored: 1 });
    expect(b.source.status()).toMatchObject({ ok: true, state: "polling" });
    expect(standIn.maxPollsInFlight()).toBe(1);
  });

  test("reports the lag: now minus the oldest enqueued_at of the batch", async () => {
    const standIn = await toolkit();
    standIn.enqueue([{ envelope: { enqueued_at: new Date(Date.now() - 90_000).toISOString() } }, {}]);
    const { source, heard } = pollSource({ standIn, poll: { interval: "100ms" } });
    source.start();
    await waitFor(() => standIn.acked.length === 2, 5_000, "acknowledged");
    expect(heard.lags[0]).toBeGreaterThanOrEqual(90);
    expect(heard.lags[0]).toBeLessThan(100);
    await waitFor(() => heard.lags.length >= 2, 5_000, "an empty poll after");
    expect(heard.lags.at(-1)).toBe(0);
    expect(source.status().lag_s).toBe(0);
  });

  test("an order_key per entity: the events of one entity form one line, the entities are independent", async () => {
    const standIn = await toolkit();
    standIn.enqueue(["A", "B", "A", "B", "A"].map((entity, i) => ({ payload: { contract: { _id: entity }, n: i } })));
    const { source, store } = pollSource({
      standIn,
      poll: { interval: "100ms" },
      routes: `
  - name: contracts
    match: { source: feed }
    target: { type: http, url: "http://127.0.0.1:9/contracts" }
    delivery: { order_key: payload.contract._id }`,
    });
    source.start();
    await waitFor(() => standIn.acked.length === 5, 5_000, "acknowledged");
    const later = Date.now() + 60_000;
    const heads = await store.outbox.claim("contracts", 10, later, 60_000);
    // One head per entity: the first event of A and the first of B.
    expect(heads.map((event) => (JSON.parse(event.data) as any).payload.payload.n).sort()).toEqual([0, 1]);
  });
});
