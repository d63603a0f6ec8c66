/**
 * A small synchronous SQLite API over whichever runtime runs us: `bun:sqlite` under Bun,
 * `node:sqlite` (`DatabaseSync`) under Deno. The store code sees only {@link SqliteDatabase}.
 *
 * Both modules are loaded with a runtime `require`, never a static import: `bun build --compile`
 * must not try to bundle `node:sqlite`, and Deno must not try to resolve `bun:sqlite`.
 */
import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname } from "node:path";

/** What a statement parameter may be (`undefined` is bound as NULL). */
export type SqliteValue = string | number | bigint | Uint8Array | null;
export type SqliteParam = SqliteValue | undefined;
export type SqliteRow = Record<string, SqliteValue>;

export interface SqliteStatement {
  run(...params: SqliteParam[]): { changes: number };
  get(...params: SqliteParam[]): SqliteRow | undefined;
  all(...params: SqliteParam[]): SqliteRow[];
}

export interface SqliteDatabase {
  /** Runs one or more statements without parameters; results are discarded. */
  exec(sql: string): void;
  /** A prepared statement with positional `?` parameters; prepared once per SQL text and reused. */
  prepare(sql: string): SqliteStatement;
  /**
   * Runs `fn` in a write transaction (`BEGIN IMMEDIATE`, so that it takes the write lock at once and
   * never fails half-way on a lock upgrade); commits when it returns, rolls back when it throws.
   * Nested calls use savepoints.
   */
  transaction<T>(fn: () => T): T;
  close(): void;
}

/** Thrown when neither Bun nor Deno runs us. */
export class SqliteUnavailableError extends Error {
  override name = "SqliteUnavailableError";
}

interface NativeStatement {
  run(...params: SqliteValue[]): { changes: number | bigint };
  get(...params: SqliteValue[]): unknown;
  all(...params: SqliteValue[]): unknown[];
  finalize?(): void;
}

interface NativeDatabase {
  exec(sql: string): unknown;
  prepare(sql: string): NativeStatement;
  close(throwOnError?: boolean): void;
}

declare const Deno: unknown;

/** Which module backs the database: by default `bun:sqlite` under Bun, `node:sqlite` elsewhere (Deno). */
export type SqliteDriver = "bun:sqlite" | "node:sqlite";

/**
 * Opens (creating it and its folder if missing) a SQLite database file.
 *
 * @example
 * const db = openSqliteDatabase("/var/lib/actiongate/store.db");
 * db.exec("CREATE TABLE IF NOT EXISTS t (id TEXT PRIMARY KEY)");
 * db.prepare("INSERT INTO t (id) VALUES (?)").run("a");
 * db.close();
 */
export function openSqliteDatabase(path: string, options: { driver?: SqliteDriver } = {}): SqliteDatabase {
  const driver = options.driver ?? defaultDriver();
  // 0700: a folder created here is the store's own; an existing folder is left as it is.
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  return wrap(openNative(path, driver));
}

function defaultDriver(): SqliteDriver {
  if (typeof Bun !== "undefined") return "bun:sqlite";
  if (typeof Deno !== "undefined") return "node:sqlite";
  throw new SqliteUnavailableError("SQLite needs Bun or Deno");
}

function openNative(path: string, driver: SqliteDriver): NativeDatabase {
  const load = createRequire(import.meta.url);
  if (driver === "bun:sqlite") {
    const { Database } = load("bun:sqlite") as typeof import("bun:sqlite");
    // strict: a missing parameter is an error rather than a silent NULL.
    // cast: bun:sqlite's Database has what NativeDatabase names, with wider generic signatures.
    return new Database(path, { create: true, strict: true }) as unknown as NativeDatabase;
  }
  const { DatabaseSync } = load("node:sqlite") as { DatabaseSync: new (path: string) => NativeDatabase };
  return new DatabaseSync(path);
}

function wrap(native: NativeDatabase): SqliteDatabase {
  const statements = new Map<string, SqliteStatement & { finalize(): void }>();
  let depth = 0;
  let closed = false;

  const prepare = (sql: string): SqliteStatement => {
    const cached = statements.get(sql);
    if (cached) return cached;
    const statement = native.prepare(sql);
    const wrapped: SqliteStatement & { finalize(): void } = {
      run: (...params) => ({ changes: Number(statement.run(...bind(params)).changes) }),
      get: (...params) => (statement.get(...bind(params)) ?? undefined) as SqliteRow | undefined,
      all: (...params) => statement.all(...bind(params)) as SqliteRow[],
      finalize: () => statement.finalize?.(),
    };
    statements.set(sql, wrapped);
    return wrapped;
  };

  return {
    exec: (sql) => {
      native.exec(sql);
    },
    prepare,
    transaction<T>(fn: () => T): T {
      const savepoint = `sp${depth}`;
      const outermost = depth === 0;
      const rollback = outermost ? "ROLLBACK" : `ROLLBACK TO ${savepoint}; RELEASE ${savepoint}`;
      native.exec(outermost ? "BEGIN IMMEDIATE" : `SAVEPOINT ${savepoint}`);
      depth++;
      let result: T;
      try {
        result = fn();
      } catch (error) {
        depth--;
        native.exec(rollback);
        throw error;
      }
      depth--;
      try {
        native.exec(outermost ? "COMMIT" : `RELEASE ${savepoint}`);
      } catch (error) {
        // A failed COMMIT may leave the transaction open; end it so that the connection stays usable.
        try {
          native.exec(rollback);
        } catch {
          // Already rolled back by SQLite.
        }
        throw error;
      }
      return result;
    },
    close: () => {
      if (closed) return;
      closed = true;
      for (const statement of statements.values()) statement.finalize();
      statements.clear();
      native.close();
    },
  };
}

function bind(params: SqliteParam[]): SqliteValue[] {
  return params.map((value) => (value === undefined ? null : value));
}
