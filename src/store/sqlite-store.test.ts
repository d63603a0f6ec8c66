import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  attemptAt,
  describeStoreContract,
  eventWithSecrets,
  newEvent,
  SECRETS,
  secretsIn,
  TARGET_ANSWER_WITH_SECRETS,
} from "../../test/support/store-contract.ts";
import { openSqliteDatabase, type SqliteDriver } from "../runtime/sqlite.ts";
import { UNREADABLE_REASON } from "./event-row.ts";
import { seal } from "./secret-box.ts";
import { storeFiles } from "./sqlite-files.ts";
import { SQLITE_MIGRATIONS, SQLITE_SCHEMA_VERSION } from "./sqlite-schema.ts";
import { openSqliteStore, type SqliteStore, type SqliteStoreOptions, StoreOpenError } from "./sqlite-store.ts";
import type { AttemptRecord, NewOutboxEvent } from "./types.ts";

const T0 = 1_700_000_000_000;
const LEASE = 30_000;
const WINDOW = 600_000;
const STORE_MODULE = join(import.meta.dir, "sqlite-store.ts");

let dir: string;
let path: string;
let clock: number;
let driver: SqliteDriver;
const open: SqliteStore[] = [];

function openStore(options: Partial<SqliteStoreOptions> = {}): SqliteStore {
  const store = openSqliteStore({
    path,
    synchronous: "full",
    replayWindowMs: WINDOW,
    now: () => clock,
    driver,
    ...options,
  });
  open.push(store);
  return store;
}

const event = (id: string, overrides: Partial<NewOutboxEvent> = {}) => newEvent(id, clock, overrides);
const attempt = (outcome: string, extra: Partial<AttemptRecord> = {}) => attemptAt(outcome, clock, extra);

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "actiongate-store-"));
  path = join(dir, "data", "store.db");
  clock = T0;
});

afterEach(async () => {
  for (const store of open.splice(0)) await store.close();
  rmSync(dir, { recursive: true, force: true });
});

// bun:sqlite is what Bun uses; node:sqlite is what Deno uses, and Bun has it too, so both run here.
for (const name of ["bun:sqlite", "node:sqlite"] as SqliteDriver[]) {
  describeStoreContract(name, {
    reset: () => {
      driver = name;
    },
    // A second handle is a second process beside the gateway: it keeps the first one's leases.
    open: (now) => openStore({ now, releaseLeases: false }),
  });
}

