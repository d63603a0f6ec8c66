import { openSqliteDatabase, type SqliteDatabase, type SqliteDriver } from "../runtime/sqlite.ts";
import type { ReplayGuard } from "../verify/replay-guard.ts";
import {
  countsPerRoute,
  DELIVERING_PREFIX,
  deadLetterFromRow,
  deadLetterSummaryFromRow,
  pageOf,
  pendingSummaryFromRow,
  readCursor,
  readEventRow,
  storedAttempt,
  UNREADABLE_REASON,
  unreadableAttempt,
} from "./event-row.ts";
import { GroupCommit } from "./group-commit.ts";
import { pendingReleases } from "./pending-releases.ts";
import {
  isSealed,
  KEY_CHECK_NAME,
  keyCheckValue,
  keyMatches,
  loadOrCreateKeyFile,
  openSecret,
  orderKeyDigester,
  parseKey,
  seal,
} from "./secret-box.ts";
import { markStoreCreated, prepareStoreFiles, type StoreWarn, storeFiles } from "./sqlite-files.ts";
import { SQLITE_MIGRATIONS, SQLITE_SCHEMA_VERSION } from "./sqlite-schema.ts";
import { StoreOpenError } from "./store-open-error.ts";
import {
  type AttemptRecord,
  type DeadLetterFilter,
  type DeadLetterStore,
  MAX_HISTORY,
  type NewOutboxEvent,
  type OutboxEvent,
  type OutboxStore,
  type PollInbox,
  type Store,
} from "./types.ts";

export interface SqliteStoreOptions {
  /**
   * The database file; created (0600) with its folder (0700) if missing. Refused when it is missing or
   * empty although `<path>.marker` shows a store was created there, and when it is damaged.
   */
  readonly path: string;
  /** base64 of 32 bytes; without it the key file `<path>.key` is used (created, mode 0600, if missing). */
  readonly encryptionKey?: string;
  /** `full` survives power loss; `normal` survives a killed process. */
  readonly synchronous: "full" | "normal";
  /** How long a webhook-id is remembered by the replay guard. */
  readonly replayWindowMs: number;
  /**
   * Group commit: the longest a write waits for others to share its commit while the store is busy
   * (default 2 ms); a quiet store commits each write at the next turn of the event loop. 0: never wait.
   */
  readonly commitWaitMs?: number;
  /** The clock for what the interfaces do not pass a time to (advance, bury, replay guard default). */
  readonly now?: () => number;
  /**
   * Whether opening releases every lease (default true): the gateway owns the file, so at its start
   * any lease left is from a killed process and those events are due at once. Tools that open the
   * store beside a running gateway (`actiongate dlq`) pass false, or they would hand events in flight
   * to a second worker.
   */
  readonly releaseLeases?: boolean;
  /** The SQLite module; the runtime's own by default (tests run the Deno one under Bun too). */
  readonly driver?: SqliteDriver;
  /** Told what an operator should see in the log: a store file open to other users, a failed replay-guard release. */
  readonly onWarning?: StoreWarn;
}

/** The SQLite store plus what only a single-process store can offer. */
export interface SqliteStore extends Store {
  /** Makes every leased event due at once and frees the poll locks (their process is gone); returns how many events. */
  releaseAllLeases(): Promise<number>;
}

// Re-exported: callers that open a store catch it from here.
export { StoreOpenError };

const BUSY_TIMEOUT_MS = 5_000;
const DEFAULT_COMMIT_WAIT_MS = 2;
/** The readiness probe waits less for the write lock, so that /readyz answers within its 2 s. */
const PROBE_BUSY_TIMEOUT_MS = 1_500;
const PRUNE_INTERVAL_MS = 60_000;
/** How often the order lines are checked for an event waiting behind nothing. */
const REPAIR_INTERVAL_MS = 60_000;
/** Rows sealed per statement batch when a store of the first version is upgraded. */
const SEAL_BATCH = 500;
/** A row of store_meta that says the file still holds plain text of the first version in its free space. */
const SCRUB_PENDING = "scrub_pending";

