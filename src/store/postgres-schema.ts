import type { Sql } from "postgres";
import { StoreOpenError } from "./store-open-error.ts";

/**
 * The PostgreSQL schema as numbered migrations. Each one runs once, in order, in one transaction with
 * the version bump, so a replica that dies half-way leaves the previous version behind, never half of one.
 * Append new migrations; never edit one that has shipped.
 */
const MIGRATIONS: readonly string[] = [
  // 1: outbox, dead letters, replay guard. Times are ms since epoch (bigint), as the interfaces pass them.
  `
  CREATE TABLE outbox (
    id              text PRIMARY KEY,
    route           text NOT NULL,
    stage           text NOT NULL,
    data            text NOT NULL,
    secret          text,             -- base64(iv | tag | AES-256-GCM ciphertext), the event id as AAD
    created_at      bigint NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at bigint NOT NULL,
    lease_until     bigint,           -- NULL: not leased
    lease_owner     text,             -- the replica holding the lease; every update of a claimed row checks it
    history         jsonb NOT NULL DEFAULT '[]',
    stage_data      text
  );
  CREATE INDEX outbox_due ON outbox (route, next_attempt_at);
  CREATE TABLE dead_letters (
    id              text PRIMARY KEY,
    route           text NOT NULL,
    stage           text NOT NULL,
    data            text NOT NULL,
    secret          text,
    created_at      bigint NOT NULL,
    attempts        integer NOT NULL,
    next_attempt_at bigint NOT NULL,
    history         jsonb NOT NULL,
    stage_data      text,
    dead_at         bigint NOT NULL,
    reason          text NOT NULL
  );
  CREATE INDEX dead_letters_dead_at ON dead_letters (dead_at);
  CREATE TABLE replay_guard (
    id      text PRIMARY KEY,
    seen_at bigint NOT NULL
  );
  CREATE INDEX replay_guard_seen_at ON replay_guard (seen_at);
  `,
  // 2: store_meta for the key check and the readiness probe. data, secret and stage_data are sealed
  // from now on ("v1:..."); plain rows of the first version are sealed at each start (postgres-store.ts).
  `
  CREATE TABLE store_meta (
    name  text PRIMARY KEY,
    value text NOT NULL
  );
  `,
  // 3: dead letters listed and replayed per route (the admin API, dlq list --route), newest first.
  // Attempts in `history` may carry a `sealed` part (URL and answer) from now on; older versions ignore it.
  `
  CREATE INDEX dead_letters_route ON dead_letters (route, dead_at);
  `,
];

/** The version this build brings the database to. */
export const POSTGRES_SCHEMA_VERSION = MIGRATIONS.length;

/** Any constant works: it only has to be the same for every actiongate that migrates this database. */
const MIGRATION_LOCK = 0x61637467; // "actg"

/**
 * Brings the database to `target` ({@link POSTGRES_SCHEMA_VERSION} unless a test builds an older
 * database); returns the version it is at. Safe when several replicas start at once: the
 * transaction-scoped advisory lock lets one migrate while the others wait, then find nothing left to
 * do. Refuses a database a newer actiongate has migrated.
 *
 * @example
 * const version = await migrate(sql); // 2
 */
export async function migrate(sql: Sql, target: number = POSTGRES_SCHEMA_VERSION): Promise<number> {
  return sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`;
    await tx`CREATE TABLE IF NOT EXISTS actiongate_schema (version integer NOT NULL)`;
    const [row] = await tx<{ version: number }[]>`SELECT version FROM actiongate_schema`;
    const current = row?.version ?? 0;
    if (current > POSTGRES_SCHEMA_VERSION) {
      throw new StoreOpenError(
        `the database was migrated by a newer actiongate (schema ${current}, this one knows ${POSTGRES_SCHEMA_VERSION}); upgrade actiongate`,
      );
    }
    if (current >= target) return current;
    for (let version = current + 1; version <= target; version++) await tx.unsafe(MIGRATIONS[version - 1]!);
    if (!row) await tx`INSERT INTO actiongate_schema (version) VALUES (${target})`;
    else await tx`UPDATE actiongate_schema SET version = ${target}`;
    return target;
  });
}