describe.each(["bun:sqlite", "node:sqlite"] as SqliteDriver[])("%s", (name) => {
  beforeEach(() => {
    driver = name;
  });

  describe("opening", () => {
    test("creates the folder 0700, the database, its -wal and -shm, key file and marker 0600, in WAL mode at the schema version", () => {
      // The usual umask: without the store's own modes SQLite would create 0644 files and mkdir 0755.
      const umask = process.umask(0o022);
      const warnings: string[] = [];
      try {
        openStore({ onWarning: (message) => warnings.push(message) });
      } finally {
        process.umask(umask);
      }
      // Created private, not made private afterwards.
      expect(warnings).toEqual([]);
      const files = storeFiles(path);
      expect(statSync(join(dir, "data")).mode & 0o777).toBe(0o700);
      for (const file of [files.database, files.wal, files.shm, files.keyFile, files.marker]) {
        expect({ file, mode: (statSync(file).mode & 0o777).toString(8) }).toEqual({ file, mode: "600" });
      }
      expect(Buffer.from(readFileSync(files.keyFile, "utf8").trim(), "base64").length).toBe(32);
      expect(readFileSync(files.marker, "utf8")).toMatch(/^state: created \d{4}-/m);
      const db = openSqliteDatabase(path);
      try {
        expect(db.prepare("PRAGMA journal_mode").get()).toEqual({ journal_mode: "wal" });
        expect(db.prepare("PRAGMA user_version").get()).toEqual({ user_version: SQLITE_SCHEMA_VERSION });
        const indexes = db
          .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'outbox' AND sql IS NOT NULL")
          .all();
        expect(indexes).toEqual([
          { name: "outbox_due" },
          { name: "outbox_seq" },
          { name: "outbox_order" },
          { name: "outbox_ready" },
        ]);
      } finally {
        db.close();
      }
    });

    test("store files that others may read are set to 0600 at open, with a warning; an existing folder is left alone", async () => {
      await openStore().close();
      const files = storeFiles(path);
      chmodSync(join(dir, "data"), 0o755);
      for (const file of [files.database, files.keyFile, files.marker]) chmodSync(file, 0o644);
      const warnings: Record<string, unknown>[] = [];
      const store = openStore({ onWarning: (message, fields) => warnings.push({ message, ...fields }) });
      await store.outbox.add(event("a"));
      for (const file of [files.database, files.wal, files.shm, files.keyFile, files.marker]) {
        expect({ file, mode: (statSync(file).mode & 0o777).toString(8) }).toEqual({ file, mode: "600" });
      }
      expect(statSync(join(dir, "data")).mode & 0o777).toBe(0o755);
      expect(warnings).toEqual(
        [files.database, files.keyFile, files.marker].map((file) => ({
          message: "a store file was open to other users; its mode is now 0600",
          file,
          was: "0644",
        })),
      );
    });

    test("opening twice is idempotent and keeps the data", async () => {
      const first = openStore();
      await first.outbox.add(event("a"));
      await first.close();
      const second = openStore();
      expect(await second.outbox.depth()).toEqual({ erp: 1 });
    });

    test("an encryption_key that is not base64 of 32 bytes is refused at open, with a clear message", () => {
      expect(() => openStore({ encryptionKey: Buffer.alloc(16).toString("base64") })).toThrow(
        "store.encryption_key must be base64 of 32 bytes (got 16 bytes)",
      );
      expect(() => openStore({ encryptionKey: "not a key!" })).toThrow(StoreOpenError);
      // Refused before anything was created.
      expect(existsSync(path)).toBe(false);
    });

    test("a database written by a newer schema is refused", () => {
      const db = openSqliteDatabase(path);
      db.exec("PRAGMA user_version = 99");
      db.close();
      expect(() => openStore()).toThrow("newer actiongate");
    });
  });

  describe("a damaged or lost store file", () => {
    async function storeWithEvents(count: number): Promise<void> {
      // synchronous: normal, or 2,000 commits each wait for the disk.
      const store = openStore({ synchronous: "normal" });
      for (let i = 0; i < count; i++)
        await store.outbox.add(event(`e${i}`, { data: JSON.stringify({ n: i, pad: "x".repeat(300) }) }));
      await store.close();
    }

    test("bytes overwritten in the middle of the file: refused at open, naming the file and what to do", async () => {
      await storeWithEvents(2_000);
      const size = statSync(path).size;
      expect(size).toBeGreaterThan(100 * 4096);
      const fd = openSync(path, "r+");
      writeSync(fd, Buffer.alloc(64, 0xa5), 0, 64, Math.floor(size / 2 / 4096) * 4096);
      closeSync(fd);
      const refused = (() => {
        try {
          openStore();
        } catch (error) {
          return error as Error;
        }
      })();
      expect(refused).toBeInstanceOf(StoreOpenError);
      expect(refused?.message).toStartWith(`the store file ${path} is damaged (`);
      expect(refused?.message).toContain(
        `restore it from a backup, or save what is readable: sqlite3 ${path} ".recover"`,
      );
    });

    test("a page whose content no longer fits its b-tree is found by the integrity check", async () => {
      await storeWithEvents(2_000);
      // Swap two leaf pages of the outbox: every page reads, but the keys are out of order.
      const size = statSync(path).size;
      const page = 4096;
      const a = Math.floor(size / 3 / page) * page;
      const b = Math.floor((2 * size) / 3 / page) * page;
      const bytes = readFileSync(path);
      const first = Buffer.from(bytes.subarray(a, a + page));
      bytes.set(bytes.subarray(b, b + page), a);
      bytes.set(first, b);
      writeFileSync(path, bytes);
      expect(() => openStore()).toThrow(`the store file ${path} is damaged (`);
    });

    test("a file that is not a database is refused as damaged", async () => {
      await storeWithEvents(1);
      writeFileSync(path, "this is not a SQLite database, it only has its name\n".repeat(100));
      expect(() => openStore()).toThrow(`the store file ${path} is damaged (file is not a database)`);
    });

    test("a store file that shrank to 0 bytes is refused, not reset; the file and the marker stay as they are", async () => {
      await storeWithEvents(3);
      truncateSync(path, 0);
      const marker = readFileSync(storeFiles(path).marker, "utf8");
      const since = /^state: created (\S+)$/m.exec(marker)?.[1];
      expect(() => openStore()).toThrow(
        `the store file ${path} is empty (0 bytes), but ${path}.marker shows that a store was created there on ${since}; ` +
          "starting with an empty store would lose its pending events, dead letters and replay guard. " +
          `Restore ${path} from a backup (with its -wal file, if any). To start with an empty store on purpose, delete ${path}.marker and ${path}.key as well.`,
      );
      expect(statSync(path).size).toBe(0);
      expect(readFileSync(storeFiles(path).marker, "utf8")).toBe(marker);
    });

    test("a store file that is gone is refused too; deleting the marker starts an empty store on purpose", async () => {
      await storeWithEvents(3);
      for (const file of [path, `${path}-wal`, `${path}-shm`]) rmSync(file, { force: true });
      expect(() => openStore()).toThrow(`the store file ${path} does not exist, but ${path}.marker shows`);
      expect(existsSync(path)).toBe(false);
      rmSync(storeFiles(path).marker);
      rmSync(storeFiles(path).keyFile);
      expect(await openStore().outbox.depth()).toEqual({});
    });

    test("a store of the first version (no marker) that lost its database is refused by its key file", async () => {
      await storeWithEvents(1);
      rmSync(storeFiles(path).marker);
      truncateSync(path, 0);
      expect(() => openStore()).toThrow(`the store file ${path} is empty (0 bytes), but ${path}.key shows`);
    });

    test("a first start that died before the schema was written starts afresh", async () => {
      // What such a start leaves behind: an empty file, the key file, the marker still saying "creating".
      mkdirSync(join(dir, "data"));
      writeFileSync(path, "");
      writeFileSync(`${path}.key`, `${Buffer.alloc(32, 5).toString("base64")}\n`, { mode: 0o600 });
      writeFileSync(`${path}.marker`, "actiongate SQLite store marker\nstate: creating\n", { mode: 0o600 });
      const store = openStore();
      await store.outbox.add(event("a"));
      expect(await store.outbox.depth()).toEqual({ erp: 1 });
      expect(readFileSync(`${path}.marker`, "utf8")).toMatch(/^state: created /m);
    });
  });

  describe("a store of the first version (schema 1)", () => {
    const KEY = Buffer.alloc(32, 7);
    const firstVersionSecret = (id: string, text: string) => seal(KEY, id, text).slice("v1:".length);

    /** A database as actiongate's first version left it: plain data, the old lease column, a deleted row's remains. */
    function firstVersionStore(): void {
      mkdirSync(join(dir, "data"));
      writeFileSync(`${path}.key`, `${KEY.toString("base64")}\n`, { mode: 0o600 });
      const db = openSqliteDatabase(path);
      db.exec("PRAGMA journal_mode = WAL");
      db.exec(SQLITE_MIGRATIONS[0]!);
      db.exec("PRAGMA user_version = 1");
      const legacy = eventWithSecrets("pending", T0);
      db.prepare(
        `INSERT INTO outbox (id, route, stage, data, secret, created_at, attempts, next_attempt_at, leased_until, history, stage_data)
         VALUES (?, 'erp', 'write_back', ?, ?, ?, 2, ?, ?, '[{"at":1,"stage":"deliver","outcome":"delivered"}]', ?)`,
      ).run(
        "pending",
        legacy.data,
        firstVersionSecret("pending", legacy.secret!),
        T0,
        T0,
        T0 + LEASE,
        TARGET_ANSWER_WITH_SECRETS,
      );
      const dead = eventWithSecrets("dead", T0);
      db.prepare(
        `INSERT INTO dead_letters (id, route, stage, data, secret, created_at, attempts, next_attempt_at, history, stage_data, dead_at, reason)
         VALUES ('dead', 'erp', 'deliver', ?, ?, ?, 3, ?, '[]', NULL, ?, 'target refused (422)')`,
      ).run(dead.data, firstVersionSecret("dead", dead.secret!), T0, T0, T0);
      // An event the first version delivered and deleted: its plain text stays in the file's free space.
      db.prepare(
        "INSERT INTO outbox (id, route, stage, data, created_at, next_attempt_at) VALUES ('done', 'erp', 'deliver', ?, ?, ?)",
      ).run(eventWithSecrets("done", T0).data, T0, T0);
      db.prepare("DELETE FROM outbox WHERE id = 'done'").run();
      db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
      db.close();
      expect(secretsIn(readFileSync(path)).length).toBeGreaterThan(0);
    }

    test("is migrated: rows are read as they were, sealed in place, and no plain text is left in the files", async () => {
      firstVersionStore();
      const store = openStore();
      for (const file of [path, `${path}-wal`].filter(existsSync))
        expect({ file, found: secretsIn(readFileSync(file)) }).toEqual({ file, found: [] });

      const db = openSqliteDatabase(path);
      try {
        const columns = db
          .prepare("SELECT name FROM pragma_table_info('outbox')")
          .all()
          .map((row) => row.name);
        expect(columns).toContain("lease_until");
        expect(columns).not.toContain("leased_until");
        for (const row of db
          .prepare(
            "SELECT data, secret, stage_data FROM outbox UNION ALL SELECT data, secret, stage_data FROM dead_letters",
          )
          .all()) {
          expect(String(row.data)).toStartWith("v1:");
          expect(String(row.secret)).not.toStartWith("v1:"); // a first-version secret is read as it is
          if (row.stage_data !== null) expect(String(row.stage_data)).toStartWith("v1:");
        }
      } finally {
        db.close();
      }

      // The first version's lease is released at open like any other; everything reads as it was written.
      const legacy = eventWithSecrets("pending", T0);
      const [pending] = await store.outbox.claim("erp", 10, T0, LEASE);
      expect(pending).toMatchObject({
        id: "pending",
        stage: "write_back",
        attempts: 2,
        data: legacy.data,
        stageData: TARGET_ANSWER_WITH_SECRETS,
      });
      expect(pending?.history).toEqual([{ at: 1, stage: "deliver", outcome: "delivered" }]);
      expect(store.outbox.secretOf(pending!)).toBe(legacy.secret);
      const dead = await store.deadLetters.get("dead");
      expect(dead?.data).toBe(eventWithSecrets("dead", T0).data);
      expect(store.outbox.secretOf(dead!)).toBe(legacy.secret);
    });

    test("is refused with another key, which would lose every token in it", () => {
      firstVersionStore();
      openStore();
      const closing = open.pop()!;
      void closing.close();
      expect(() => openStore({ encryptionKey: Buffer.alloc(32, 9).toString("base64") })).toThrow(
        "store.encryption_key does not open this store: it was created with another key, and every token in it would be lost.",
      );
    });
  });

  describe("outbox", () => {
    test("concurrent claims from separate processes never overlap", async () => {
      const store = openStore();
      for (let i = 0; i < 300; i++) await store.outbox.add(event(`e${i}`));
      const script = join(dir, "claimer.ts");
      writeFileSync(
        script,
        `import { openSqliteStore } from ${JSON.stringify(STORE_MODULE)};
         const store = openSqliteStore({ path: process.argv[2], synchronous: "full", replayWindowMs: 1000, releaseLeases: false });
         const ids = [];
         for (;;) {
           const batch = await store.outbox.claim("erp", 3, ${T0}, 60_000);
           if (batch.length === 0) break;
           ids.push(...batch.map((e) => e.id));
         }
         await store.close();
         process.stdout.write(JSON.stringify(ids));`,
      );
      const workers = Array.from({ length: 4 }, () =>
        Bun.spawn([process.execPath, script, path], { stdout: "pipe", stderr: "pipe" }),
      );
      const results = await Promise.all(
        workers.map(async (worker) => {
          const [out, err, code] = await Promise.all([
            new Response(worker.stdout).text(),
            new Response(worker.stderr).text(),
            worker.exited,
          ]);
          expect({ code, err }).toEqual({ code: 0, err: "" });
          return JSON.parse(out) as string[];
        }),
      );
      const all = results.flat();
      expect(all).toHaveLength(300);
      expect(new Set(all).size).toBe(300);
    }, 30_000);
  });

  describe("durability and restarts", () => {
    test("pending events, their history and leases survive close and reopen; leases are released on open", async () => {
      const first = openStore();
      await first.outbox.add(event("in-flight", { createdAt: T0 - 1 }));
      await first.outbox.add(event("waiting"));
      await first.outbox.add(event("later", { createdAt: T0 + 60_000 }));
      expect((await first.outbox.claim("erp", 1, clock, LEASE)).map((e) => e.id)).toEqual(["in-flight"]);
      expect((await first.outbox.claim("erp", 1, clock, LEASE)).map((e) => e.id)).toEqual(["waiting"]);
      await first.outbox.retryLater("waiting", attempt("target_failed", { status: 503 }), T0 + 5_000);
      await first.close();

      const second = openStore();
      expect(await second.outbox.depth()).toEqual({ erp: 3 });
      // The lease of the killed worker is gone: due at once, long before the lease would have run out.
      const now = await second.outbox.claim("erp", 10, clock, LEASE);
      expect(now.map((e) => e.id)).toEqual(["in-flight"]);
      const [waiting] = await second.outbox.claim("erp", 10, T0 + 5_000, LEASE);
      expect(waiting).toMatchObject({
        id: "waiting",
        attempts: 1,
        history: [{ outcome: "target_failed", status: 503 }],
      });
    });

    test("releaseLeases: false keeps the leases of a running gateway (dlq opens the store beside it)", async () => {
      const gateway = openStore();
      await gateway.outbox.add(event("a"));
      await gateway.outbox.claim("erp", 1, clock, LEASE);
      openStore({ releaseLeases: false });
      expect(await gateway.outbox.claim("erp", 1, clock, LEASE)).toEqual([]);
      expect(await gateway.releaseAllLeases()).toBe(1);
      expect(await gateway.outbox.claim("erp", 1, clock, LEASE)).toHaveLength(1);
    });

    test("a line whose head left without letting the next go (an older version completed it) is repaired within a minute", async () => {
      const store = openStore();
      await store.outbox.add(event("a1", { orderKey: "k" }));
      await store.outbox.add(event("a2", { orderKey: "k" }));
      expect((await store.outbox.claim("erp", 10, clock, LEASE)).map((e) => e.id)).toEqual(["a1"]);
      // What a replica of the previous version does: it deletes the row and knows nothing of lines.
      const db = openSqliteDatabase(path);
      db.prepare("DELETE FROM outbox WHERE id = 'a1'").run();
      db.close();
      expect(await store.outbox.claim("erp", 10, clock + 1_000, LEASE)).toEqual([]);
      expect((await store.outbox.claim("erp", 10, clock + 60_000, LEASE)).map((e) => e.id)).toEqual(["a2"]);
    });

    test("a poll lock left by a process that is gone is freed at open, but not by a tool opening beside the gateway", async () => {
      const killed = openStore();
      expect(await killed.inbox.acquirePollLock("feed", "killed-process", T0, 60_000)).toBe(true);
      await killed.close();
      const beside = openStore({ releaseLeases: false });
      expect(await beside.inbox.acquirePollLock("feed", "dlq-tool", T0 + 1, 60_000)).toBe(false);
      await beside.close();
      const restarted = openStore();
      expect(await restarted.inbox.acquirePollLock("feed", "restarted-gateway", T0 + 2, 60_000)).toBe(true);
    });

    test("add is committed when it resolves: kill -9 right after loses nothing", async () => {
      const script = join(dir, "adder.ts");
      writeFileSync(
        script,
        `import { openSqliteStore } from ${JSON.stringify(STORE_MODULE)};
         const store = openSqliteStore({ path: process.argv[2], synchronous: "normal", replayWindowMs: 1000 });
         for (let i = 0; i < 25; i++) {
           await store.outbox.add({ id: "k" + i, route: "erp", stage: "deliver", data: "{}", secret: "tok" + i, createdAt: ${T0} });
         }
         // Concurrent adds share commits (group commit): each is durable once all have resolved.
         await Promise.all(Array.from({ length: 25 }, (_, j) => store.outbox.add(
           { id: "k" + (25 + j), route: "erp", stage: "deliver", data: "{}", secret: "tok" + (25 + j), createdAt: ${T0} })));
         await store.replayGuard.claim("seen-before-kill", ${T0});
         process.kill(process.pid, "SIGKILL");`,
      );
      const child = Bun.spawn([process.execPath, script, path], { stdout: "pipe", stderr: "pipe" });
      await child.exited;
      expect(child.signalCode).toBe("SIGKILL");
      const store = openStore();
      expect(await store.outbox.depth()).toEqual({ erp: 50 });
      const claimed = await store.outbox.claim("erp", 100, clock, LEASE);
      expect(claimed.map((e) => store.outbox.secretOf(e)).sort()).toEqual(
        Array.from({ length: 50 }, (_, i) => `tok${i}`).sort(),
      );
      expect(await store.replayGuard.claim("seen-before-kill", T0 + 1)).toBe(false);
    }, 30_000);
  });

  describe("secrets", () => {
    const storedFiles = () => [path, `${path}-wal`].filter(existsSync);

    test("nothing of a payload rests in clear: neither the database nor its WAL holds a token, a forwarded secret or a payload field, through an event's whole life", async () => {
      const store = openStore();
      const written = eventWithSecrets("msg_1", T0);
      await store.outbox.add(written);
      // Another line (no order key), so that msg_1 is the one claimed throughout.
      const { orderKey: _, ...second } = eventWithSecrets("msg_2", T0 + 1);
      await store.outbox.add(second);
      const [claimed] = await store.outbox.claim("erp", 1, clock, LEASE);
      expect(claimed?.data).toBe(written.data);
      expect(store.outbox.secretOf(claimed!)).toBe(written.secret);
      // The target's answer and the resolved URL of an attempt may echo the payload: sealed too.
      const failed = attempt("target_failed", {
        status: 503,
        url: `http://erp.internal/api/${SECRETS.payloadField}`,
        answer: JSON.stringify({ error: `unknown contract ${SECRETS.targetAnswer}` }),
      });
      await store.outbox.retryLater("msg_1", failed, clock);
      await store.outbox.claim("erp", 1, clock, LEASE);
      await store.outbox.advance(
        "msg_1",
        attempt("delivered", { status: 200 }),
        "write_back",
        TARGET_ANSWER_WITH_SECRETS,
      );
      await store.outbox.claim("erp", 1, clock, LEASE);
      await store.outbox.bury("msg_1", attempt("write_back_failed", { stage: "write_back" }), "gave up");
      for (const file of storedFiles())
        expect({ file, found: secretsIn(readFileSync(file)) }).toEqual({ file, found: [] });

      expect((await store.deadLetters.get("msg_1"))?.history[0]).toEqual(failed);
      expect(await store.deadLetters.replay("msg_1", clock)).toBe(true);
      const [replayed] = await store.outbox.claim("erp", 1, clock, LEASE);
      expect(replayed).toMatchObject({ data: written.data, stageData: TARGET_ANSWER_WITH_SECRETS });
      await store.outbox.complete("msg_1", attempt("delivered"));
      for (const file of storedFiles())
        expect({ file, found: secretsIn(readFileSync(file)) }).toEqual({ file, found: [] });
      await store.close();
      for (const file of storedFiles())
        expect({ file, found: secretsIn(readFileSync(file)) }).toEqual({ file, found: [] });
    });

    test("the token decrypts after reopening with the key file; each value carries its format", async () => {
      const TOKEN = "eyJhbGciOi-very-secret-epilot-token-4711";
      const first = openStore();
      await first.outbox.add(event("a", { secret: TOKEN }));
      await first.close();
      const db = openSqliteDatabase(path);
      const stored = db.prepare("SELECT data, secret FROM outbox WHERE id = ?").get("a");
      db.close();
      expect(String(stored?.secret)).toStartWith("v1:");
      expect(Buffer.from(String(stored?.secret).slice(3), "base64").length).toBe(12 + 16 + TOKEN.length);
      expect(String(stored?.data)).toStartWith("v1:");

      const second = openStore();
      const [again] = await second.outbox.claim("erp", 1, clock, LEASE);
      expect(second.outbox.secretOf(again!)).toBe(TOKEN);
      expect(second.outbox.secretOf({ ...again!, secret: "garbage" })).toBeUndefined();
    });

    test("with encryption_key, no key file is written; another key is refused at open, naming where the key came from", async () => {
      const key = Buffer.alloc(32, 7).toString("base64");
      const first = openStore({ encryptionKey: key });
      expect(existsSync(`${path}.key`)).toBe(false);
      await first.outbox.add(event("a", { secret: "tok" }));
      await first.close();

      const same = openStore({ encryptionKey: key });
      const [claimed] = await same.outbox.claim("erp", 1, clock, LEASE);
      expect(same.outbox.secretOf(claimed!)).toBe("tok");
      await same.close();

      expect(() => openStore({ encryptionKey: Buffer.alloc(32, 9).toString("base64") })).toThrow(
        "store.encryption_key does not open this store: it was created with another key",
      );
      // Without encryption_key the key file would be made and used: refused just the same, by its name.
      expect(() => openStore()).toThrow(`the key file ${path}.key does not open this store`);
    });

    test("an event whose sealed data does not open goes to the dead letters at its claim, with the reason", async () => {
      const store = openStore();
      await store.outbox.add(event("a"));
      await store.outbox.add(event("b", { createdAt: T0 - 1 }));
      // Someone copied a's sealed data onto b: it is bound to a's id and does not open there.
      const db = openSqliteDatabase(path);
      db.exec("PRAGMA busy_timeout = 5000");
      db.prepare("UPDATE outbox SET data = (SELECT data FROM outbox WHERE id = 'a') WHERE id = 'b'").run();
      db.close();
      expect((await store.outbox.claim("erp", 10, clock, LEASE)).map((e) => e.id)).toEqual(["a"]);
      expect(await store.outbox.depth()).toEqual({ erp: 1 });
      expect(await store.deadLetters.get("b")).toMatchObject({
        reason: UNREADABLE_REASON,
        attempts: 1,
        history: [{ outcome: "unreadable", stage: "deliver" }],
      });
    });

    test("a damaged key file is refused with its name", async () => {
      openStore();
      await open.pop()!.close();
      writeFileSync(`${path}.key`, "c2hvcnQ=\n");
      expect(() => openStore()).toThrow(`the key file ${path}.key must be base64 of 32 bytes`);
    });
  });

  describe("replay guard", () => {
    test("expired ids are pruned, at most once a minute", async () => {
      const store = openStore();
      const ids = () => {
        const db = openSqliteDatabase(path);
        try {
          return db
            .prepare("SELECT id FROM replay_guard ORDER BY seen_at")
            .all()
            .map((row) => row.id);
        } finally {
          db.close();
        }
      };
      await store.replayGuard.claim("a", T0); // prunes (first claim)
      await store.replayGuard.claim("b", T0 + 30_000);
      await store.replayGuard.claim("c", T0 + WINDOW + 1); // a minute since the last prune: a has expired and goes
      expect(ids()).toEqual(["b", "c"]);
      await store.replayGuard.claim("d", T0 + WINDOW + 30_001); // b has expired, but the last prune is too recent
      expect(ids()).toEqual(["b", "c", "d"]);
      await store.replayGuard.claim("e", T0 + WINDOW + 60_001);
      expect(ids()).toEqual(["c", "d", "e"]);
    });
  });
});
