import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { testPostgres } from "../../test/support/postgres.ts";
import { CircuitBreaker } from "../delivery/circuit-breaker.ts";
import { silentLogger } from "../log/logger.ts";
import { openPostgresStore } from "../store/postgres-store.ts";
import { openSqliteStore } from "../store/sqlite-store.ts";
import type { Store } from "../store/types.ts";
import { BULK_BATCH, createAdminApi } from "./admin-api.ts";
import { CallRing, DeliveryTally } from "./call-ring.ts";

/**
 * A bulk replay over 10,000 dead letters, on SQLite and on PostgreSQL: done in batches, the answer
 * counting them all, and a store that fails midway (as when the gateway stops) loses nothing: every
 * event is either back in the outbox or still a dead letter, and the same request finishes the job.
 */
const TOKEN = "bulk-token-0123456789abcdef";
const COUNT = 10_000;
const open: Store[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const store of open.splice(0)) await store.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const stores: Record<string, () => Promise<Store>> = {
  sqlite: async () => {
    const dir = mkdtempSync(join(tmpdir(), "actiongate-bulk-"));
    dirs.push(dir);
    return openSqliteStore({ path: join(dir, "store.db"), synchronous: "normal", replayWindowMs: 60_000 });
  },
  postgres: async () =>
    openPostgresStore({
      url: await (await testPostgres()).createDatabase("bulk"),
      encryptionKey: Buffer.alloc(32, 1).toString("base64"),
      replayWindowMs: 60_000,
      maxConnections: 4,
    }),
};

/** `COUNT` dead letters of route erp, made the quick way: added, then moved to the dead letters in batches. */
async function deadLetters(store: Store, diedAt: number): Promise<void> {
  for (let start = 0; start < COUNT; start += 500) {
    await Promise.all(
      Array.from({ length: 500 }, (_, n) =>
        store.outbox.add({
          id: `msg_${String(start + n).padStart(5, "0")}`,
          route: "erp",
          stage: "deliver",
          data: JSON.stringify({ body: { n: start + n } }),
          secret: `token-${start + n}`,
          createdAt: diedAt - 1_000,
        }),
      ),
    );
  }
  while ((await store.outbox.moveToDeadLetters("erp", "target refused (422)", diedAt, BULK_BATCH)) > 0) {}
}

function adminApi(store: Pick<Store, "outbox" | "deadLetters">) {
  let wakes = 0;
  const api = createAdminApi({
    token: TOKEN,
    routes: () => [
      {
        name: "erp",
        source: "custom_action",
        target: { type: "http", url: "http://erp.internal/api" },
        mode: "async",
        maxAttempts: 5,
        breaker: new CircuitBreaker({ failureThreshold: 5, cooldownMs: 1_000 }),
      },
    ],
    store,
    calls: new CallRing(10),
    deliveries: new DeliveryTally(),
    wake: () => wakes++,
    logger: silentLogger,
  });
  const replayAll = () =>
    api.request("/dead-letters/replay", {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ route: "erp", all: true }),
    });
  return { replayAll, wakes: () => wakes };
}

for (const [kind, openStore] of Object.entries(stores)) {
  describe(`bulk replay of ${COUNT} dead letters (${kind})`, () => {
    test("every one goes back, in batches; the answer counts them", async () => {
      const store = await openStore();
      open.push(store);
      await deadLetters(store, Date.now() - 60_000);
      const { replayAll, wakes } = adminApi(store);
      const started = performance.now();
      const response = await replayAll();
      const ms = performance.now() - started;
      expect(response.status).toBe(202);
      expect(await response.json()).toEqual({ replayed: COUNT, batches: COUNT / BULK_BATCH + 1, skipped: {} });
      expect(await store.outbox.depth()).toEqual({ erp: COUNT });
      expect(await store.deadLetters.countByRoute()).toEqual({});
      expect(wakes()).toBe(COUNT / BULK_BATCH);
      // Each event comes back whole: its token still opens.
      const [first] = await store.outbox.claim("erp", 1, Date.now(), 30_000);
      expect(store.outbox.secretOf(first!)).toBe(`token-${Number(first!.id.slice(4))}`);
      console.log(`bulk replay of ${COUNT} on ${kind}: ${Math.round(ms)} ms`);
    }, 60_000);

    test("a store that fails midway: the answer says how far it got, and nothing is lost or doubled", async () => {
      const store = await openStore();
      open.push(store);
      await deadLetters(store, Date.now() - 60_000);
      let batches = 0;
      const failing: Pick<Store, "outbox" | "deadLetters"> = {
        outbox: store.outbox,
        deadLetters: {
          ...store.deadLetters,
          countByRoute: (filter) => store.deadLetters.countByRoute(filter),
          replayBatch: async (filter, now, limit) => {
            if (++batches === 4) throw new Error("connection lost");
            return store.deadLetters.replayBatch(filter, now, limit);
          },
        },
      };
      const response = await adminApi(failing).replayAll();
      expect(response.status).toBe(503);
      expect(await response.json()).toEqual({
        error_output: {
          error_code: "CUSTOM_ACTION_ERROR",
          error_reason:
            "The store failed during the bulk replay; 1500 events were replayed before, the rest are still dead letters: send the same request again; see the log",
          error_info: { replayed: 3 * BULK_BATCH, batches: 3, outcome: "store_unavailable" },
        },
      });
      const waiting = (await store.outbox.depth()).erp ?? 0;
      const dead = (await store.deadLetters.countByRoute()).erp ?? 0;
      expect({ waiting, dead }).toEqual({ waiting: 3 * BULK_BATCH, dead: COUNT - 3 * BULK_BATCH });

      const again = await adminApi(store).replayAll();
      expect(again.status).toBe(202);
      expect(((await again.json()) as { replayed: number }).replayed).toBe(COUNT - 3 * BULK_BATCH);
      expect(await store.outbox.depth()).toEqual({ erp: COUNT });
    }, 60_000);
  });
}
