import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import {
  type AttemptRecord,
  InvalidCursorError,
  MAX_HISTORY,
  type NewOutboxEvent,
  type Store,
} from "../../src/store/types.ts";

/**
 * The behaviour every store (memory, SQLite, PostgreSQL) owes the delivery engine, the dlq commands
 * and the replay guard, as one suite that each store's test file runs against a fresh store. Each
 * test is written so that a one-line slip in a store fails it: a claim that ignores leases or
 * nextAttemptAt, an attempt not counted or not reset, a history lost, a count of the wrong table.
 */

export const T0 = 1_700_000_000_000;
export const LEASE = 30_000;
/** The replay window the harness must open its stores with. */
export const WINDOW = 600_000;

/** A new outbox event of route `erp` created at `at`, as the gateway would add it. */
export function newEvent(id: string, at: number, overrides: Partial<NewOutboxEvent> = {}): NewOutboxEvent {
  return { id, route: "erp", stage: "deliver", data: JSON.stringify({ body: { n: id } }), createdAt: at, ...overrides };
}

/** One attempt at the deliver stage made at `at`. */
export function attemptAt(outcome: string, at: number, extra: Partial<AttemptRecord> = {}): AttemptRecord {
  return { at, stage: "deliver", outcome, ...extra };
}

/** How a store's test file hands the suite a fresh store. */
export interface StoreHarness {
  /**
   * Opens a handle on the current fresh store (a second call: another connection to the same data,
   * as a second process or replica would have), using `now` as its clock and WINDOW as replay window.
   */
  open(now: () => number): Store | Promise<Store>;
  /** Called before each test: a fresh, empty store from now on. */
  reset(): Promise<void> | void;
  /** False for the memory store: nothing survives closing it, so the tests of reopening are skipped. */
  readonly durable?: boolean;
  /** How much longer than WINDOW the replay guard may remember an id (the memory guard: up to a second). */
  readonly replayWindowGraceMs?: number;
}

/**
 * Runs the store contract against the harness.
 *
 * @example
 * describeStoreContract("postgres", { reset: async () => (url = await pg.createDatabase()), open: (now) => openPostgresStore({ url, ... now }) });
 */
