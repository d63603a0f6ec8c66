import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { attemptAt, describeStoreContract, newEvent } from "../../test/support/store-contract.ts";
import { openSqliteDatabase, type SqliteDriver } from "../runtime/sqlite.ts";
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
    test("creates the folder, the database in WAL mode with its schema version, and a 0600 key file", () => {
      openStore();
      expect(existsSync(path)).toBe(true);
      const keyFile = `${path}.key`;
      expect(statSync(keyFile).mode & 0o777).toBe(0o600);
      expect(Buffer.from(readFileSync(keyFile, "utf8").trim(), "base64").length).toBe(32);
      const db = openSqliteDatabase(path);
      try {
        expect(db.prepare("PRAGMA journal_mode").get()).toEqual({ journal_mode: "wal" });
        expect(db.prepare("PRAGMA user_version").get()).toEqual({ user_version: 1 });
        const indexes = db
          .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'outbox' AND sql IS NOT NULL")
          .all();
        expect(indexes).toEqual([{ name: "outbox_due" }]);
      } finally {
        db.close();
      }
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

    test("add is committed when it resolves: kill -9 right after loses nothing", async () => {
      const script = join(dir, "adder.ts");
      writeFileSync(
        script,
        `import { openSqliteStore } from ${JSON.stringify(STORE_MODULE)};
         const store = openSqliteStore({ path: process.argv[2], synchronous: "normal", replayWindowMs: 1000 });
         for (let i = 0; i < 50; i++) {
           await store.outbox.add({ id: "k" + i, route: "erp", stage: "deliver", data: "{}", secret: "tok" + i, createdAt: ${T0} });
         }
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
    const TOKEN = "eyJhbGciOi-very-secret-epilot-token-4711";

    test("the token is encrypted at rest and decrypts after reopening with the key file", async () => {
      const first = openStore();
      await first.outbox.add(event("a", { secret: TOKEN }));
      const [claimed] = await first.outbox.claim("erp", 1, clock, LEASE);
      expect(claimed?.secret).not.toBe(TOKEN);
      expect(first.outbox.secretOf(claimed!)).toBe(TOKEN);

      // Neither the column nor any byte of the files (database and write-ahead log) holds the token.
      const db = openSqliteDatabase(path);
      const stored = String(db.prepare("SELECT secret FROM outbox WHERE id = ?").get("a")?.secret);
      db.close();
      expect(stored).not.toContain(TOKEN);
      expect(Buffer.from(stored, "base64").length).toBe(12 + 16 + TOKEN.length);
      for (const file of [path, `${path}-wal`].filter(existsSync)) {
        expect(readFileSync(file).includes(Buffer.from(TOKEN))).toBe(false);
      }
      await first.close();
      for (const file of [path, `${path}-wal`].filter(existsSync)) {
        expect(readFileSync(file).includes(Buffer.from(TOKEN))).toBe(false);
      }

      const second = openStore();
      const [again] = await second.outbox.claim("erp", 1, clock, LEASE);
      expect(second.outbox.secretOf(again!)).toBe(TOKEN);
    });

    test("with encryption_key, no key file is written; another key gives undefined, never an error", async () => {
      const key = Buffer.alloc(32, 7).toString("base64");
      const first = openStore({ encryptionKey: key });
      expect(existsSync(`${path}.key`)).toBe(false);
      await first.outbox.add(event("a", { secret: TOKEN }));
      await first.close();

      const same = openStore({ encryptionKey: key });
      const [claimed] = await same.outbox.claim("erp", 1, clock, LEASE);
      expect(same.outbox.secretOf(claimed!)).toBe(TOKEN);
      await same.close();

      const other = openStore({ encryptionKey: Buffer.alloc(32, 9).toString("base64") });
      const [again] = await other.outbox.claim("erp", 1, clock, LEASE);
      expect(other.outbox.secretOf(again!)).toBeUndefined();
      expect(other.outbox.secretOf({ ...again!, secret: "garbage" })).toBeUndefined();
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
