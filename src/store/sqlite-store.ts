import { openSqliteDatabase, type SqliteDatabase, type SqliteDriver } from "../runtime/sqlite.ts";
import type { ReplayGuard } from "../verify/replay-guard.ts";
import { countsPerRoute, deadLetterFromRow, eventFromRow } from "./event-row.ts";
import { decryptSecret as decrypt, encryptSecret as encrypt, loadOrCreateKeyFile, parseKey } from "./secret-box.ts";
import { StoreOpenError } from "./store-open-error.ts";
import type { DeadLetterStore, NewOutboxEvent, OutboxEvent, OutboxStore, Store } from "./types.ts";

export interface SqliteStoreOptions {
  /** The database file; created with its folder if missing. */
  readonly path: string;
  /** base64 of 32 bytes; without it the key file `<path>.key` is used (created, mode 0600, if missing). */
  readonly encryptionKey?: string;
  /** `full` survives power loss; `normal` survives a killed process. */
  readonly synchronous: "full" | "normal";
  /** How long a webhook-id is remembered by the replay guard. */
  readonly replayWindowMs: number;
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
}

/** The SQLite store plus what only a single-process store can offer. */
export interface SqliteStore extends Store {
  /** Makes every leased event due at once (their worker is gone); returns how many. */
  releaseAllLeases(): Promise<number>;
}

// Re-exported: callers that open a store catch it from here.
export { StoreOpenError };

const SCHEMA_VERSION = 1;
const BUSY_TIMEOUT_MS = 5_000;
const PRUNE_INTERVAL_MS = 60_000;

