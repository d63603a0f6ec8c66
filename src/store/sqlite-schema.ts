/**
 * The SQLite schema as numbered migrations, tracked in `PRAGMA user_version`. They run at open in
 * one write transaction with the version bump (see sqlite-store.ts), so a process that dies half-way
 * leaves the previous version behind. Append new migrations; never edit one that has shipped.
 */
export const SQLITE_MIGRATIONS: readonly string[] = [
  // 1: outbox, dead letters, replay guard (the first version; it ran this text at every open).
  `
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
`,
  // 2: the lease column named as in PostgreSQL; store_meta for the key check and the readiness probe.
  // data, secret and stage_data are sealed from now on ("v1:..."); the store seals the plain rows the
  // first version left in the same transaction (sqlite-store.ts).
  `
ALTER TABLE outbox RENAME COLUMN leased_until TO lease_until;
CREATE TABLE store_meta (
  name  TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
`,
  // 3: dead letters listed and replayed per route (the admin API, dlq list --route), newest first.
  // Attempts in `history` may carry a `sealed` part (URL and answer) from now on; older versions ignore it.
  `
CREATE INDEX dead_letters_route ON dead_letters (route, dead_at);
`,
  // 4: ordered delivery and polled messages. seq is the order events were added in (a replayed dead
  // letter gets a new one); order_key a keyed hash of the event's order key (secret-box.ts); waiting is
  // 1 for an event behind an earlier one of its key (only the head of a line is 0, so claims find the
  // heads through outbox_ready without looking at the lines behind them). poll_seen remembers the
  // (use_case_id, event_id) of every polled message stored, poll_locks which process polls a source.
  `
ALTER TABLE outbox ADD COLUMN seq INTEGER;
ALTER TABLE outbox ADD COLUMN order_key TEXT;
ALTER TABLE outbox ADD COLUMN waiting INTEGER NOT NULL DEFAULT 0;
UPDATE outbox SET seq = rowid;
CREATE INDEX outbox_seq ON outbox (seq);
CREATE INDEX outbox_order ON outbox (route, order_key, seq);
CREATE INDEX outbox_ready ON outbox (route, next_attempt_at) WHERE waiting = 0;
ALTER TABLE dead_letters ADD COLUMN order_key TEXT;
CREATE TABLE poll_seen (
  use_case_id TEXT NOT NULL,
  event_id    TEXT NOT NULL,
  source      TEXT NOT NULL,
  seen_at     INTEGER NOT NULL,
  PRIMARY KEY (use_case_id, event_id)
);
CREATE INDEX poll_seen_source ON poll_seen (source, seen_at);
CREATE TABLE poll_locks (
  source TEXT PRIMARY KEY,
  owner  TEXT NOT NULL,
  until  INTEGER NOT NULL
);
`,
];

/** The version this build brings the database to. */
export const SQLITE_SCHEMA_VERSION = SQLITE_MIGRATIONS.length;
