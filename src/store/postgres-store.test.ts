import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import postgres from "postgres";
import { type TestPostgres, testPostgres } from "../../test/support/postgres.ts";
import { closedPort } from "../../test/support/recording-server.ts";
import {
  describeStoreContract,
  eventWithSecrets,
  LEASE,
  SECRETS,
  secretsIn,
  T0,
  TARGET_ANSWER_WITH_SECRETS,
  WINDOW,
} from "../../test/support/store-contract.ts";
import { UNREADABLE_REASON } from "./event-row.ts";
import { migrate, POSTGRES_SCHEMA_VERSION } from "./postgres-schema.ts";
import {
  ORDER_LOCK_SPACE,
  openPostgresStore,
  type PostgresStore,
  type PostgresStoreOptions,
} from "./postgres-store.ts";
import { orderKeyDigester, seal } from "./secret-box.ts";
import { StoreOpenError } from "./store-open-error.ts";

const KEY = Buffer.alloc(32, 3).toString("base64");

let pg: TestPostgres;
let url: string;
let clock = T0;
const opened: PostgresStore[] = [];
const admins: postgres.Sql[] = [];

function open(options: Partial<PostgresStoreOptions> = {}): PostgresStore {
  const store = openPostgresStore({
    url,
    encryptionKey: KEY,
    replayWindowMs: WINDOW,
    maxConnections: 4,
    now: () => clock,
    ...options,
  });
  opened.push(store);
  return store;
}

/** A plain connection for looking at the tables as an operator would. */
function admin(): postgres.Sql {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  admins.push(sql);
  return sql;
}

beforeAll(async () => {
  pg = await testPostgres();
}, 120_000);

afterEach(async () => {
  for (const store of opened.splice(0)) await store.close();
  for (const sql of admins.splice(0)) await sql.end({ timeout: 1 });
});

describeStoreContract("postgres", {
  reset: async () => {
    url = await pg.createDatabase("contract");
  },
  // Each handle is another replica: its own pool and lease owner id.
  open: (now) => open({ now }),
});