const EVENT_COLUMNS = "id, route, stage, data, secret, created_at, attempts, next_attempt_at, history, stage_data";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS outbox (
  id              TEXT PRIMARY KEY,
  route           TEXT NOT NULL,
  stage           TEXT NOT NULL,
  data            TEXT NOT NULL,
  secret          TEXT,               -- base64(iv | tag | AES-256-GCM ciphertext), the event id as AAD
  created_at      INTEGER NOT NULL,
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  leased_until    INTEGER,            -- NULL: not leased
  history         TEXT NOT NULL DEFAULT '[]',
  stage_data      TEXT
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (route, next_attempt_at);
CREATE TABLE IF NOT EXISTS dead_letters (
  id              TEXT PRIMARY KEY,
  route           TEXT NOT NULL,
  stage           TEXT NOT NULL,
  data            TEXT NOT NULL,
  secret          TEXT,
  created_at      INTEGER NOT NULL,
  attempts        INTEGER NOT NULL,
  next_attempt_at INTEGER NOT NULL,
  history         TEXT NOT NULL,
  stage_data      TEXT,
  dead_at         INTEGER NOT NULL,
  reason          TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_dead_at ON dead_letters (dead_at);
CREATE TABLE IF NOT EXISTS replay_guard (
  id      TEXT PRIMARY KEY,
  seen_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS replay_guard_seen_at ON replay_guard (seen_at);
`;

/**
 * Opens the embedded SQLite store: outbox, dead letters and replay guard in one WAL-mode file.
 * Every write commits before its promise resolves, so a `kill -9` right after loses nothing.
 * One gateway process per file; `actiongate dlq` may open it beside the running gateway.
 *
 * @example
 * const store = openSqliteStore({ path: "/var/lib/actiongate/store.db", synchronous: "full", replayWindowMs: 600_000 });
 * await store.outbox.add({ id: "msg_1", route: "erp", stage: "deliver", data: "{}", createdAt: Date.now() });
 * await store.close();
 */
export function openSqliteStore(options: SqliteStoreOptions): SqliteStore {
  const now = options.now ?? Date.now;
  // The key is checked before the database is touched, so that a wrong key leaves nothing open.
  const key = options.encryptionKey !== undefined ? parseKey(options.encryptionKey, "store.encryption_key") : undefined;
  const db = openSqliteDatabase(options.path, options.driver ? { driver: options.driver } : {});
  let store: SqliteStore;
  try {
    prepareSchema(db, options.synchronous);
    store = createStore(db, key ?? loadOrCreateKeyFile(`${options.path}.key`), options.replayWindowMs, now);
  } catch (error) {
    db.close();
    throw error;
  }
  if (options.releaseLeases ?? true) releaseLeases(db);
  return store;
}

function prepareSchema(db: SqliteDatabase, synchronous: "full" | "normal"): void {
  // busy_timeout first: the pragmas below may already wait for another process (the gateway or `dlq`).
  db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
  db.exec("PRAGMA journal_mode = WAL");
  db.exec(`PRAGMA synchronous = ${synchronous === "normal" ? "NORMAL" : "FULL"}`);
  db.transaction(() => {
    const version = Number(db.prepare("PRAGMA user_version").get()?.user_version ?? 0);
    if (version > SCHEMA_VERSION) {
      throw new StoreOpenError(
        `the store was written by a newer actiongate (schema ${version}, this one knows ${SCHEMA_VERSION}); upgrade actiongate`,
      );
    }
    db.exec(SCHEMA);
    if (version < SCHEMA_VERSION) db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
  });
}

function releaseLeases(db: SqliteDatabase): number {
  // Events are only leased once due, so next_attempt_at is already in the past: due at once.
  return db.prepare("UPDATE outbox SET leased_until = NULL WHERE leased_until IS NOT NULL").run().changes;
}

function createStore(db: SqliteDatabase, key: Uint8Array, replayWindowMs: number, now: () => number): SqliteStore {
  const appendHistory = "history = json_insert(history, '$[#]', json(?))";

  // Table names come from this file only, never from data.
  const countRoutes = (table: "outbox" | "dead_letters") =>
    countsPerRoute(db.prepare(`SELECT route, COUNT(*) AS n FROM ${table} GROUP BY route`).all());

  const outbox: OutboxStore = {
    async add(event: NewOutboxEvent) {
      // One autocommitted statement: durable when it returns. The first of two adds with the same id wins,
      // also against a dead letter of that id (replay protection is earlier; this is the safety net).
      db.prepare(
        `INSERT OR IGNORE INTO outbox (id, route, stage, data, secret, created_at, attempts, next_attempt_at, history)
         SELECT ?, ?, ?, ?, ?, ?, 0, ?, '[]' WHERE NOT EXISTS (SELECT 1 FROM dead_letters WHERE id = ?)`,
      ).run(
        event.id,
        event.route,
        event.stage,
        event.data,
        event.secret === undefined ? null : encrypt(key, event.id, event.secret),
        event.createdAt,
        event.createdAt,
        event.id,
      );
    },

    async claim(route, limit, claimNow, leaseMs) {
      if (limit <= 0) return [];
      // One statement: SQLite runs it under the write lock, so two workers (or processes) never get the same row.
      const rows = db
        .prepare(
          `UPDATE outbox SET leased_until = ?
           WHERE id IN (
             SELECT id FROM outbox
             WHERE route = ? AND next_attempt_at <= ? AND (leased_until IS NULL OR leased_until <= ?)
             ORDER BY next_attempt_at, created_at
             LIMIT ?)
           RETURNING ${EVENT_COLUMNS}`,
        )
        .all(claimNow + leaseMs, route, claimNow, claimNow, limit);
      return rows.map(eventFromRow).sort((a, b) => a.nextAttemptAt - b.nextAttemptAt || a.createdAt - b.createdAt);
    },

    async retryLater(id, attempt, nextAttemptAt) {
      db.prepare(
        `UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, leased_until = NULL, ${appendHistory} WHERE id = ?`,
      ).run(nextAttemptAt, JSON.stringify(attempt), id);
    },

    async advance(id, attempt, stage, stageData) {
      db.prepare(
        `UPDATE outbox SET stage = ?, stage_data = ?, attempts = 0, next_attempt_at = ?, leased_until = NULL, ${appendHistory} WHERE id = ?`,
      ).run(stage, stageData ?? null, now(), JSON.stringify(attempt), id);
    },

    async postpone(id, nextAttemptAt) {
      db.prepare("UPDATE outbox SET next_attempt_at = ?, leased_until = NULL WHERE id = ?").run(nextAttemptAt, id);
    },

    async complete(id, _attempt) {
      db.prepare("DELETE FROM outbox WHERE id = ?").run(id);
    },

    async bury(id, attempt, reason) {
      db.transaction(() => {
        db.prepare(
          `INSERT OR REPLACE INTO dead_letters (${EVENT_COLUMNS}, dead_at, reason)
           SELECT id, route, stage, data, secret, created_at, attempts + 1, next_attempt_at, json_insert(history, '$[#]', json(?)), stage_data, ?, ?
           FROM outbox WHERE id = ?`,
        ).run(JSON.stringify(attempt), now(), reason, id);
        db.prepare("DELETE FROM outbox WHERE id = ?").run(id);
      });
    },

    depth: async () => countRoutes("outbox"),

    secretOf(event: OutboxEvent) {
      return event.secret === undefined ? undefined : decrypt(key, event.id, event.secret);
    },
  };

  // Back into the outbox at the stage it died in, with fresh attempts and its history.
  const replaySelect = `INSERT OR IGNORE INTO outbox (${EVENT_COLUMNS}, leased_until)
    SELECT id, route, stage, data, secret, created_at, 0, ?, history, stage_data, NULL FROM dead_letters`;

  const deadLetters: DeadLetterStore = {
    async list() {
      return db
        .prepare(`SELECT ${EVENT_COLUMNS}, dead_at, reason FROM dead_letters ORDER BY dead_at DESC, id`)
        .all()
        .map(deadLetterFromRow);
    },

    async get(id) {
      const row = db.prepare(`SELECT ${EVENT_COLUMNS}, dead_at, reason FROM dead_letters WHERE id = ?`).get(id);
      return row ? deadLetterFromRow(row) : undefined;
    },

    async replay(id, replayNow) {
      return db.transaction(() => {
        if (!db.prepare("SELECT 1 AS found FROM dead_letters WHERE id = ?").get(id)) return false;
        // OR IGNORE: should the id somehow be pending already, that pending event is the one that runs.
        db.prepare(`${replaySelect} WHERE id = ?`).run(replayNow, id);
        db.prepare("DELETE FROM dead_letters WHERE id = ?").run(id);
        return true;
      });
    },

    async replayAll(replayNow) {
      return db.transaction(() => {
        db.prepare(replaySelect).run(replayNow);
        return db.prepare("DELETE FROM dead_letters").run().changes;
      });
    },

    async purge(id) {
      return db.prepare("DELETE FROM dead_letters WHERE id = ?").run(id).changes > 0;
    },

    async purgeOlderThan(cutoff) {
      return db.prepare("DELETE FROM dead_letters WHERE dead_at < ?").run(cutoff).changes;
    },
    countByRoute: async () => countRoutes("dead_letters"),
  };

  let lastPruneAt = Number.NEGATIVE_INFINITY;
  const replayGuard: ReplayGuard = {
    async claim(webhookId, nowMs = now()) {
      const expiredBefore = nowMs - replayWindowMs;
      if (Math.abs(nowMs - lastPruneAt) >= PRUNE_INTERVAL_MS) {
        lastPruneAt = nowMs;
        db.prepare("DELETE FROM replay_guard WHERE seen_at <= ?").run(expiredBefore);
      }
      // Atomic across workers and processes: a new id is inserted; a known id counts as new (and is
      // refreshed) only once its window has passed. `changes` is 0 exactly when it is a replay.
      const { changes } = db
        .prepare(
          `INSERT INTO replay_guard (id, seen_at) VALUES (?, ?)
           ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at WHERE replay_guard.seen_at <= ?`,
        )
        .run(webhookId, nowMs, expiredBefore);
      return changes > 0;
    },

    async release(webhookId) {
      db.prepare("DELETE FROM replay_guard WHERE id = ?").run(webhookId);
    },
  };

  let closed = false;
  return {
    outbox,
    deadLetters,
    replayGuard,
    async releaseAllLeases() {
      return releaseLeases(db);
    },
    async status() {
      if (closed) return { kind: "sqlite", writable: false, error: "closed" };
      try {
        // A write that changes nothing still needs the write lock: it fails when the disk or the lock does.
        db.exec("BEGIN IMMEDIATE; ROLLBACK");
        return { kind: "sqlite", writable: true, schemaVersion: SCHEMA_VERSION };
      } catch (error) {
        return { kind: "sqlite", writable: false, schemaVersion: SCHEMA_VERSION, error: (error as Error).message };
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      try {
        // PASSIVE never waits for another process's readers; the last connection to close checkpoints fully anyway.
        db.exec("PRAGMA wal_checkpoint(PASSIVE)");
      } finally {
        db.close();
      }
    },
  };
}