export function describeStoreContract(name: string, harness: StoreHarness): void {
  const durable = harness.durable ?? true;
  const grace = harness.replayWindowGraceMs ?? 0;
  let clock = T0;
  const open: Store[] = [];

  async function openStore(): Promise<Store> {
    const store = await harness.open(() => clock);
    open.push(store);
    return store;
  }

  const event = (id: string, overrides: Partial<NewOutboxEvent> = {}) => newEvent(id, clock, overrides);
  const attempt = (outcome: string, extra: Partial<AttemptRecord> = {}) => attemptAt(outcome, clock, extra);

  describe(`store contract: ${name}`, () => {
    beforeEach(async () => {
      clock = T0;
      await harness.reset();
    });

    afterEach(async () => {
      for (const store of open.splice(0)) await store.close();
    });
    describe("outbox", () => {
      test("add then claim returns the event with fresh attempts and empty history", async () => {
        const store = await openStore();
        await store.outbox.add(event("a", { stage: "resume" }));
        const [claimed, ...rest] = await store.outbox.claim("erp", 10, clock, LEASE);
        expect(rest).toEqual([]);
        expect(claimed).toEqual({
          id: "a",
          route: "erp",
          stage: "resume",
          data: JSON.stringify({ body: { n: "a" } }),
          createdAt: T0,
          attempts: 0,
          nextAttemptAt: T0,
          history: [],
        });
      });

      test("claim only takes its route, only due events, in due order, up to the limit", async () => {
        const store = await openStore();
        await store.outbox.add(event("late", { createdAt: T0 + 5_000 }));
        await store.outbox.add(event("first", { createdAt: T0 - 2_000 }));
        await store.outbox.add(event("second", { createdAt: T0 - 1_000 }));
        await store.outbox.add(event("other", { route: "crm" }));
        expect((await store.outbox.claim("erp", 1, clock, LEASE)).map((e) => e.id)).toEqual(["first"]);
        expect((await store.outbox.claim("erp", 10, clock, LEASE)).map((e) => e.id)).toEqual(["second"]);
        expect(await store.outbox.claim("erp", 10, clock, LEASE)).toEqual([]);
        expect((await store.outbox.claim("erp", 10, T0 + 5_000, LEASE)).map((e) => e.id)).toEqual(["late"]);
        expect((await store.outbox.claim("crm", 10, clock, LEASE)).map((e) => e.id)).toEqual(["other"]);
      });

      test("a leased event is not claimed again until its lease runs out", async () => {
        const store = await openStore();
        await store.outbox.add(event("a"));
        expect(await store.outbox.claim("erp", 10, T0, LEASE)).toHaveLength(1);
        expect(await store.outbox.claim("erp", 10, T0 + LEASE - 1, LEASE)).toEqual([]);
        // The worker died: after the lease the event is due again, with nothing counted.
        const [again] = await store.outbox.claim("erp", 10, T0 + LEASE, LEASE);
        expect(again?.id).toBe("a");
        expect(again?.attempts).toBe(0);
      });

      test("adding an id twice keeps the first; an id already dead is not added again", async () => {
        const store = await openStore();
        await store.outbox.add(event("a", { data: "first" }));
        await store.outbox.add(event("a", { data: "second" }));
        expect((await store.outbox.claim("erp", 10, clock, LEASE)).map((e) => e.data)).toEqual(["first"]);
        await store.outbox.bury("a", attempt("target_failed"), "gave up");
        await store.outbox.add(event("a", { data: "third" }));
        expect(await store.outbox.depth()).toEqual({});
        expect((await store.deadLetters.get("a"))?.data).toBe("first");
      });

      test("adds sent at once are each stored once, in full, the first of one id winning", async () => {
        const store = await openStore();
        await store.outbox.add(event("dead-already"));
        await store.outbox.claim("erp", 10, clock, LEASE);
        await store.outbox.bury("dead-already", attempt("target_failed"), "gave up");
        const events = [
          ...Array.from({ length: 30 }, (_, i) => event(`burst-${i}`, { data: `data-${i}`, secret: `tok-${i}` })),
          event("burst-0", { data: "a later copy" }),
          event("dead-already", { data: "again" }),
        ];
        await Promise.all(events.map((added) => store.outbox.add(added)));
        expect(await store.outbox.depth()).toEqual({ erp: 30 });
        const claimed = await store.outbox.claim("erp", 100, clock, LEASE);
        expect(claimed.map((e) => [e.id, e.data, store.outbox.secretOf(e)]).sort()).toEqual(
          Array.from({ length: 30 }, (_, i) => [`burst-${i}`, `data-${i}`, `tok-${i}`]).sort(),
        );
      });

      test("retryLater counts the attempt, appends history, releases the lease and schedules", async () => {
        const store = await openStore();
        await store.outbox.add(event("a"));
        await store.outbox.claim("erp", 1, clock, LEASE);
        const failed = attempt("target_failed", { status: 500, error: "HTTP 500" });
        await store.outbox.retryLater("a", failed, T0 + 1_000);
        expect(await store.outbox.claim("erp", 1, T0 + 999, LEASE)).toEqual([]);
        const [claimed] = await store.outbox.claim("erp", 1, T0 + 1_000, LEASE);
        expect(claimed).toMatchObject({ attempts: 1, nextAttemptAt: T0 + 1_000, history: [failed] });
        const timeout = attempt("target_timeout");
        await store.outbox.retryLater("a", timeout, T0 + 3_000);
        const [third] = await store.outbox.claim("erp", 1, T0 + 3_000, LEASE);
        expect(third).toMatchObject({ attempts: 2, history: [failed, timeout] });
      });

      test("advance moves to the next stage with fresh attempts and stage data, due at once", async () => {
        const store = await openStore();
        await store.outbox.add(event("a"));
        await store.outbox.claim("erp", 1, clock, LEASE);
        await store.outbox.retryLater("a", attempt("target_failed"), T0);
        await store.outbox.claim("erp", 1, clock, LEASE);
        clock = T0 + 500;
        const delivered = attempt("delivered", { status: 200 });
        await store.outbox.advance("a", delivered, "write_back", '{"status":200}');
        const [claimed] = await store.outbox.claim("erp", 1, clock, LEASE);
        expect(claimed).toMatchObject({
          stage: "write_back",
          attempts: 0,
          nextAttemptAt: T0 + 500,
          stageData: '{"status":200}',
        });
        expect(claimed?.history.map((h) => h.outcome)).toEqual(["target_failed", "delivered"]);
      });

      test("postpone releases the lease without counting an attempt", async () => {
        const store = await openStore();
        await store.outbox.add(event("a"));
        await store.outbox.claim("erp", 1, clock, LEASE);
        await store.outbox.postpone("a", T0 + 10_000);
        expect(await store.outbox.claim("erp", 1, T0 + 9_999, LEASE)).toEqual([]);
        expect(await store.outbox.claim("erp", 1, T0 + 10_000, LEASE)).toMatchObject([
          { id: "a", attempts: 0, history: [] },
        ]);
      });

      test("complete removes the event", async () => {
        const store = await openStore();
        await store.outbox.add(event("a"));
        await store.outbox.claim("erp", 1, clock, LEASE);
        await store.outbox.complete("a", attempt("delivered"));
        expect(await store.outbox.depth()).toEqual({});
        expect(await store.outbox.claim("erp", 1, clock + LEASE, LEASE)).toEqual([]);
      });

      test("depth counts pending events per route, leased or not", async () => {
        const store = await openStore();
        expect(await store.outbox.depth()).toEqual({});
        await store.outbox.add(event("a"));
        await store.outbox.add(event("b"));
        await store.outbox.add(event("c", { route: "crm" }));
        await store.outbox.claim("erp", 1, clock, LEASE);
        expect(await store.outbox.depth()).toEqual({ erp: 2, crm: 1 });
      });

      test("add keeps the stage data of a follow-up (a sync call's target answer for write-back)", async () => {
        const store = await openStore();
        await store.outbox.add(event("a", { stage: "write_back", stageData: '{"status":201,"body":{"id":7}}' }));
        const [claimed] = await store.outbox.claim("erp", 1, clock, LEASE);
        expect(claimed).toMatchObject({ stage: "write_back", stageData: '{"status":201,"body":{"id":7}}' });
      });

      test("data, stage data and the token come back exactly as given, through every move", async () => {
        const store = await openStore();
        const data = JSON.stringify({ body: { text: 'Grüße, 東京 🚀\u0000 "quoted"', big: "x".repeat(200_000) } });
        const stageData = JSON.stringify({ status: 200, body: "ünïcödé" });
        await store.outbox.add(event("a", { data, secret: "tök€n", stageData }));
        const [first] = await store.outbox.claim("erp", 1, clock, LEASE);
        expect(first).toMatchObject({ data, stageData });
        expect(store.outbox.secretOf(first!)).toBe("tök€n");
        await store.outbox.retryLater("a", attempt("target_failed"), clock);
        await store.outbox.claim("erp", 1, clock, LEASE);
        await store.outbox.advance("a", attempt("delivered"), "resume", stageData);
        await store.outbox.claim("erp", 1, clock, LEASE);
        await store.outbox.bury("a", attempt("resume_failed", { stage: "resume" }), "gave up");
        const letter = await store.deadLetters.get("a");
        expect(letter).toMatchObject({ data, stageData });
        expect((await store.deadLetters.list())[0]).toMatchObject({ data, stageData });
        expect(store.outbox.secretOf(letter!)).toBe("tök€n");
        await store.deadLetters.replay("a", clock);
        const [replayed] = await store.outbox.claim("erp", 1, clock, LEASE);
        expect(replayed).toMatchObject({ data, stageData });
        expect(store.outbox.secretOf(replayed!)).toBe("tök€n");
      });

      test("updates of an event leave the other events alone", async () => {
        const store = await openStore();
        await store.outbox.add(event("a"));
        await store.outbox.add(event("b"));
        await store.outbox.claim("erp", 2, clock, LEASE);
        await store.outbox.retryLater("a", attempt("target_failed"), T0 + 1_000);
        await store.outbox.bury("b", attempt("target_failed"), "gave up");
        const [a] = await store.outbox.claim("erp", 2, T0 + 1_000, LEASE);
        expect(a).toMatchObject({ id: "a", attempts: 1, history: [{ outcome: "target_failed" }] });
        expect((await store.deadLetters.list()).map((d) => [d.id, d.attempts, d.history.length])).toEqual([
          ["b", 1, 1],
        ]);
      });

      test("concurrent claims from two connections never overlap", async () => {
        const a = await openStore();
        const b = await openStore();
        for (let i = 0; i < 200; i++) await a.outbox.add(event(`e${i}`, { createdAt: T0 - i }));
        const seen: string[] = [];
        for (let round = 0; round < 30; round++) {
          const batches = await Promise.all([
            a.outbox.claim("erp", 7, clock, LEASE),
            b.outbox.claim("erp", 7, clock, LEASE),
          ]);
          seen.push(...batches.flat().map((e) => e.id));
        }
        expect(seen).toHaveLength(200);
        expect(new Set(seen).size).toBe(200);
      });
    });

    describe("ordered delivery", () => {
      /** Claims what is due now and returns the ids, in the store's order. */
      const claimIds = async (store: Store, route = "erp", limit = 10, at = clock) =>
        (await store.outbox.claim(route, limit, at, LEASE)).map((e) => e.id);

      test("events of one key go out one at a time, in the order they were added; other keys are independent", async () => {
        const store = await openStore();
        // Added out of createdAt order on purpose: the line follows the order of adding.
        await store.outbox.add(event("k1", { orderKey: "contract:1", createdAt: T0 - 10 }));
        await store.outbox.add(event("k2", { orderKey: "contract:1", createdAt: T0 - 20 }));
        await store.outbox.add(event("k3", { orderKey: "contract:1", createdAt: T0 - 30 }));
        await store.outbox.add(event("j1", { orderKey: "contract:2" }));
        await store.outbox.add(event("free", {}));
        expect((await claimIds(store)).sort()).toEqual(["free", "j1", "k1"]);
        // The head is leased: nothing of its line goes, whatever the limit.
        expect(await claimIds(store)).toEqual([]);
        await store.outbox.complete("k1", attempt("delivered"));
        expect(await claimIds(store)).toEqual(["k2"]);
        await store.outbox.complete("k2", attempt("delivered"));
        await store.outbox.complete("j1", attempt("delivered"));
        expect(await claimIds(store)).toEqual(["k3"]);
      });

      test("a head waiting for its retry holds its line back; when it is due it goes first", async () => {
        const store = await openStore();
        await store.outbox.add(event("a1", { orderKey: "k" }));
        await store.outbox.add(event("a2", { orderKey: "k" }));
        await store.outbox.add(event("b1", { orderKey: "other" }));
        expect((await claimIds(store)).sort()).toEqual(["a1", "b1"]);
        await store.outbox.retryLater("a1", attempt("target_failed", { status: 503 }), T0 + 5_000);
        await store.outbox.complete("b1", attempt("delivered"));
        expect(await claimIds(store, "erp", 10, T0 + 4_999)).toEqual([]);
        expect(await claimIds(store, "erp", 10, T0 + 5_000)).toEqual(["a1"]);
        await store.outbox.complete("a1", attempt("delivered"));
        expect(await claimIds(store, "erp", 10, T0 + 5_000)).toEqual(["a2"]);
      });

      test("a head whose lease ran out is taken over; its line still waits for it", async () => {
        const store = await openStore();
        await store.outbox.add(event("a1", { orderKey: "k" }));
        await store.outbox.add(event("a2", { orderKey: "k" }));
        expect(await claimIds(store)).toEqual(["a1"]);
        expect(await claimIds(store, "erp", 10, T0 + LEASE)).toEqual(["a1"]);
      });

      test("a head at a later stage (resume, write-back) still holds its line", async () => {
        const store = await openStore();
        await store.outbox.add(event("a1", { orderKey: "k" }));
        await store.outbox.add(event("a2", { orderKey: "k" }));
        expect(await claimIds(store)).toEqual(["a1"]);
        await store.outbox.advance("a1", attempt("delivered"), "resume");
        expect(await claimIds(store)).toEqual(["a1"]);
        await store.outbox.postpone("a1", T0);
        expect(await claimIds(store)).toEqual(["a1"]);
      });

      test("a dead-lettered head lets the next go; replayed, it joins the end of its line", async () => {
        const store = await openStore();
        for (const id of ["a1", "a2", "a3"]) await store.outbox.add(event(id, { orderKey: "k" }));
        expect(await claimIds(store)).toEqual(["a1"]);
        await store.outbox.bury("a1", attempt("target_failed"), "gave up");
        expect(await claimIds(store)).toEqual(["a2"]);
        expect(await store.deadLetters.replay("a1", clock)).toBe(true);
        // a2 is in flight: the replayed a1 must not go beside it.
        expect(await claimIds(store)).toEqual([]);
        await store.outbox.complete("a2", attempt("delivered"));
        expect(await claimIds(store)).toEqual(["a3"]);
        await store.outbox.complete("a3", attempt("delivered"));
        expect(await claimIds(store)).toEqual(["a1"]);
      });

      test("replayAll puts every dead letter of a key back one behind the other", async () => {
        const store = await openStore();
        for (const id of ["a1", "a2"]) await store.outbox.add(event(id, { orderKey: "k" }));
        expect(await claimIds(store)).toEqual(["a1"]);
        await store.outbox.bury("a1", attempt("target_failed"), "gave up");
        clock += 1;
        expect(await claimIds(store)).toEqual(["a2"]);
        await store.outbox.bury("a2", attempt("target_failed"), "gave up");
        expect(await store.deadLetters.replayAll(clock)).toBe(2);
        const first = await claimIds(store);
        expect(first).toHaveLength(1);
        expect(await claimIds(store)).toEqual([]);
        await store.outbox.complete(first[0]!, attempt("delivered"));
        expect(await claimIds(store)).toEqual(first[0] === "a1" ? ["a2"] : ["a1"]);
      });

      test("an order key belongs to its route: the same key on another route is another line", async () => {
        const store = await openStore();
        await store.outbox.add(event("erp1", { orderKey: "k" }));
        await store.outbox.add(event("erp2", { orderKey: "k" }));
        await store.outbox.add(event("crm1", { orderKey: "k", route: "crm" }));
        expect(await claimIds(store)).toEqual(["erp1"]);
        expect(await claimIds(store, "crm")).toEqual(["crm1"]);
      });

      test("claims from two connections never lease two events of one key at once, and keep each key's order", async () => {
        const a = await openStore();
        const b = await openStore();
        const keys = ["k0", "k1", "k2", "k3", "k4"];
        const added: Record<string, string[]> = {};
        const push = (into: Record<string, string[]>, key: string, id: string) => {
          into[key] = [...(into[key] ?? []), id];
        };
        for (let i = 0; i < 60; i++) {
          const key = keys[i % keys.length]!;
          const id = `e${String(i).padStart(2, "0")}`;
          push(added, key, id);
          await (i % 2 === 0 ? a : b).outbox.add(event(id, { orderKey: key }));
        }
        const delivered: Record<string, string[]> = {};
        const keyOf = (id: string) => keys[Number(id.slice(1)) % keys.length]!;
        for (let round = 0; round < 200 && Object.values(delivered).flat().length < 60; round++) {
          const [fromA, fromB] = await Promise.all([
            a.outbox.claim("erp", 3, clock, LEASE),
            b.outbox.claim("erp", 3, clock, LEASE),
          ]);
          const leased = [...fromA, ...fromB].map((e) => keyOf(e.id));
          expect(new Set(leased).size).toBe(leased.length);
          await Promise.all([
            ...fromA.map((e) => a.outbox.complete(e.id, attempt("delivered"))),
            ...fromB.map((e) => b.outbox.complete(e.id, attempt("delivered"))),
          ]);
          for (const e of [...fromA, ...fromB]) push(delivered, keyOf(e.id), e.id);
        }
        expect(delivered).toEqual(added);
      });

      test.skipIf(!durable)("the order survives reopening", async () => {
        const first = await openStore();
        for (const id of ["a1", "a2"]) await first.outbox.add(event(id, { orderKey: "k" }));
        await first.close();
        const second = await openStore();
        expect(await claimIds(second, "erp", 10, T0 + LEASE)).toEqual(["a1"]);
      });
    });

    describe("poll inbox", () => {
      const entry = (eventId: string, overrides: Partial<NewOutboxEvent> = {}, useCaseId = "uc-1") => ({
        useCaseId,
        eventId,
        event: event(`poll:${useCaseId}:${eventId}`, overrides),
      });

      test("commit stores what is new and reports each duplicate, in the same batch or later", async () => {
        const store = await openStore();
        expect(
          await store.inbox.commit("feed", [entry("e1"), entry("e2"), entry("e1", { data: "again" })], clock),
        ).toEqual([true, true, false]);
        // The same events again, as epilot may deliver them under new message ids.
        expect(await store.inbox.commit("feed", [entry("e2"), entry("e3")], clock)).toEqual([false, true]);
        // The duplicate key is per use case: the same event of another use case is another message.
        expect(await store.inbox.commit("feed", [entry("e1", {}, "uc-2")], clock)).toEqual([true]);
        expect(await store.outbox.depth()).toEqual({ erp: 4 });
        const stored = await store.outbox.claim("erp", 10, clock, LEASE);
        expect(stored.find((e) => e.id === "poll:uc-1:e1")?.data).toBe(JSON.stringify({ body: { n: "poll:uc-1:e1" } }));
      });

      test("stored events keep the order of the batch within their key", async () => {
        const store = await openStore();
        await store.inbox.commit(
          "feed",
          ["e1", "e2", "e3"].map((id) => entry(id, { orderKey: "0" })),
          clock,
        );
        const ids: string[] = [];
        for (let i = 0; i < 3; i++) {
          const [next] = await store.outbox.claim("erp", 10, clock, LEASE);
          ids.push(next!.id);
          await store.outbox.complete(next!.id, attempt("delivered"));
        }
        expect(ids).toEqual(["poll:uc-1:e1", "poll:uc-1:e2", "poll:uc-1:e3"]);
      });

      test("prune forgets the keys of one source stored before the cutoff; a pending or dead event is still not added twice", async () => {
        const store = await openStore();
        await store.inbox.commit("feed", [entry("old")], T0);
        await store.inbox.commit("other", [entry("other-source")], T0);
        await store.inbox.commit("feed", [entry("new")], T0 + 1_000);
        expect(await store.inbox.prune("feed", T0 + 1)).toBe(1);
        // "old" is forgotten, but its event still waits in the outbox: not added twice.
        expect(
          await store.inbox.commit("feed", [entry("old"), entry("new"), entry("other-source")], T0 + 2_000),
        ).toEqual([false, false, false]);
        await store.outbox.claim("erp", 10, clock, LEASE);
        await store.outbox.bury("poll:uc-1:old", attempt("target_failed"), "gave up");
        expect(await store.inbox.prune("feed", T0 + 3_000)).toBe(2);
        expect(await store.inbox.commit("feed", [entry("old")], T0 + 4_000)).toEqual([false]);
        await store.outbox.complete("poll:uc-1:new", attempt("delivered"));
        // Once the event has left the outbox and its key was pruned, it counts as new again.
        expect(await store.inbox.commit("feed", [entry("new")], T0 + 5_000)).toEqual([true]);
      });

      test("two connections committing the same batch at once store each event once", async () => {
        const a = await openStore();
        const b = await openStore();
        const batch = Array.from({ length: 20 }, (_, i) => entry(`e${i}`, { orderKey: "0" }));
        const [fromA, fromB] = await Promise.all([
          a.inbox.commit("feed", batch, clock),
          b.inbox.commit("feed", batch, clock),
        ]);
        expect(fromA.map((added, i) => Number(added) + Number(fromB[i]))).toEqual(batch.map(() => 1));
        expect(await a.outbox.depth()).toEqual({ erp: 20 });
      });

      test.skipIf(!durable)("what was stored is remembered across restarts", async () => {
        const first = await openStore();
        expect(await first.inbox.commit("feed", [entry("e1")], clock)).toEqual([true]);
        await first.outbox.claim("erp", 10, clock, LEASE);
        await first.outbox.complete("poll:uc-1:e1", attempt("delivered"));
        await first.close();
        const second = await openStore();
        expect(await second.inbox.commit("feed", [entry("e1")], clock)).toEqual([false]);
      });

      test("one owner holds a source's poll lock at a time, until it runs out or is given up", async () => {
        const a = await openStore();
        const b = await openStore();
        expect(await a.inbox.acquirePollLock("feed", "replica-a", T0, 10_000)).toBe(true);
        expect(await b.inbox.acquirePollLock("feed", "replica-b", T0 + 1, 10_000)).toBe(false);
        expect(await b.inbox.acquirePollLock("other", "replica-b", T0 + 1, 10_000)).toBe(true);
        // Renewed by its owner, so it lasts.
        expect(await a.inbox.acquirePollLock("feed", "replica-a", T0 + 9_000, 10_000)).toBe(true);
        expect(await b.inbox.acquirePollLock("feed", "replica-b", T0 + 18_999, 10_000)).toBe(false);
        expect(await b.inbox.acquirePollLock("feed", "replica-b", T0 + 19_000, 10_000)).toBe(true);
        expect(await a.inbox.acquirePollLock("feed", "replica-a", T0 + 19_001, 10_000)).toBe(false);
        await a.inbox.releasePollLock("feed", "replica-a");
        expect(await a.inbox.acquirePollLock("feed", "replica-a", T0 + 19_002, 10_000)).toBe(false);
        await b.inbox.releasePollLock("feed", "replica-b");
        expect(await a.inbox.acquirePollLock("feed", "replica-a", T0 + 19_003, 10_000)).toBe(true);
      });
    });

    describe("secrets", () => {
      const TOKEN = "eyJhbGciOi-very-secret-epilot-token-4711";

      test("the token is stored encrypted and decrypts through secretOf, also on another handle", async () => {
        const store = await openStore();
        await store.outbox.add(event("a", { secret: TOKEN }));
        const [claimed] = await store.outbox.claim("erp", 1, clock, LEASE);
        expect(claimed?.secret).not.toContain(TOKEN);
        expect(store.outbox.secretOf(claimed!)).toBe(TOKEN);
        const other = await openStore();
        const [again] = await other.outbox.claim("erp", 1, clock + LEASE, LEASE);
        expect(other.outbox.secretOf(again!)).toBe(TOKEN);
      });

      test("an event without a token has none", async () => {
        const store = await openStore();
        await store.outbox.add(event("a"));
        const [claimed] = await store.outbox.claim("erp", 1, clock, LEASE);
        expect(claimed && "secret" in claimed).toBe(false);
        expect(store.outbox.secretOf(claimed!)).toBeUndefined();
      });

      test("a ciphertext moved to another event does not decrypt there", async () => {
        const store = await openStore();
        await store.outbox.add(event("a", { secret: TOKEN }));
        const [claimed] = await store.outbox.claim("erp", 1, clock, LEASE);
        expect(store.outbox.secretOf({ ...claimed!, id: "b" })).toBeUndefined();
      });
    });

    describe("dead letters", () => {
      async function buryTwo(store: Store) {
        await store.outbox.add(event("old", { secret: "tok" }));
        await store.outbox.add(event("new", { route: "crm" }));
        await store.outbox.claim("erp", 1, clock, LEASE);
        await store.outbox.retryLater("old", attempt("target_failed", { status: 500 }), clock);
        await store.outbox.claim("erp", 1, clock, LEASE);
        await store.outbox.advance("old", attempt("delivered", { status: 200 }), "resume", '{"ok":true}');
        await store.outbox.claim("erp", 1, clock, LEASE);
        await store.outbox.bury(
          "old",
          attempt("resume_failed", { stage: "resume", status: 400, error: "bad token" }),
          "resume refused",
        );
        clock += 1_000;
        await store.outbox.claim("crm", 1, clock, LEASE);
        await store.outbox.bury("new", attempt("target_failed", { status: 422 }), "target refused (422)");
      }

      test("bury moves the event with its history, stage and reason; list is newest first", async () => {
        const store = await openStore();
        await buryTwo(store);
        expect(await store.outbox.depth()).toEqual({});
        const list = await store.deadLetters.list();
        expect(list.map((d) => d.id)).toEqual(["new", "old"]);
        const old = await store.deadLetters.get("old");
        expect(old).toMatchObject({
          id: "old",
          route: "erp",
          stage: "resume",
          attempts: 1,
          stageData: '{"ok":true}',
          deadAt: T0,
          reason: "resume refused",
        });
        expect(old?.history.map((h) => [h.stage, h.outcome, h.status])).toEqual([
          ["deliver", "target_failed", 500],
          ["deliver", "delivered", 200],
          ["resume", "resume_failed", 400],
        ]);
        expect(store.outbox.secretOf(old!)).toBe("tok");
        expect(await store.deadLetters.get("nope")).toBeUndefined();
      });

      test("replay puts one back at its stage with fresh attempts, due now, history kept", async () => {
        const store = await openStore();
        await buryTwo(store);
        clock += 60_000;
        expect(await store.deadLetters.replay("old", clock)).toBe(true);
        expect(await store.deadLetters.replay("old", clock)).toBe(false);
        expect(await store.deadLetters.replay("unknown", clock)).toBe(false);
        expect((await store.deadLetters.list()).map((d) => d.id)).toEqual(["new"]);
        const [replayed] = await store.outbox.claim("erp", 1, clock, LEASE);
        expect(replayed).toMatchObject({
          id: "old",
          stage: "resume",
          attempts: 0,
          nextAttemptAt: clock,
          stageData: '{"ok":true}',
        });
        expect(replayed?.history).toHaveLength(3);
        expect(store.outbox.secretOf(replayed!)).toBe("tok");
      });

      test("replayAll returns how many went back", async () => {
        const store = await openStore();
        await buryTwo(store);
        clock += 60_000;
        expect(await store.deadLetters.replayAll(clock)).toBe(2);
        expect(await store.deadLetters.list()).toEqual([]);
        expect(await store.outbox.depth()).toEqual({ erp: 1, crm: 1 });
        expect(await store.deadLetters.replayAll(clock)).toBe(0);
        const [old] = await store.outbox.claim("erp", 1, clock, LEASE);
        const [other] = await store.outbox.claim("crm", 1, clock, LEASE);
        expect(old).toMatchObject({ id: "old", stage: "resume", attempts: 0, nextAttemptAt: clock });
        expect(old?.history).toHaveLength(3);
        expect(other).toMatchObject({ id: "new", stage: "deliver", attempts: 0, history: [{ status: 422 }] });
      });

      test("purge and purgeOlderThan, with the count per route following", async () => {
        const store = await openStore();
        expect(await store.deadLetters.countByRoute()).toEqual({});
        await buryTwo(store);
        expect(await store.deadLetters.countByRoute()).toEqual({ erp: 1, crm: 1 });
        expect(await store.deadLetters.purgeOlderThan(T0)).toBe(0);
        expect(await store.deadLetters.purgeOlderThan(T0 + 1)).toBe(1);
        expect((await store.deadLetters.list()).map((d) => d.id)).toEqual(["new"]);
        expect(await store.deadLetters.purge("new")).toBe(true);
        expect(await store.deadLetters.purge("new")).toBe(false);
        expect(await store.deadLetters.countByRoute()).toEqual({});
        expect(await store.outbox.depth()).toEqual({});
      });

      test.skipIf(!durable)("dead letters survive reopening", async () => {
        const first = await openStore();
        await buryTwo(first);
        await first.close();
        expect((await (await openStore()).deadLetters.list()).map((d) => d.id)).toEqual(["new", "old"]);
      });
    });

    describe("attempt records", () => {
      test("the URL and the target's answer of an attempt come back with the dead letter, through retry, advance and bury", async () => {
        const store = await openStore();
        await store.outbox.add(event("a"));
        await store.outbox.claim("erp", 1, clock, LEASE);
        const failed = attempt("target_failed", {
          status: 400,
          error: "target answered HTTP 400",
          url: "http://erp.internal/api/contracts/2026-0042?api_key=***",
          answer: '{"error":"contract number unknown"}',
          answerBytes: 2_345,
        });
        await store.outbox.retryLater("a", failed, clock);
        await store.outbox.claim("erp", 1, clock, LEASE);
        await store.outbox.bury(
          "a",
          attempt("target_failed", { status: 422, url: "http://erp.internal/x" }),
          "gave up",
        );
        const letter = await store.deadLetters.get("a");
        expect(letter?.history).toEqual([
          failed,
          attempt("target_failed", { status: 422, url: "http://erp.internal/x" }),
        ]);
        // A listing shows the last attempt's status and error, never its URL or answer.
        const { items } = await store.deadLetters.query({ limit: 10 });
        expect(items[0]?.lastAttempt).toEqual(attempt("target_failed", { status: 422 }));
      });

      test(`a history keeps the last ${MAX_HISTORY} attempts; the attempt count keeps counting`, async () => {
        const store = await openStore();
        await store.outbox.add(event("a"));
        for (let n = 1; n <= MAX_HISTORY + 5; n++) {
          await store.outbox.claim("erp", 1, clock, LEASE);
          await store.outbox.retryLater("a", attempt("target_failed", { status: 500, error: `attempt ${n}` }), clock);
        }
        const [claimed] = await store.outbox.claim("erp", 1, clock, LEASE);
        expect(claimed?.attempts).toBe(MAX_HISTORY + 5);
        expect(claimed?.history).toHaveLength(MAX_HISTORY);
        expect(claimed?.history[0]?.error).toBe("attempt 6");
        await store.outbox.bury("a", attempt("target_failed", { error: "last" }), "gave up");
        const letter = await store.deadLetters.get("a");
        expect(letter?.history).toHaveLength(MAX_HISTORY);
        expect(letter?.history.map((h) => h.error).slice(-2)).toEqual([`attempt ${MAX_HISTORY + 5}`, "last"]);
      });
    });

    describe("listings", () => {
      test("the outbox lists waiting events in due order with their last attempt, page by page, per route", async () => {
        const store = await openStore();
        for (const [id, route, at] of [
          ["e1", "erp", 3],
          ["e2", "erp", 1],
          ["c1", "crm", 2],
          ["e3", "erp", 1],
        ] as const) {
          await store.outbox.add(event(id, { route, createdAt: clock + at }));
        }
        const [claimed] = await store.outbox.claim("crm", 1, clock + 10, LEASE);
        expect(claimed?.id).toBe("c1");
        await store.outbox.retryLater("c1", attempt("target_failed", { status: 503, answer: "busy" }), clock + 2);
        await store.outbox.claim("erp", 1, clock + 10, LEASE); // e2 is leased now

        const first = await store.outbox.list({ limit: 2 }, clock + 10);
        expect(first.items.map((item) => [item.id, item.route, item.leased])).toEqual([
          ["e2", "erp", true],
          ["e3", "erp", false],
        ]);
        const second = await store.outbox.list({ limit: 2, after: first.next! }, clock + 10);
        expect(second.items.map((item) => item.id)).toEqual(["c1", "e1"]);
        expect(second.next).toBeUndefined();
        expect(second.items[0]).toEqual({
          id: "c1",
          route: "crm",
          stage: "deliver",
          attempts: 1,
          createdAt: clock + 2,
          nextAttemptAt: clock + 2,
          leased: false,
          lastAttempt: attempt("target_failed", { status: 503 }),
        });
        expect((await store.outbox.list({ limit: 10, route: "erp" }, clock + 10)).items.map((i) => i.id)).toEqual([
          "e2",
          "e3",
          "e1",
        ]);
        // A lease that ran out is not "leased".
        expect((await store.outbox.list({ limit: 1 }, clock + 10 + LEASE)).items[0]?.leased).toBe(false);
        await expect(store.outbox.list({ limit: 1, after: "not-a-cursor" }, clock)).rejects.toThrow(InvalidCursorError);
      });

      test("dead letters are listed newest first and filtered by route, routes, reason and age, page by page", async () => {
        const store = await openStore();
        const deaths = [
          ["d1", "erp", "target refused the event: target answered HTTP 400"],
          ["d2", "crm", "gave up after 3 attempts at deliver: target answered HTTP 503"],
          ["d3", "erp", "gave up after 3 attempts at deliver: no answer within 10000ms"],
          ["d4", "old", "route old is no longer configured"],
        ] as const;
        for (const [id, route, reason] of deaths) {
          await store.outbox.add(event(id, { route }));
          await store.outbox.claim(route, 1, clock, LEASE);
          await store.outbox.bury(id, attempt("target_failed", { status: 400 }), reason);
          clock += 1_000;
        }
        const ids = async (query: Parameters<Store["deadLetters"]["query"]>[0]) =>
          (await store.deadLetters.query(query)).items.map((item) => item.id);
        expect(await ids({ limit: 10 })).toEqual(["d4", "d3", "d2", "d1"]);
        expect(await ids({ limit: 10, route: "erp" })).toEqual(["d3", "d1"]);
        expect(await ids({ limit: 10, routes: ["crm", "old"] })).toEqual(["d4", "d2"]);
        expect(await ids({ limit: 10, routes: [] })).toEqual([]);
        expect(await ids({ limit: 10, reasonContains: "gave up" })).toEqual(["d3", "d2"]);
        expect(await ids({ limit: 10, diedBefore: T0 + 2_000 })).toEqual(["d2", "d1"]);
        expect(await ids({ limit: 10, route: "erp", reasonContains: "HTTP 400", diedBefore: T0 + 1 })).toEqual(["d1"]);
        const first = await store.deadLetters.query({ limit: 3 });
        expect(first.items[0]).toEqual({
          id: "d4",
          route: "old",
          stage: "deliver",
          attempts: 1,
          createdAt: T0 + 3_000,
          nextAttemptAt: T0 + 3_000,
          deadAt: T0 + 3_000,
          reason: "route old is no longer configured",
          lastAttempt: attemptAt("target_failed", T0 + 3_000, { status: 400 }),
        });
        expect((await store.deadLetters.query({ limit: 3, after: first.next! })).items.map((i) => i.id)).toEqual([
          "d1",
        ]);
        expect(await store.deadLetters.countByRoute({ reasonContains: "gave up" })).toEqual({ crm: 1, erp: 1 });
        expect(await store.deadLetters.countByRoute({ routes: ["erp"] })).toEqual({ erp: 2 });
        await expect(store.deadLetters.query({ limit: 1, after: "eyJ4IjoxfQ" })).rejects.toThrow(InvalidCursorError);
      });
    });

    describe("bulk moves", () => {
      test("replayBatch puts back the oldest the filter selects, up to the limit, until none is left", async () => {
        const store = await openStore();
        for (let n = 0; n < 7; n++) {
          const route = n % 2 === 0 ? "erp" : "crm";
          await store.outbox.add(event(`d${n}`, { route, secret: `tok${n}` }));
          await store.outbox.claim(route, 1, clock, LEASE);
          await store.outbox.bury(`d${n}`, attempt("target_failed"), n === 6 ? "other" : "gave up");
          clock += 10;
        }
        const filter = { routes: ["erp"], reasonContains: "gave up" };
        const replayNow = clock + 1_000;
        expect(await store.deadLetters.replayBatch(filter, replayNow, 2)).toBe(2);
        expect((await store.outbox.list({ limit: 10 }, replayNow)).items.map((i) => i.id)).toEqual(["d0", "d2"]);
        expect(await store.deadLetters.replayBatch(filter, replayNow, 2)).toBe(1);
        expect(await store.deadLetters.replayBatch(filter, replayNow, 2)).toBe(0);
        expect(await store.deadLetters.countByRoute()).toEqual({ crm: 3, erp: 1 });
        const claimed = await store.outbox.claim("erp", 10, replayNow, LEASE);
        expect(claimed.map((e) => [e.id, e.attempts, e.nextAttemptAt, store.outbox.secretOf(e)])).toEqual([
          ["d0", 0, replayNow, "tok0"],
          ["d2", 0, replayNow, "tok2"],
          ["d4", 0, replayNow, "tok4"],
        ]);
        expect(await store.deadLetters.replayBatch({}, replayNow, 0)).toBe(0);
      });

      test("moveToDeadLetters moves a route's waiting events, not leased ones, with the reason", async () => {
        const store = await openStore();
        for (const id of ["o1", "o2", "o3"]) await store.outbox.add(event(id, { route: "old", secret: `s-${id}` }));
        await store.outbox.add(event("e1"));
        await store.outbox.claim("old", 1, clock, LEASE); // o1 is in flight
        const reason = "route old is no longer configured; moved to the dead letters";
        expect(await store.outbox.moveToDeadLetters("old", reason, clock, 1)).toBe(1);
        expect(await store.outbox.moveToDeadLetters("old", reason, clock, 10)).toBe(1);
        expect(await store.outbox.moveToDeadLetters("old", reason, clock, 10)).toBe(0);
        expect(await store.outbox.depth()).toEqual({ old: 1, erp: 1 });
        const letter = await store.deadLetters.get("o2");
        expect(letter).toMatchObject({ id: "o2", route: "old", stage: "deliver", deadAt: clock, reason });
        expect(letter?.data).toBe(event("o2").data);
        expect(store.outbox.secretOf(letter!)).toBe("s-o2");
        // Once its lease ran out, the last one goes too.
        expect(await store.outbox.moveToDeadLetters("old", reason, clock + LEASE, 10)).toBe(1);
        expect(await store.deadLetters.countByRoute()).toEqual({ old: 3 });
      });
    });

    describe("delivery marks", () => {
      test("the newest mark of any delivery loop is the last time one polled; a stopped loop's mark goes", async () => {
        const store = await openStore();
        expect(await store.outbox.lastDelivering()).toBeUndefined();
        await store.outbox.markDelivering("loop-a", T0 + 5);
        await store.outbox.markDelivering("loop-b", T0 + 9);
        await store.outbox.markDelivering("loop-a", T0 + 7);
        expect(await store.outbox.lastDelivering()).toBe(T0 + 9);
        await store.outbox.stopDelivering("loop-b");
        expect(await store.outbox.lastDelivering()).toBe(T0 + 7);
        await store.outbox.stopDelivering("loop-a");
        expect(await store.outbox.lastDelivering()).toBeUndefined();
      });
    });

    describe("status", () => {
      test("a fresh store is writable, and its probe leaves nothing behind: writes after it commit", async () => {
        const store = await openStore();
        const status = await store.status();
        expect(status).toMatchObject({ writable: true });
        expect(status.error).toBeUndefined();
        await store.outbox.add(event("a"));
        expect(await (await openStore()).outbox.depth()).toEqual({ erp: 1 });
        expect(await store.status()).toMatchObject({ writable: true });
      });
    });

    describe("replay guard", () => {
      test("an id is accepted once within the window, again after it; release forgets it", async () => {
        const { replayGuard } = await openStore();
        expect(await replayGuard.claim("msg_1", T0)).toBe(true);
        expect(await replayGuard.claim("msg_1", T0 + 1)).toBe(false);
        expect(await replayGuard.claim("msg_1", T0 + WINDOW - 1)).toBe(false);
        const again = T0 + WINDOW + grace;
        expect(await replayGuard.claim("msg_1", again)).toBe(true);
        // Refreshed: the window starts again from the new claim.
        expect(await replayGuard.claim("msg_1", again + 1)).toBe(false);
        await replayGuard.release("msg_1");
        expect(await replayGuard.claim("msg_1", again + 2)).toBe(true);
        // Release forgets only that id.
        expect(await replayGuard.claim("msg_2", again + 3)).toBe(true);
        await replayGuard.release("msg_1");
        expect(await replayGuard.claim("msg_2", again + 4)).toBe(false);
      });

      test("uses the store clock when no time is given", async () => {
        const { replayGuard } = await openStore();
        expect(await replayGuard.claim("msg_1")).toBe(true);
        expect(await replayGuard.claim("msg_1")).toBe(false);
        clock += WINDOW + grace;
        expect(await replayGuard.claim("msg_1")).toBe(true);
      });

      test.skipIf(!durable)("ids survive closing and reopening", async () => {
        const first = await openStore();
        expect(await first.replayGuard.claim("msg_1", T0)).toBe(true);
        await first.close();
        expect(await (await openStore()).replayGuard.claim("msg_1", T0 + 10)).toBe(false);
      });

      test("claims sent at once keep their order: of one id claimed twice together, only the first is new", async () => {
        const { replayGuard } = await openStore();
        const ids = Array.from({ length: 40 }, (_, i) => `together-${i % 20}`);
        const answers = await Promise.all(ids.map((id) => replayGuard.claim(id, T0)));
        expect(answers).toEqual(ids.map((_, i) => i < 20));
        // A release sent right after a claim of the same id comes after it: the id is free again.
        const claimed = replayGuard.claim("released", T0);
        const released = replayGuard.release("released");
        expect(await claimed).toBe(true);
        await released;
        expect(await replayGuard.claim("released", T0 + 1)).toBe(true);
        // Together: an id whose window has passed, a new one, and one seen just before.
        const later = T0 + WINDOW + grace;
        expect(await replayGuard.claim("recent", later - 1)).toBe(true);
        const answersLater = await Promise.all([
          replayGuard.claim("together-0", later),
          replayGuard.claim("fresh", later),
          replayGuard.claim("recent", later),
        ]);
        expect(answersLater).toEqual([true, true, false]);
      });

      test("two handles on one store agree (one wins)", async () => {
        const a = await openStore();
        const b = await openStore();
        const results = await Promise.all([a.replayGuard.claim("msg_1", T0), b.replayGuard.claim("msg_1", T0)]);
        expect(results.sort()).toEqual([false, true]);
      });
    });
  });
}

