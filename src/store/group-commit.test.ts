import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openSqliteDatabase, type SqliteDatabase } from "../runtime/sqlite.ts";
import { GroupCommit } from "./group-commit.ts";

/** Group commit over a real SQLite file, read back through a second connection (what another process sees). */
let dir: string;
let db: SqliteDatabase;
let reader: SqliteDatabase;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "actiongate-group-commit-"));
  db = openSqliteDatabase(join(dir, "store.db"));
  db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON");
  db.exec(`CREATE TABLE parent (id TEXT PRIMARY KEY);
    CREATE TABLE t (id TEXT PRIMARY KEY, parent TEXT REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)`);
  reader = openSqliteDatabase(join(dir, "store.db"));
});
afterEach(() => {
  db.close();
  reader.close();
  rmSync(dir, { recursive: true, force: true });
});

const insert =
  (id: string, parent: string | null = null) =>
  () =>
    db.prepare("INSERT INTO t (id, parent) VALUES (?, ?)").run(id, parent).changes;
const committedIds = () =>
  reader
    .prepare("SELECT id FROM t ORDER BY id")
    .all()
    .map((row) => row.id);

describe("GroupCommit", () => {
  test("writes queued in one turn share one transaction; each resolves with its own result, in order", async () => {
    const commits = new GroupCommit(db, { maxWaitMs: 2 });
    const order: string[] = [];
    const results = await Promise.all(
      ["a", "b", "c"].map((id) =>
        commits.run(() => {
          order.push(id);
          return `${id}:${insert(id)()}`;
        }),
      ),
    );
    expect(results).toEqual(["a:1", "b:1", "c:1"]);
    expect(order).toEqual(["a", "b", "c"]);
    expect({ batches: commits.batches, writes: commits.writes }).toEqual({ batches: 1, writes: 3 });
    expect(committedIds()).toEqual(["a", "b", "c"]);
  });

  test("a write is visible to another connection only once its promise resolved", async () => {
    const commits = new GroupCommit(db, { maxWaitMs: 2 });
    const pending = commits.run(insert("a"));
    expect(committedIds()).toEqual([]);
    await pending;
    expect(committedIds()).toEqual(["a"]);
  });

  test("a write that throws is rolled back alone: its own rows too; the others commit", async () => {
    const commits = new GroupCommit(db, { maxWaitMs: 2 });
    const first = commits.run(insert("a"));
    const failing = commits.run(() => {
      insert("half-done")();
      throw new Error("constraint of this write");
    });
    const duplicate = commits.run(insert("a"));
    const last = commits.run(insert("b"));
    expect(await first).toBe(1);
    expect(failing).rejects.toThrow("constraint of this write");
    expect(duplicate).rejects.toThrow(/UNIQUE/);
    expect(await last).toBe(1);
    expect(committedIds()).toEqual(["a", "b"]);
    expect(commits.batches).toBe(1);
  });

  test("a failed COMMIT rejects every write of the batch, and none of them is on disk", async () => {
    const commits = new GroupCommit(db, { maxWaitMs: 2 });
    // A deferred foreign key is checked at COMMIT: the whole transaction fails there.
    const writes = [
      commits.run(insert("a")),
      commits.run(insert("orphan", "no-such-parent")),
      commits.run(insert("b")),
    ];
    const settled = await Promise.allSettled(writes);
    expect(settled.map((result) => result.status)).toEqual(["rejected", "rejected", "rejected"]);
    expect(String((settled[0] as PromiseRejectedResult).reason)).toMatch(/FOREIGN KEY/);
    expect(committedIds()).toEqual([]);
    // The connection is usable afterwards: the next batch commits.
    expect(await commits.run(insert("c"))).toBe(1);
    expect(committedIds()).toEqual(["c"]);
  });

  test("a quiet store commits a lone write at the next turn, not after the wait", async () => {
    const commits = new GroupCommit(db, { maxWaitMs: 80 });
    for (let round = 0; round < 3; round++) {
      const started = performance.now();
      await commits.run(insert(`lone-${round}`));
      expect(performance.now() - started).toBeLessThan(40);
    }
    expect(commits.batches).toBe(3);
  });

  test("a busy store waits up to maxWaitMs for writes of later turns, and no longer", async () => {
    const commits = new GroupCommit(db, { maxWaitMs: 60 });
    await Promise.all([commits.run(insert("busy-1")), commits.run(insert("busy-2"))]);
    expect(commits.batches).toBe(1);
    // The last batch held two: the next one stays open for later turns.
    const started = performance.now();
    const early = commits.run(insert("early"));
    await new Promise((resolve) => setTimeout(resolve, 10));
    const late = commits.run(insert("late"));
    await Promise.all([early, late]);
    const waited = performance.now() - started;
    expect(commits.batches).toBe(2);
    expect(waited).toBeGreaterThanOrEqual(50);
    expect(waited).toBeLessThan(1_000);
  });

  test("a full batch commits without waiting; the rest go in the next", async () => {
    const commits = new GroupCommit(db, { maxWaitMs: 60_000, maxBatch: 100 });
    await Promise.all([commits.run(insert("warm-1")), commits.run(insert("warm-2"))]);
    const started = performance.now();
    await Promise.all(Array.from({ length: 250 }, (_, i) => commits.run(insert(`w${i}`))));
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(commits.writes).toBe(252);
    expect(commits.batches).toBe(1 + 3);
    expect(committedIds()).toHaveLength(252);
  });

  test("close commits what is queued, then refuses further writes", async () => {
    const commits = new GroupCommit(db, { maxWaitMs: 60_000 });
    await Promise.all([commits.run(insert("x")), commits.run(insert("y"))]);
    const queued = commits.run(insert("queued"));
    commits.close();
    expect(committedIds()).toEqual(["queued", "x", "y"]);
    expect(await queued).toBe(1);
    expect(commits.run(insert("after"))).rejects.toThrow("the store is closed");
  });
});
