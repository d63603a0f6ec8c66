import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import postgres from "postgres";
import { type TestPostgres, testPostgres } from "../../test/support/postgres.ts";
import { closedPort } from "../../test/support/recording-server.ts";
import { describeStoreContract, LEASE, T0, WINDOW } from "../../test/support/store-contract.ts";
import { POSTGRES_SCHEMA_VERSION } from "./postgres-schema.ts";
import { openPostgresStore, type PostgresStore, type PostgresStoreOptions } from "./postgres-store.ts";
import { StoreOpenError } from "./store-open-error.ts";

const KEY = Buffer.alloc(32, 3).toString("base64");
const TOKEN = "eyJhbGciOi-very-secret-epilot-token-4711";

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

  test("the token is encrypted at rest: the row holds no byte of it, and the other replica decrypts it with the shared key", async () => {
    const a = open();
    await a.outbox.add({ id: "a", route: "erp", stage: "deliver", data: "{}", secret: TOKEN, createdAt: T0 });
    const [row] = await admin()`SELECT secret, data FROM outbox WHERE id = 'a'`;
    expect(String(row!.secret)).not.toContain(TOKEN);
    expect(Buffer.from(String(row!.secret), "base64").length).toBe(12 + 16 + TOKEN.length);
    const [event] = await open().outbox.claim("erp", 1, T0, LEASE);
    expect(open().outbox.secretOf(event!)).toBe(TOKEN);
    expect(open({ encryptionKey: Buffer.alloc(32, 9).toString("base64") }).outbox.secretOf(event!)).toBeUndefined();
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