const EVENT_COLUMNS = "id, route, stage, data, secret, created_at, attempts, next_attempt_at, history, stage_data";
/** What a listing reads of a row: no data, no secret, and of the history only its last attempt. */
const SUMMARY_COLUMNS =
  "id, route, stage, attempts, created_at, next_attempt_at, json_extract(history, '$[#-1]') AS last_attempt";
/** `history` with one more attempt (the parameter), the oldest dropped beyond MAX_HISTORY. */
const APPENDED_HISTORY = `json_insert(CASE WHEN json_array_length(history) >= ${MAX_HISTORY} THEN json_remove(history, '$[0]') ELSE history END, '$[#]', json(?))`;

/** The WHERE clause and parameters of a dead-letter filter (column names from this file only). */
function deadLetterWhere(filter: DeadLetterFilter): { sql: string; params: (string | number)[] } {
  const clauses: string[] = [];
  const params: (string | number)[] = [];
  if (filter.route !== undefined) {
    clauses.push("route = ?");
    params.push(filter.route);
  }
  if (filter.routes !== undefined) {
    clauses.push("route IN (SELECT value FROM json_each(?))");
    params.push(JSON.stringify(filter.routes));
  }
  if (filter.reasonContains !== undefined) {
    clauses.push("instr(reason, ?) > 0");
    params.push(filter.reasonContains);
  }
  if (filter.diedBefore !== undefined) {
    clauses.push("dead_at < ?");
    params.push(filter.diedBefore);
  }
  return { sql: clauses.length > 0 ? clauses.join(" AND ") : "1 = 1", params };
}

/**
 * Opens the embedded SQLite store: outbox, dead letters and replay guard in one WAL-mode file.
 * Every write commits before its promise resolves, so a `kill -9` right after loses nothing; writes
 * that arrive together share one transaction and one fsync (group commit, see group-commit.ts).
 * One gateway process per file; `actiongate dlq` may open it beside the running gateway.
 *
 * At open: the files are checked (see sqlite-files.ts: modes 0600/0700, a lost database refused),
 * `PRAGMA quick_check` refuses a damaged file, the schema is migrated, and the key is checked
 * against the one the store was created with (another key is refused rather than losing every token).
 * `data`, `secret` and `stageData` of every event are sealed (AES-256-GCM, see secret-box.ts).
 *
 * @example
 * const store = openSqliteStore({ path: "/var/lib/actiongate/store.db", synchronous: "full", replayWindowMs: 600_000 });
 * await store.outbox.add({ id: "msg_1", route: "erp", stage: "deliver", data: "{}", createdAt: Date.now() });
 * await store.close();
 */
export function openSqliteStore(options: SqliteStoreOptions): SqliteStore {
  const now = options.now ?? Date.now;
  const warn = options.onWarning ?? (() => {});
  const { path } = options;
  // The key is checked before the database is touched, so that a wrong key leaves nothing open.
  const configuredKey =
    options.encryptionKey !== undefined ? parseKey(options.encryptionKey, "store.encryption_key") : undefined;
  prepareStoreFiles(path, warn);
  const db = openSqliteDatabase(path, options.driver ? { driver: options.driver } : {});
  let store: SqliteStore;
  try {
    configure(db, path, options.synchronous);
    const keyFile = storeFiles(path).keyFile;
    const key = configuredKey ?? loadOrCreateKeyFile(keyFile);
    migrate(db, key, configuredKey ? "store.encryption_key" : `the key file ${keyFile}`);
    scrubIfPending(db, path, warn);
    markStoreCreated(path, warn);
    store = createStore(db, key, options.replayWindowMs, now, warn, options.commitWaitMs ?? DEFAULT_COMMIT_WAIT_MS);
  } catch (error) {
    db.close();
    throw error;
  }
  if (options.releaseLeases ?? true) releaseLeases(db);
  return store;
}