describe("postgres store", () => {
  beforeEach(async () => {
    clock = T0;
    url = await pg.createDatabase("pg");
  });

  test("without store.encryption_key it refuses to open, saying why the key must be shared", () => {
    expect(() =>
      openPostgresStore({ url, encryptionKey: undefined, replayWindowMs: WINDOW, maxConnections: 1 }),
    ).toThrow(
      "store.encryption_key is required with store.url (PostgreSQL): every replica must encrypt and decrypt with the same key",
    );
    expect(() =>
      openPostgresStore({ url, encryptionKey: "c2hvcnQ=", replayWindowMs: WINDOW, maxConnections: 1 }),
    ).toThrow(StoreOpenError);
  });

  test("migrations: two replicas starting at once end at one schema version; status shows it", async () => {
    const stores = Array.from({ length: 4 }, () => open());
    expect(await Promise.all(stores.map((store) => store.ready()))).toEqual(
      Array.from({ length: 4 }, () => POSTGRES_SCHEMA_VERSION),
    );
    expect(await stores[0]!.status()).toEqual({
      kind: "postgres",
      writable: true,
      schemaVersion: POSTGRES_SCHEMA_VERSION,
    });
    expect([...(await admin()`SELECT version FROM actiongate_schema`)]).toEqual([{ version: POSTGRES_SCHEMA_VERSION }]);
    // Opening again later changes nothing and keeps the data.
    await stores[0]!.outbox.add({ id: "a", route: "erp", stage: "deliver", data: "{}", createdAt: T0 });
    expect(await open().outbox.depth()).toEqual({ erp: 1 });
  });

  test("an add of an order key waits while another replica's add of that key commits: the earlier event is never skipped", async () => {
    const replica = open();
    await replica.ready();
    const key = Buffer.from(KEY, "base64");
    const digest = orderKeyDigester(key)("erp", "contract:1");
    let commitFirst: () => void = () => {};
    const firstCommitted = new Promise<void>((resolve) => (commitFirst = resolve));
    let holding: () => void = () => {};
    const lockHeld = new Promise<void>((resolve) => (holding = resolve));
    // Another replica in the middle of its add: it holds the key's lock and has its row (and seq), not committed yet.
    const other = admin().begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(${ORDER_LOCK_SPACE}, hashtext(${digest}))`;
      await tx`
        INSERT INTO outbox (id, route, stage, data, created_at, attempts, next_attempt_at, history, order_key)
        VALUES ('first', 'erp', 'deliver', ${seal(key, "first", "{}")}, ${T0}, 0, ${T0}, '[]', ${digest})`;
      holding();
      await firstCommitted;
    });
    await lockHeld;
    let added = false;
    const second = replica.outbox
      .add({ id: "second", route: "erp", stage: "deliver", data: "{}", createdAt: T0, orderKey: "contract:1" })
      .then(() => (added = true));
    await new Promise((resolve) => setTimeout(resolve, 300));
    // Without the lock "second" would be committed now and handed out ahead of "first".
    expect(added).toBe(false);
    expect(await replica.outbox.claim("erp", 10, T0, LEASE)).toEqual([]);
    commitFirst();
    await other;
    await second;
    expect((await replica.outbox.claim("erp", 10, T0, LEASE)).map((event) => event.id)).toEqual(["first"]);
  });

  test("a line whose head left without letting the next go (an older replica completed it) is repaired within a minute", async () => {
    const store = open();
    await store.outbox.add({ id: "a1", route: "erp", stage: "deliver", data: "{}", createdAt: T0, orderKey: "k" });
    await store.outbox.add({ id: "a2", route: "erp", stage: "deliver", data: "{}", createdAt: T0, orderKey: "k" });
    expect((await store.outbox.claim("erp", 10, T0, LEASE)).map((e) => e.id)).toEqual(["a1"]);
    await admin()`DELETE FROM outbox WHERE id = 'a1'`;
    expect(await store.outbox.claim("erp", 10, T0 + 1_000, LEASE)).toEqual([]);
    expect((await store.outbox.claim("erp", 10, T0 + 60_000, LEASE)).map((e) => e.id)).toEqual(["a2"]);
  });

  test("a database migrated by a newer actiongate is refused with a clear message", async () => {
    await open().ready();
    await admin()`UPDATE actiongate_schema SET version = 99`;
    const store = open();
    await expect(store.ready()).rejects.toThrow("newer actiongate (schema 99");
    await expect(store.outbox.depth()).rejects.toThrow("newer actiongate");
    expect(await store.status()).toMatchObject({
      kind: "postgres",
      writable: false,
      error: expect.stringContaining("newer actiongate"),
    });
  });

  test("nothing of a payload rests in clear: no column of any table holds a token, a forwarded secret or a payload field", async () => {
    // Every table as text, the way an operator (or a dump) sees it.
    const everything = async () => {
      const rows = await admin()`
        SELECT row_to_json(t)::text AS row FROM outbox t UNION ALL SELECT row_to_json(t)::text FROM dead_letters t
        UNION ALL SELECT row_to_json(t)::text FROM store_meta t UNION ALL SELECT row_to_json(t)::text FROM replay_guard t`;
      return Buffer.from(rows.map((row) => row.row).join("\n"));
    };
    const a = open();
    const written = eventWithSecrets("msg_1", T0);
    await a.outbox.add(written);
    await a.outbox.add(eventWithSecrets("msg_2", T0 + 1));
    expect(secretsIn(await everything())).toEqual([]);
    const b = open();
    const [claimed] = await b.outbox.claim("erp", 1, T0, LEASE);
    expect(claimed).toMatchObject({ id: "msg_1", data: written.data });
    // The other replica decrypts with the shared key.
    expect(b.outbox.secretOf(claimed!)).toBe(written.secret);
    // The target's answer and the resolved URL of an attempt may echo the payload: sealed too.
    const failed = {
      at: T0,
      stage: "deliver" as const,
      outcome: "target_failed",
      status: 503,
      url: `http://erp.internal/api/${SECRETS.payloadField}`,
      answer: JSON.stringify({ error: `unknown contract ${SECRETS.targetAnswer}` }),
    };
    await b.outbox.retryLater("msg_1", failed, T0);
    await b.outbox.claim("erp", 1, T0, LEASE);
    await b.outbox.advance(
      "msg_1",
      { at: T0, stage: "deliver", outcome: "delivered" },
      "write_back",
      TARGET_ANSWER_WITH_SECRETS,
    );
    await b.outbox.claim("erp", 1, T0, LEASE);
    await b.outbox.bury("msg_1", { at: T0, stage: "write_back", outcome: "write_back_failed" }, "gave up");

    expect(secretsIn(await everything())).toEqual([]);
    const [row] = await admin()`SELECT data, secret, stage_data FROM dead_letters WHERE id = 'msg_1'`;
    for (const column of ["data", "secret", "stage_data"]) expect(String(row![column])).toStartWith("v1:");
    expect((await b.deadLetters.get("msg_1"))?.stageData).toBe(TARGET_ANSWER_WITH_SECRETS);
    expect((await a.deadLetters.get("msg_1"))?.history[0]).toEqual(failed);
  });

  test("a database of the first version: plain rows are read, then sealed in place at start", async () => {
    const first = postgres(url, { max: 1, onnotice: () => {} });
    admins.push(first);
    await migrate(first, 1);
    const legacy = eventWithSecrets("pending", T0);
    // The first version's secret: the same ciphertext without the "v1:" prefix.
    const secret = seal(Buffer.from(KEY, "base64"), "pending", legacy.secret!).slice(3);
    await first`
      INSERT INTO outbox (id, route, stage, data, secret, created_at, attempts, next_attempt_at, history, stage_data)
      VALUES ('pending', 'erp', 'write_back', ${legacy.data}, ${secret}, ${T0}, 1, ${T0}, '[]', ${TARGET_ANSWER_WITH_SECRETS})`;
    await first`
      INSERT INTO dead_letters (id, route, stage, data, created_at, attempts, next_attempt_at, history, dead_at, reason)
      VALUES ('dead', 'erp', 'deliver', ${legacy.data}, ${T0}, 1, ${T0}, '[]', ${T0}, 'target refused (422)')`;

    const store = open();
    expect(await store.ready()).toBe(POSTGRES_SCHEMA_VERSION);
    const columns =
      await admin()`SELECT data, stage_data FROM outbox UNION ALL SELECT data, stage_data FROM dead_letters`;
    for (const row of columns) expect(String(row.data)).toStartWith("v1:");
    expect(secretsIn(Buffer.from(JSON.stringify([...columns])))).toEqual([]);
    const [pending] = await store.outbox.claim("erp", 1, T0, LEASE);
    expect(pending).toMatchObject({ data: legacy.data, stageData: TARGET_ANSWER_WITH_SECRETS, attempts: 1 });
    expect(store.outbox.secretOf(pending!)).toBe(legacy.secret);
    expect((await store.deadLetters.get("dead"))?.data).toBe(legacy.data);
  });

  test("a replica with another key is refused: it would lose every token the others wrote", async () => {
    await open().ready();
    const other = open({ encryptionKey: Buffer.alloc(32, 9).toString("base64") });
    await expect(other.ready()).rejects.toThrow(
      "store.encryption_key does not open this database: it was first used with another key",
    );
    await expect(other.outbox.depth()).rejects.toThrow(StoreOpenError);
    expect(await other.status()).toMatchObject({ writable: false, error: expect.stringContaining("another key") });
  });

  test("an event whose sealed data does not open goes to the dead letters at its claim, with the reason", async () => {
    const store = open();
    await store.outbox.add({ id: "a", route: "erp", stage: "deliver", data: "{}", createdAt: T0 });
    await store.outbox.add({ id: "b", route: "erp", stage: "deliver", data: "{}", createdAt: T0 - 1 });
    await admin()`UPDATE outbox SET data = (SELECT data FROM outbox WHERE id = 'a') WHERE id = 'b'`;
    expect((await store.outbox.claim("erp", 10, T0, LEASE)).map((event) => event.id)).toEqual(["a"]);
    expect(await store.outbox.depth()).toEqual({ erp: 1 });
    expect(await store.deadLetters.get("b")).toMatchObject({
      reason: UNREADABLE_REASON,
      history: [{ outcome: "unreadable" }],
    });
  });

  describe("status writes", () => {
    test("a lock held on its table makes the store not writable within the readiness bound", async () => {
      const store = open();
      expect(await store.status()).toMatchObject({ writable: true });
      const locker = admin();
      let release: () => void = () => {};
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      const locking = locker.begin(async (tx) => {
        await tx`LOCK TABLE store_meta IN EXCLUSIVE MODE`;
        await held;
      });
      try {
        await Bun.sleep(100);
        const started = Date.now();
        const status = await store.status();
        expect(Date.now() - started).toBeLessThan(2_000);
        // The check before wrote nothing and said writable here.
        expect(status).toMatchObject({
          kind: "postgres",
          writable: false,
          error: "canceling statement due to lock timeout",
        });
      } finally {
        release();
        await locking;
      }
      expect(await store.status()).toMatchObject({ writable: true });
    });

    test("a read-only database (a standby) is not writable, and says so", async () => {
      const store = open();
      await store.ready();
      const name = new URL(url).pathname.slice(1);
      await admin().unsafe(`ALTER DATABASE ${name} SET default_transaction_read_only = on`);
      const fresh = open({ maxConnections: 1 });
      expect(await fresh.status()).toMatchObject({
        kind: "postgres",
        writable: false,
        error: "the database is read-only (a standby?)",
      });
    });
  });
  test("leases: a replica whose lease was taken over cannot overwrite the new owner's progress", async () => {
    const warnings: string[] = [];
    const a = open({ onWarning: (message) => warnings.push(message) });
    const b = open();
    await a.outbox.add({ id: "e", route: "erp", stage: "deliver", data: "{}", createdAt: T0 });
    expect(await a.outbox.claim("erp", 1, T0, LEASE)).toHaveLength(1);
    // Within A's lease B gets nothing; once it ran out (A hangs or died), B takes the event over.
    expect(await b.outbox.claim("erp", 1, T0 + LEASE - 1, LEASE)).toEqual([]);
    expect(await b.outbox.claim("erp", 1, T0 + LEASE, LEASE)).toHaveLength(1);
    const [row] = await admin()`SELECT lease_owner FROM outbox WHERE id = 'e'`;
    expect(row!.lease_owner).toBe(b.ownerId);

    // A wakes up late: none of its updates lands, and it says so.
    await a.outbox.retryLater("e", { at: T0, stage: "deliver", outcome: "target_failed" }, T0 + 999_999);
    await a.outbox.complete("e", { at: T0, stage: "deliver", outcome: "delivered" });
    await a.outbox.bury("e", { at: T0, stage: "deliver", outcome: "target_failed" }, "gave up");
    await a.outbox.postpone("e", T0 + 999_999);
    await a.outbox.advance("e", { at: T0, stage: "deliver", outcome: "delivered" }, "resume");
    expect(warnings).toHaveLength(5);
    expect(warnings[0]).toContain("lease lost");
    expect(await b.deadLetters.list()).toEqual([]);
    const [still] = await admin()`SELECT stage, attempts, history, lease_owner FROM outbox WHERE id = 'e'`;
    expect(still).toEqual({ stage: "deliver", attempts: 0, history: [], lease_owner: b.ownerId });

    // B's progress is recorded.
    await b.outbox.retryLater(
      "e",
      { at: T0, stage: "deliver", outcome: "target_failed", status: 503 },
      T0 + LEASE + 10,
    );
    const [retried] = await b.outbox.claim("erp", 1, T0 + LEASE + 10, LEASE);
    expect(retried).toMatchObject({ attempts: 1, history: [{ outcome: "target_failed", status: 503 }] });
  });

  test("opening never releases the leases of other replicas", async () => {
    const a = open();
    await a.outbox.add({ id: "e", route: "erp", stage: "deliver", data: "{}", createdAt: T0 });
    await a.outbox.claim("erp", 1, T0, LEASE);
    const late = open();
    await late.ready();
    expect(await late.outbox.claim("erp", 1, T0 + 1, LEASE)).toEqual([]);
  });

  test("many replicas claiming at once never get the same event (FOR UPDATE SKIP LOCKED)", async () => {
    const replicas = Array.from({ length: 5 }, () => open());
    for (let i = 0; i < 300; i++)
      await replicas[0]!.outbox.add({ id: `e${i}`, route: "erp", stage: "deliver", data: "{}", createdAt: T0 - i });
    const seen: string[] = [];
    for (let round = 0; round < 20; round++) {
      const batches = await Promise.all(replicas.map((replica) => replica.outbox.claim("erp", 4, T0, LEASE)));
      seen.push(...batches.flat().map((event) => event.id));
    }
    expect(seen).toHaveLength(300);
    expect(new Set(seen).size).toBe(300);
  });

  test("replay guard: expired ids are pruned, at most once a minute", async () => {
    const store = open();
    const ids = async () => (await admin()`SELECT id FROM replay_guard ORDER BY seen_at`).map((row) => row.id);
    await store.replayGuard.claim("a", T0);
    await store.replayGuard.claim("b", T0 + 30_000);
    await store.replayGuard.claim("c", T0 + WINDOW + 1);
    expect(await ids()).toEqual(["b", "c"]);
    await store.replayGuard.claim("d", T0 + WINDOW + 30_001);
    expect(await ids()).toEqual(["b", "c", "d"]);
  });

  test("a replay-guard release that fails while the database is down is kept and done once it is back, never thrown", async () => {
    const warnings: string[] = [];
    const store = open({ operationTimeoutMs: 2_000, onWarning: (message) => warnings.push(message) });
    expect(await store.replayGuard.claim("msg_1", T0)).toBe(true);
    await pg.stop();
    try {
      await store.replayGuard.release("msg_1");
      expect(warnings).toContain("replay guard release failed; retrying in the background");
      // epilot's retry while the database is still down: 503 (the claim fails), never a 409.
      await expect(Promise.resolve(store.replayGuard.claim("msg_1", T0 + 1))).rejects.toThrow();
    } finally {
      await pg.start();
    }
    expect(await store.replayGuard.claim("msg_1", T0 + 2)).toBe(true);
  }, 30_000);

  describe("an unreachable database", () => {
    test("opening succeeds; every call fails fast with a clear error; status is not writable and shows no password", async () => {
      const port = await closedPort();
      const warnings: string[] = [];
      const store = open({
        url: `postgres://actiongate:s3cret-pw@127.0.0.1:${port}/actiongate`,
        operationTimeoutMs: 2_000,
        onWarning: (message, fields) => warnings.push(`${message} ${JSON.stringify(fields)}`),
      });
      const started = Date.now();
      await expect(store.replayGuard.claim("msg_1")).rejects.toThrow();
      await expect(
        store.outbox.add({ id: "a", route: "erp", stage: "deliver", data: "{}", createdAt: T0 }),
      ).rejects.toThrow();
      await expect(store.outbox.claim("erp", 1, T0, LEASE)).rejects.toThrow();
      expect(Date.now() - started).toBeLessThan(6_000);
      const status = await store.status();
      expect(status).toMatchObject({
        kind: "postgres",
        writable: false,
        error: expect.stringContaining("ECONNREFUSED"),
      });
      expect(JSON.stringify(status)).not.toContain("s3cret-pw");
      expect(warnings.join("\n")).toContain("PostgreSQL is not ready at start");
      expect(warnings.join("\n")).not.toContain("s3cret-pw");
    });
  });
});

afterAll(async () => {
  for (const store of opened.splice(0)) await store.close();
});