/** What must never rest in clear in a store, carried by {@link eventWithSecrets}. */
export const SECRETS = {
  resumeToken: "resume-token-9f8e7d6c5b4a-never-in-clear",
  epilotToken: "eyJhbGciOiJSUzI1NiJ9.x-epilot-token-never-in-clear",
  forwardedHeader: "forwarded-api-key-0a1b2c3d-never-in-clear",
  payloadField: "DE89370400440532013000-iban-never-in-clear",
  orderKey: "customer-C-100017-order-key-never-in-clear",
  targetAnswer: "target-answer-contract-4711-never-in-clear",
} as const;

/**
 * An event as the gateway stores it for a call that waits for a callback (see
 * src/delivery/outbox-event.ts): a route that strips nothing, so the body and the payload carry the
 * resume token and a customer's IBAN; the secrets hold the x-epilot-token, the resume token and a
 * forwarded header; the stage data is a target's answer.
 */
export function eventWithSecrets(id: string, at: number): NewOutboxEvent {
  const payload = {
    resume_token: SECRETS.resumeToken,
    callback_post_url: "https://127.0.0.1/resume",
    entity: { _schema: "contract", _id: "c-1", iban: SECRETS.payloadField },
  };
  return {
    id,
    route: "erp",
    stage: "deliver",
    data: JSON.stringify({
      body: { iban: SECRETS.payloadField, token: SECRETS.resumeToken },
      payload,
      callbackUrl: payload.callback_post_url,
      entity: { schema: "contract", id: "c-1" },
    }),
    secret: JSON.stringify({
      epilotToken: SECRETS.epilotToken,
      resumeToken: SECRETS.resumeToken,
      forwardedHeaders: { "x-api-key": SECRETS.forwardedHeader },
    }),
    createdAt: at,
    orderKey: SECRETS.orderKey,
  };
}

/** The target's answer that eventWithSecrets is advanced with (it echoes the token, as some do). */
export const TARGET_ANSWER_WITH_SECRETS = JSON.stringify({
  status: 200,
  body: { echo: SECRETS.resumeToken, contract: SECRETS.targetAnswer },
});

/** Which of {@link SECRETS} `bytes` holds. */
export function secretsIn(bytes: Uint8Array): string[] {
  const haystack = Buffer.from(bytes);
  return Object.values(SECRETS).filter((secret) => haystack.includes(Buffer.from(secret)));
}