/** Pragmas, then the integrity check: a damaged file is refused here, before anything is written to it. */
function configure(db: SqliteDatabase, path: string, synchronous: "full" | "normal"): void {
  try {
    // busy_timeout first: the pragmas below may already wait for another process (the gateway or `dlq`).
    db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
    db.exec("PRAGMA journal_mode = WAL");
    db.exec(`PRAGMA synchronous = ${synchronous === "normal" ? "NORMAL" : "FULL"}`);
    // quick_check reads every page and checks the b-trees' structure (not the indexes' content):
    // about 0.1 s for 100,000 events (200 MB) from the page cache. See docs/operations.md.
    const problems = db
      .prepare("PRAGMA quick_check(5)")
      .all()
      .map((row) => String(Object.values(row)[0]))
      .filter((line) => line !== "ok");
    if (problems.length > 0) throw damaged(path, problems.join("; "));
  } catch (error) {
    if (error instanceof StoreOpenError) throw error;
    const message = (error as Error).message;
    if (/malformed|not a database|corrupt/i.test(message)) throw damaged(path, message);
    throw error;
  }
}

function damaged(path: string, detail: string): StoreOpenError {
  return new StoreOpenError(
    `the store file ${path} is damaged (${detail}). Stop every actiongate that uses it and keep a copy of it ` +
      `(with ${path}-wal, if any). Then restore it from a backup, or save what is readable: ` +
      `sqlite3 ${path} ".recover" | sqlite3 ${path}.recovered, and put the recovered file in its place.`,
  );
}

/**
 * Brings the schema to {@link SQLITE_SCHEMA_VERSION} in one write transaction (a second process
 * opening at once waits, then finds nothing to do), seals what the first version left in plain text,
 * and checks the key.
 */
function migrate(db: SqliteDatabase, key: Uint8Array, keySource: string): void {
  db.transaction(() => {
    const version = Number(db.prepare("PRAGMA user_version").get()?.user_version ?? 0);
    if (version > SQLITE_SCHEMA_VERSION) {
      throw new StoreOpenError(
        `the store was written by a newer actiongate (schema ${version}, this one knows ${SQLITE_SCHEMA_VERSION}); upgrade actiongate`,
      );
    }
    for (let next = version + 1; next <= SQLITE_SCHEMA_VERSION; next++) db.exec(SQLITE_MIGRATIONS[next - 1]!);
    const check = db.prepare("SELECT value FROM store_meta WHERE name = ?").get(KEY_CHECK_NAME);
    if (check === undefined) {
      db.prepare("INSERT INTO store_meta (name, value) VALUES (?, ?)").run(KEY_CHECK_NAME, keyCheckValue(key));
    } else if (!keyMatches(key, String(check.value))) {
      throw new StoreOpenError(
        `${keySource} does not open this store: it was created with another key, and every token in it would be lost. ` +
          "Use the key it was created with; a store cannot change its key.",
      );
    }
    if (version === 1 && sealPlainRows(db, key) > 0) {
      // The first version's rows are sealed now, but their plain text may linger in free pages.
      db.prepare("INSERT OR REPLACE INTO store_meta (name, value) VALUES (?, ?)").run(SCRUB_PENDING, "1");
    }
    if (version < SQLITE_SCHEMA_VERSION) db.exec(`PRAGMA user_version = ${SQLITE_SCHEMA_VERSION}`);
  });
}

/** Seals `data` and `stage_data` that the first version stored as plain JSON; returns how many rows. */
function sealPlainRows(db: SqliteDatabase, key: Uint8Array): number {
  let sealed = 0;
  for (const table of ["outbox", "dead_letters"] as const) {
    let after = 0;
    for (;;) {
      const rows = db
        .prepare(`SELECT rowid AS n, id, data, stage_data FROM ${table} WHERE rowid > ? ORDER BY rowid LIMIT ?`)
        .all(after, SEAL_BATCH);
      if (rows.length === 0) break;
      for (const row of rows) {
        after = Number(row.n);
        const id = String(row.id);
        const data = String(row.data);
        const stageData = row.stage_data === null ? null : String(row.stage_data);
        if (isSealed(data) && (stageData === null || isSealed(stageData))) continue;
        db.prepare(`UPDATE ${table} SET data = ?, stage_data = ? WHERE rowid = ?`).run(
          isSealed(data) ? data : seal(key, id, data),
          stageData === null || isSealed(stageData) ? stageData : seal(key, id, stageData),
          row.n,
        );
        sealed++;
      }
    }
  }
  return sealed;
}

