import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openSqliteDatabase as openWith, type SqliteDatabase, type SqliteDriver } from "./sqlite.ts";

let dir: string;
let db: SqliteDatabase | undefined;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "actiongate-sqlite-"));
});
afterEach(() => {
  db?.close();
  db = undefined;
  rmSync(dir, { recursive: true, force: true });
});

// bun:sqlite is what Bun uses; node:sqlite is what Deno uses, and Bun has it too, so both run here.
describe.each(["bun:sqlite", "node:sqlite"] as SqliteDriver[])("openSqliteDatabase with %s", (driver) => {
  const openSqliteDatabase = (path: string) => openWith(path, { driver });

  test("creates the file and its missing parent folders", () => {
    const path = join(dir, "a", "b", "store.db");
    db = openSqliteDatabase(path);
    db.exec("CREATE TABLE t (id TEXT PRIMARY KEY, n INTEGER, b BLOB)");
    expect(existsSync(path)).toBe(true);
  });

  test("run, get and all with positional parameters; undefined binds NULL", () => {
    db = openSqliteDatabase(join(dir, "store.db"));
    db.exec("CREATE TABLE t (id TEXT PRIMARY KEY, n INTEGER, note TEXT)");
    const insert = db.prepare("INSERT OR IGNORE INTO t (id, n, note) VALUES (?, ?, ?)");
    expect(insert.run("a", 1, "x")).toEqual({ changes: 1 });
    expect(insert.run("b", 2, undefined)).toEqual({ changes: 1 });
    expect(insert.run("a", 3, "dup")).toEqual({ changes: 0 });
    expect({ ...db.prepare("SELECT * FROM t WHERE id = ?").get("a") }).toEqual({ id: "a", n: 1, note: "x" });
    expect(db.prepare("SELECT * FROM t WHERE id = ?").get("zzz")).toBeUndefined();
    expect(
      db
        .prepare("SELECT id, note FROM t ORDER BY id")
        .all()
        .map((row) => ({ ...row })),
    ).toEqual([
      { id: "a", note: "x" },
      { id: "b", note: null },
    ]);
    expect(db.prepare("UPDATE t SET n = n + 1").run().changes).toBe(2);
  });

  test("prepare reuses the statement for the same SQL", () => {
    db = openSqliteDatabase(join(dir, "store.db"));
    expect(db.prepare("SELECT 1 AS one")).toBe(db.prepare("SELECT 1 AS one"));
  });

  test("UPDATE ... RETURNING gives the changed rows", () => {
    db = openSqliteDatabase(join(dir, "store.db"));
    db.exec("CREATE TABLE t (id TEXT PRIMARY KEY, n INTEGER)");
    db.exec("INSERT INTO t VALUES ('a', 1), ('b', 2)");
    expect(
      db
        .prepare("UPDATE t SET n = n * 10 WHERE n > ? RETURNING id, n")
        .all(1)
        .map((row) => ({ ...row })),
    ).toEqual([{ id: "b", n: 20 }]);
  });

  test("transaction commits on return and rolls back on throw, also when nested", () => {
    db = openSqliteDatabase(join(dir, "store.db"));
    db.exec("CREATE TABLE t (id TEXT PRIMARY KEY)");
    const insert = db.prepare("INSERT INTO t (id) VALUES (?)");
    const ids = () =>
      db!
        .prepare("SELECT id FROM t ORDER BY id")
        .all()
        .map((row) => row.id);

    expect(
      db.transaction(() => {
        insert.run("a");
        return "done";
      }),
    ).toBe("done");
    expect(() =>
      db!.transaction(() => {
        insert.run("b");
        throw new Error("boom");
      }),
    ).toThrow("boom");
    expect(ids()).toEqual(["a"]);

    db.transaction(() => {
      insert.run("c");
      expect(() =>
        db!.transaction(() => {
          insert.run("d");
          throw new Error("inner");
        }),
      ).toThrow("inner");
    });
    expect(ids()).toEqual(["a", "c"]);
  });

  test("data written before close is there after reopening", () => {
    const path = join(dir, "store.db");
    db = openSqliteDatabase(path);
    db.exec("PRAGMA journal_mode=WAL; CREATE TABLE t (id TEXT)");
    db.prepare("INSERT INTO t VALUES (?)").run("kept");
    db.close();
    db.close(); // a second close is harmless
    db = openSqliteDatabase(path);
    expect(
      db
        .prepare("SELECT id FROM t")
        .all()
        .map((row) => row.id),
    ).toEqual(["kept"]);
  });
});