/**
 * Rewrites the file (VACUUM) once after plain rows were sealed, so that no free page keeps their old
 * plain text, then empties the write-ahead log. Runs at the next open if a crash came in between.
 */
function scrubIfPending(db: SqliteDatabase, path: string, warn: StoreWarn): void {
  if (!db.prepare("SELECT 1 AS pending FROM store_meta WHERE name = ?").get(SCRUB_PENDING)) return;
  db.exec("VACUUM");
  const checkpoint = db.prepare("PRAGMA wal_checkpoint(TRUNCATE)").get();
  if (Number(checkpoint?.busy ?? 0) !== 0) {
    // Another process reads the old pages: retried at the next open.
    warn("the store could not be rewritten completely (another process reads it); it is retried at the next start", {
      file: path,
    });
    return;
  }
  db.prepare("DELETE FROM store_meta WHERE name = ?").run(SCRUB_PENDING);
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
}

function releaseLeases(db: SqliteDatabase): number {
  // The poll locks too: the process that held them is gone, and the new one polls at once.
  db.prepare("DELETE FROM poll_locks").run();
  // Events are only leased once due, so next_attempt_at is already in the past: due at once.
  return db.prepare("UPDATE outbox SET lease_until = NULL WHERE lease_until IS NOT NULL").run().changes;
}

function createStore(
  db: SqliteDatabase,
  key: Uint8Array,
  replayWindowMs: number,
  now: () => number,
  warn: StoreWarn,
  commitWaitMs: number,
): SqliteStore {
  // Every write goes through one queue, committed in batches (one fsync for many writes).
  const commits = new GroupCommit(db, { maxWaitMs: commitWaitMs });
  const write = <T>(fn: () => T): Promise<T> => commits.run(fn);
  const appendHistory = `history = ${APPENDED_HISTORY}`;
  const sealed = (id: string, text: string | undefined) => (text === undefined ? null : seal(key, id, text));
  const stored = (id: string, attempt: AttemptRecord) => JSON.stringify(storedAttempt(key, id, attempt));
  const digest = orderKeyDigester(key);
  // Added after every event in the outbox: inserts are serialised by SQLite's write lock, so this is
  // the order they were added in (rowid is not: VACUUM may renumber it).
  const NEXT_SEQ = "(SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox)";

  // Table names come from this file only, never from data.
  const countRoutes = (table: "outbox" | "dead_letters") =>
    countsPerRoute(db.prepare(`SELECT route, COUNT(*) AS n FROM ${table} GROUP BY route`).all());

  /** Lets the next event of a line go once `id` has left the outbox (in the same transaction). */
  const removeEvent = (id: string) => {
    const removed = db.prepare("DELETE FROM outbox WHERE id = ? RETURNING route, order_key").get(id);
    if (removed?.order_key === null || removed?.order_key === undefined) return;
    db.prepare(
      `UPDATE outbox SET waiting = 0 WHERE id = (
         SELECT id FROM outbox WHERE route = ? AND order_key = ? ORDER BY seq LIMIT 1)`,
    ).run(removed.route, removed.order_key);
  };

  const bury = (id: string, attempt: AttemptRecord, reason: string) =>
    db.transaction(() => {
      db.prepare(
        `INSERT OR REPLACE INTO dead_letters (${EVENT_COLUMNS}, order_key, dead_at, reason)
         SELECT id, route, stage, data, secret, created_at, attempts + 1, next_attempt_at, ${APPENDED_HISTORY}, stage_data, order_key, ?, ?
         FROM outbox WHERE id = ?`,
      ).run(stored(id, attempt), now(), reason, id);
      removeEvent(id);
    });

  // An event joins the end of its key's line: it waits when an event of its route and key is in the
  // outbox already.
  const WAITING = (route: string, orderKey: string) =>
    `(CASE WHEN ${orderKey} IS NOT NULL AND EXISTS (SELECT 1 FROM outbox AS line WHERE line.route = ${route} AND line.order_key = ${orderKey}) THEN 1 ELSE 0 END)`;
  let lastRepairAt = Number.NEGATIVE_INFINITY;

  /** One statement; true when the event was added (not when its id is pending or dead already). */
  const addEvent = (event: NewOutboxEvent): boolean =>
    // The first of two adds with the same id wins, also against a dead letter of that id (replay
    // protection is earlier; this is the safety net).
    db
      .prepare(
        `INSERT OR IGNORE INTO outbox (id, route, stage, data, secret, created_at, attempts, next_attempt_at, history, stage_data, order_key, seq, waiting)
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, 0, ?6, '[]', ?7, ?8, ${NEXT_SEQ}, ${WAITING("?2", "?8")}
         WHERE NOT EXISTS (SELECT 1 FROM dead_letters WHERE id = ?1)`,
      )
      .run(
        event.id,
        event.route,
        event.stage,
        seal(key, event.id, event.data),
        sealed(event.id, event.secret),
        event.createdAt,
        sealed(event.id, event.stageData),
        event.orderKey === undefined ? null : digest(event.route, event.orderKey),
      ).changes > 0;

  /** Leases up to `limit` due events of `route` (inside a batch: see GroupCommit). */
  const claimEvents = (route: string, limit: number, claimNow: number, leaseMs: number): OutboxEvent[] => {
    if (limit <= 0) return [];
    // One statement: SQLite runs it under the write lock, so two workers (or processes) never get the
    // same row. An ordered event goes only as the head of its key's line (nothing of its route and key
    // added before it is left in the outbox).
    if (Math.abs(claimNow - lastRepairAt) >= REPAIR_INTERVAL_MS) {
      lastRepairAt = claimNow;
      repairLines();
    }
    // The heads alone are found through outbox_ready (waiting = 0); the NOT EXISTS guards them too.
    const rows = db
      .prepare(
        `UPDATE outbox SET lease_until = ?
         WHERE id IN (
           SELECT id FROM outbox AS o
           WHERE route = ? AND waiting = 0 AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until <= ?)
             AND (order_key IS NULL OR NOT EXISTS (
               SELECT 1 FROM outbox AS earlier
               WHERE earlier.route = o.route AND earlier.order_key = o.order_key AND earlier.seq < o.seq))
           ORDER BY next_attempt_at, created_at, seq
           LIMIT ?)
         RETURNING ${EVENT_COLUMNS}`,
      )
      .all(claimNow + leaseMs, route, claimNow, claimNow, limit);
    const claimed: OutboxEvent[] = [];
    for (const row of rows) {
      const { event, readable } = readEventRow(row, key);
      // It would fail the same way on every attempt: to the dead letters at once, with the reason.
      if (readable) claimed.push(event);
      else bury(event.id, unreadableAttempt(event, claimNow), UNREADABLE_REASON);
    }
    return claimed.sort((a, b) => a.nextAttemptAt - b.nextAttemptAt || a.createdAt - b.createdAt);
  };

  const outbox: OutboxStore = {
    async add(event: NewOutboxEvent) {
      // Durable when it resolves: its batch has committed.
      await write(() => {
        addEvent(event);
      });
    },

    claim: (route, limit, claimNow, leaseMs) => write(() => claimEvents(route, limit, claimNow, leaseMs)),

    async retryLater(id, attempt, nextAttemptAt) {
      await write(() => {
        db.prepare(
          `UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, lease_until = NULL, ${appendHistory} WHERE id = ?`,
        ).run(nextAttemptAt, stored(id, attempt), id);
      });
    },

    async advance(id, attempt, stage, stageData) {
      await write(() => {
        db.prepare(
          `UPDATE outbox SET stage = ?, stage_data = ?, attempts = 0, next_attempt_at = ?, lease_until = NULL, ${appendHistory} WHERE id = ?`,
        ).run(stage, sealed(id, stageData), now(), stored(id, attempt), id);
      });
    },

    async postpone(id, nextAttemptAt) {
      await write(() => {
        db.prepare("UPDATE outbox SET next_attempt_at = ?, lease_until = NULL WHERE id = ?").run(nextAttemptAt, id);
      });
    },

    async complete(id, _attempt) {
      await write(() => removeEvent(id));
    },

    async bury(id, attempt, reason) {
      await write(() => bury(id, attempt, reason));
    },

    depth: async () => countRoutes("outbox"),

    secretOf(event: OutboxEvent) {
      return event.secret === undefined ? undefined : openSecret(key, event.id, event.secret);
    },

    async list(query, listNow) {
      const clauses: string[] = [];
      const params: (string | number)[] = [];
      if (query.route !== undefined) {
        clauses.push("route = ?");
        params.push(query.route);
      }
      if (query.after !== undefined) {
        const cursor = readCursor(query.after);
        clauses.push("(next_attempt_at, id) > (?, ?)");
        params.push(cursor.sortValue, cursor.id);
      }
      const rows = db
        .prepare(
          `SELECT ${SUMMARY_COLUMNS}, lease_until FROM outbox ${clauses.length > 0 ? `WHERE ${clauses.join(" AND ")}` : ""}
           ORDER BY next_attempt_at, id LIMIT ?`,
        )
        .all(...params, query.limit + 1);
      return pageOf(
        rows.map((row) => pendingSummaryFromRow(row, listNow)),
        query.limit,
        (item) => item.nextAttemptAt,
      );
    },

    async moveToDeadLetters(route, reason, moveNow, limit) {
      if (limit <= 0) return 0;
      return write(() => {
        const ids = db
          .prepare(
            `SELECT id FROM outbox WHERE route = ? AND (lease_until IS NULL OR lease_until <= ?) ORDER BY next_attempt_at, id LIMIT ?`,
          )
          .all(route, moveNow, limit)
          .map((row) => String(row.id));
        if (ids.length === 0) return 0;
        const list = JSON.stringify(ids);
        db.prepare(
          `INSERT OR REPLACE INTO dead_letters (${EVENT_COLUMNS}, dead_at, reason)
           SELECT ${EVENT_COLUMNS}, ?, ? FROM outbox WHERE id IN (SELECT value FROM json_each(?))`,
        ).run(moveNow, reason, list);
        return db.prepare("DELETE FROM outbox WHERE id IN (SELECT value FROM json_each(?))").run(list).changes;
      });
    },

    async markDelivering(owner, at) {
      await write(() => {
        db.prepare(
          "INSERT INTO store_meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        ).run(DELIVERING_PREFIX + owner, String(at));
      });
    },

    async stopDelivering(owner) {
      await write(() => {
        db.prepare("DELETE FROM store_meta WHERE name = ?").run(DELIVERING_PREFIX + owner);
      });
    },

    async lastDelivering() {
      const row = db
        .prepare("SELECT MAX(CAST(value AS INTEGER)) AS at FROM store_meta WHERE substr(name, 1, ?) = ?")
        .get(DELIVERING_PREFIX.length, DELIVERING_PREFIX);
      return row?.at === null || row?.at === undefined ? undefined : Number(row.at);
    },
  };

  // Back into the outbox at the stage it died in, with fresh attempts and its history, at the end of
  // its key's line.
  const replaySelect = `INSERT OR IGNORE INTO outbox (${EVENT_COLUMNS}, lease_until, order_key, seq, waiting)
    SELECT id, route, stage, data, secret, created_at, 0, ?, history, stage_data, NULL, order_key, ${NEXT_SEQ},
      ${WAITING("dead_letters.route", "dead_letters.order_key")}
    FROM dead_letters`;

  /**
   * The lines kept right even if something slipped (a replica of an older version completing a head
   * does not let the next go): an event waiting with nothing of its key before it goes. Once a minute.
   */
  const repairLines = () =>
    db
      .prepare(
        `UPDATE outbox SET waiting = 0 WHERE waiting = 1 AND NOT EXISTS (
           SELECT 1 FROM outbox AS earlier
           WHERE earlier.route = outbox.route AND earlier.order_key = outbox.order_key AND earlier.seq < outbox.seq)`,
      )
      .run();

  const deadLetters: DeadLetterStore = {
    async list() {
      return db
        .prepare(`SELECT ${EVENT_COLUMNS}, dead_at, reason FROM dead_letters ORDER BY dead_at DESC, id`)
        .all()
        .map((row) => deadLetterFromRow(row, key));
    },

    async get(id) {
      const row = db.prepare(`SELECT ${EVENT_COLUMNS}, dead_at, reason FROM dead_letters WHERE id = ?`).get(id);
      return row ? deadLetterFromRow(row, key) : undefined;
    },

    async replay(id, replayNow) {
      return write(() => {
        if (!db.prepare("SELECT 1 AS found FROM dead_letters WHERE id = ?").get(id)) return false;
        // OR IGNORE: should the id somehow be pending already, that pending event is the one that runs.
        db.prepare(`${replaySelect} WHERE id = ?`).run(replayNow, id);
        db.prepare("DELETE FROM dead_letters WHERE id = ?").run(id);
        return true;
      });
    },

    async replayAll(replayNow) {
      return write(() => {
        // One by one, oldest death first: each gets its own place at the end of its key's line.
        const ids = db.prepare("SELECT id FROM dead_letters ORDER BY dead_at, id").all();
        const replayOne = db.prepare(`${replaySelect} WHERE id = ?`);
        for (const row of ids) replayOne.run(replayNow, row.id);
        return db.prepare("DELETE FROM dead_letters").run().changes;
      });
    },

    purge: (id) => write(() => db.prepare("DELETE FROM dead_letters WHERE id = ?").run(id).changes > 0),

    purgeOlderThan: (cutoff) =>
      write(() => db.prepare("DELETE FROM dead_letters WHERE dead_at < ?").run(cutoff).changes),

    async countByRoute(filter) {
      if (!filter) return countRoutes("dead_letters");
      const where = deadLetterWhere(filter);
      return countsPerRoute(
        db
          .prepare(`SELECT route, COUNT(*) AS n FROM dead_letters WHERE ${where.sql} GROUP BY route`)
          .all(...where.params),
      );
    },

    async query(query) {
      const where = deadLetterWhere(query);
      const params: (string | number)[] = [...where.params];
      let after = "";
      if (query.after !== undefined) {
        const cursor = readCursor(query.after);
        after = " AND (dead_at, id) < (?, ?)";
        params.push(cursor.sortValue, cursor.id);
      }
      const rows = db
        .prepare(
          `SELECT ${SUMMARY_COLUMNS}, dead_at, reason FROM dead_letters WHERE ${where.sql}${after}
           ORDER BY dead_at DESC, id DESC LIMIT ?`,
        )
        .all(...params, query.limit + 1);
      return pageOf(rows.map(deadLetterSummaryFromRow), query.limit, (item) => item.deadAt);
    },

    async replayBatch(filter, replayNow, limit) {
      if (limit <= 0) return 0;
      const where = deadLetterWhere(filter);
      return write(() => {
        const ids = db
          .prepare(`SELECT id FROM dead_letters WHERE ${where.sql} ORDER BY dead_at, id LIMIT ?`)
          .all(...where.params, limit)
          .map((row) => String(row.id));
        // One by one, oldest death first, as replayAll: each gets its own place at the end of its key's line.
        const replayOne = db.prepare(`${replaySelect} WHERE id = ?`);
        for (const id of ids) replayOne.run(replayNow, id);
        const list = JSON.stringify(ids);
        return db.prepare("DELETE FROM dead_letters WHERE id IN (SELECT value FROM json_each(?))").run(list).changes;
      });
    },
  };

  const releases = pendingReleases(async (webhookId) => {
    await write(() => {
      db.prepare("DELETE FROM replay_guard WHERE id = ?").run(webhookId);
    });
  }, warn);
  let lastPruneAt = Number.NEGATIVE_INFINITY;
  const replayGuard: ReplayGuard = {
    claim(webhookId, nowMs = now()) {
      // Queued at once (no await first), so that claims and releases commit in the order they came.
      if (releases.has(webhookId)) return releases.settle(webhookId).then(() => claimNow(webhookId, nowMs));
      return claimNow(webhookId, nowMs);
    },

    release: (webhookId) => releases.release(webhookId),
  };

  function claimNow(webhookId: string, nowMs: number): Promise<boolean> {
    const expiredBefore = nowMs - replayWindowMs;
    const prune = Math.abs(nowMs - lastPruneAt) >= PRUNE_INTERVAL_MS;
    if (prune) lastPruneAt = nowMs;
    return write(() => {
      if (prune) db.prepare("DELETE FROM replay_guard WHERE seen_at <= ?").run(expiredBefore);
      // Atomic across workers and processes: a new id is inserted; a known id counts as new (and is
      // refreshed) only once its window has passed. `changes` is 0 exactly when it is a replay.
      const { changes } = db
        .prepare(
          `INSERT INTO replay_guard (id, seen_at) VALUES (?, ?)
           ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at WHERE replay_guard.seen_at <= ?`,
        )
        .run(webhookId, nowMs, expiredBefore);
      return changes > 0;
    });
  }

  const inbox: PollInbox = {
    async commit(source, entries, commitNow) {
      return write(() =>
        entries.map((entry) => {
          const { changes } = db
            .prepare("INSERT OR IGNORE INTO poll_seen (use_case_id, event_id, source, seen_at) VALUES (?, ?, ?, ?)")
            .run(entry.useCaseId, entry.eventId, source, commitNow);
          return changes > 0 && addEvent(entry.event);
        }),
      );
    },
    prune: (source, cutoff) =>
      write(() => db.prepare("DELETE FROM poll_seen WHERE source = ? AND seen_at < ?").run(source, cutoff).changes),
    acquirePollLock: (source, owner, lockNow, ttlMs) =>
      write(() => {
        const { changes } = db
          .prepare(
            `INSERT INTO poll_locks (source, owner, until) VALUES (?, ?, ?)
           ON CONFLICT (source) DO UPDATE SET owner = excluded.owner, until = excluded.until
           WHERE poll_locks.owner = excluded.owner OR poll_locks.until <= ?`,
          )
          .run(source, owner, lockNow + ttlMs, lockNow);
        return changes > 0;
      }),
    async releasePollLock(source, owner) {
      await write(() => {
        db.prepare("DELETE FROM poll_locks WHERE source = ? AND owner = ?").run(source, owner);
      });
    },
  };

  let closed = false;
  return {
    outbox,
    deadLetters,
    replayGuard,
    inbox,
    releaseAllLeases: () => write(() => releaseLeases(db)),
    async status() {
      if (closed) return { kind: "sqlite", writable: false, error: "closed" };
      try {
        // A real write, committed: it fails when the disk is full or read-only, or the lock is held.
        // (A transaction that writes nothing succeeds on a full disk.)
        db.exec(`PRAGMA busy_timeout = ${PROBE_BUSY_TIMEOUT_MS}`);
        try {
          db.transaction(() => {
            db.prepare(
              "INSERT INTO store_meta (name, value) VALUES ('probe', ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            ).run(String(now()));
            db.prepare("DELETE FROM store_meta WHERE name = 'probe'").run();
          });
        } finally {
          db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
        }
        return { kind: "sqlite", writable: true, schemaVersion: SQLITE_SCHEMA_VERSION };
      } catch (error) {
        return {
          kind: "sqlite",
          writable: false,
          schemaVersion: SQLITE_SCHEMA_VERSION,
          error: (error as Error).message,
        };
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      releases.stop();
      // What is queued commits before the connection closes: a write that was accepted is not dropped.
      commits.close();
      try {
        // PASSIVE never waits for another process's readers; the last connection to close checkpoints fully anyway.
        db.exec("PRAGMA wal_checkpoint(PASSIVE)");
      } finally {
        db.close();
      }
    },
  };
}
