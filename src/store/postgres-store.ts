import { randomUUID } from "node:crypto";
import postgres from "postgres";
import { startDeadline } from "../runtime/deadline.ts";
import type { ReplayGuard } from "../verify/replay-guard.ts";
import { Batcher } from "./batcher.ts";
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
import { pendingReleases } from "./pending-releases.ts";
import { migrate, POSTGRES_SCHEMA_VERSION } from "./postgres-schema.ts";
import {
  isSealed,
  KEY_CHECK_NAME,
  keyCheckValue,
  keyMatches,
  openSecret,
  orderKeyDigester,
  parseKey,
  seal,
} from "./secret-box.ts";
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

export interface PostgresStoreOptions {
  /** postgres://user:password@host:5432/database */
  readonly url: string;
  /** base64 of 32 bytes, the same on every replica (a key file beside a shared database cannot work). */
  readonly encryptionKey: string | undefined;
  /** How long a webhook-id is remembered by the replay guard. */
  readonly replayWindowMs: number;
  /** Connections in the pool. */
  readonly maxConnections: number;
  /** A store call that takes longer fails (a partitioned network would otherwise hang callers for minutes). */
  readonly operationTimeoutMs?: number;
  /** This replica's lease owner id; random by default. */
  readonly ownerId?: string;
  /** The clock for what the interfaces do not pass a time to (advance, bury, replay guard default). */
  readonly now?: () => number;
  /** Told about what an operator should see in the log: the database unreachable at start, a lease taken over. */
  readonly onWarning?: (message: string, fields: Record<string, unknown>) => void;
}

/** The PostgreSQL store plus what tests and tools look at. */
export interface PostgresStore extends Store {
  /** The random id this replica writes into `lease_owner`. */
  readonly ownerId: string;
  /** Resolves with the schema version once migrated; rejects when the database cannot be reached (retried by the next call). */
  ready(): Promise<number>;
}

const PRUNE_INTERVAL_MS = 60_000;
/** How often the order lines are checked for an event waiting behind nothing. */
const REPAIR_INTERVAL_MS = 60_000;
const DEFAULT_OPERATION_TIMEOUT_MS = 10_000;
/** The readiness probe gives up sooner than other calls, so that /readyz answers within its 2 s. */
const PROBE_TIMEOUT_MS = 1_500;
const PROBE_LOCK_TIMEOUT_MS = 1_000;
/** Rows sealed per round when plain rows of the first version are found at start. */
const SEAL_BATCH = 500;

const EVENT_COLUMNS = "id, route, stage, data, secret, created_at, attempts, next_attempt_at, history, stage_data";
/** What a listing reads of a row: no data, no secret, and of the history only its last attempt. */
const SUMMARY_COLUMNS = "id, route, stage, attempts, created_at, next_attempt_at, history -> -1 AS last_attempt";
/** `history` without its oldest attempt once it holds MAX_HISTORY, before one more is appended. */
const TRIMMED_HISTORY = `(CASE WHEN jsonb_array_length(history) >= ${MAX_HISTORY} THEN history - 0 ELSE history END)`;

/**
 * The first key of the advisory locks that serialise adds per order key (the second is the key's
 * hash); any constant works, as long as every replica uses the same and the migration lock differs.
 */
export const ORDER_LOCK_SPACE = 0x6f726472; // "ordr"

type Row = Record<string, unknown>;
type Tx = postgres.TransactionSql;

/** A dead letter of an id already there is replaced (the newer death wins), as in SQLite's INSERT OR REPLACE. */
const DEAD_LETTER_UPSERT = `ON CONFLICT (id) DO UPDATE SET route = excluded.route, stage = excluded.stage, data = excluded.data,
  secret = excluded.secret, created_at = excluded.created_at, attempts = excluded.attempts,
  next_attempt_at = excluded.next_attempt_at, history = excluded.history, stage_data = excluded.stage_data,
  order_key = excluded.order_key, dead_at = excluded.dead_at, reason = excluded.reason`;

/**
 * Opens the PostgreSQL store shared by several replicas: outbox, dead letters and replay guard with
 * the same guarantees as SQLite. Returns at once and connects lazily: an unreachable database does
 * not stop the gateway from starting, it makes every store call fail (503 to epilot, `/readyz` not
 * ready) until the database answers; the pool then reconnects by itself. Schema migrations run on the
 * first call that reaches the database, under an advisory lock.
 *
 * Claims lease rows to this replica (`lease_owner`); every later update of the row checks the owner,
 * so a replica whose lease ran out and was taken over cannot overwrite the new owner's progress.
 * `data`, `secret` and `stageData` are sealed (AES-256-GCM, see secret-box.ts); the key is checked
 * against the one the database was first used with, so replicas with different keys are refused.
 *
 * @example
 * const store = openPostgresStore({ url: "postgres://actiongate:pw@db:5432/actiongate", encryptionKey: key, replayWindowMs: 600_000, maxConnections: 10 });
 * await store.outbox.add({ id: "msg_1", route: "erp", stage: "deliver", data: "{}", createdAt: Date.now() });
 * await store.close();
 */
export function openPostgresStore(options: PostgresStoreOptions): PostgresStore {
  if (options.encryptionKey === undefined) {
    throw new StoreOpenError(
      "store.encryption_key is required with store.url (PostgreSQL): every replica must encrypt and decrypt with the same key; make one with: openssl rand -base64 32",
    );
  }
  const key = parseKey(options.encryptionKey, "store.encryption_key");
  const now = options.now ?? Date.now;
  const owner = options.ownerId ?? randomUUID();
  const probeName = `probe:${owner}`;
  const timeoutMs = options.operationTimeoutMs ?? DEFAULT_OPERATION_TIMEOUT_MS;
  const warn = options.onWarning ?? (() => {});
  const sql = postgres(options.url, {
    max: options.maxConnections,
    connect_timeout: Math.max(1, Math.ceil(timeoutMs / 1000)),
    idle_timeout: 60,
    // Half-open connections (a partition, a database host that vanished) are noticed within seconds.
    keep_alive: 10,
    onnotice: () => {},
    connection: { application_name: "actiongate" },
  });

  let schemaVersion: number | undefined;
  let migrating: Promise<number> | undefined;
  let refused: StoreOpenError | undefined;
  let closed = false;

  /**
   * Migrates, checks the key and seals plain rows once; a failure to reach the database is retried by
   * the next call, a newer schema or another key is final.
   */
  function ready(): Promise<number> {
    if (schemaVersion !== undefined) return Promise.resolve(schemaVersion);
    if (refused) return Promise.reject(refused);
    migrating ??= prepare().then(
      (version) => (schemaVersion = version),
      (error: unknown) => {
        migrating = undefined;
        if (error instanceof StoreOpenError) refused = error;
        throw error;
      },
    );
    return migrating;
  }

  async function prepare(): Promise<number> {
    const version = await migrate(sql);
    await sql`INSERT INTO store_meta (name, value) VALUES (${KEY_CHECK_NAME}, ${keyCheckValue(key)}) ON CONFLICT (name) DO NOTHING`;
    const [check] = await sql<{ value: string }[]>`SELECT value FROM store_meta WHERE name = ${KEY_CHECK_NAME}`;
    if (!check || !keyMatches(key, check.value)) {
      throw new StoreOpenError(
        "store.encryption_key does not open this database: it was first used with another key, and every token in it would be lost. " +
          "Every replica must use the key the database was first used with; a store cannot change its key.",
      );
    }
    await sealPlainRows();
    return version;
  }

  /**
   * Seals `data` and `stage_data` that a replica of the first version stored as plain JSON (before
   * the upgrade, or during a rolling one). Compare-and-set per row: a row changed meanwhile is left
   * for the next start.
   */
  async function sealPlainRows(): Promise<void> {
    for (const table of ["outbox", "dead_letters"] as const) {
      for (;;) {
        const rows = await sql<{ id: string; data: string; stage_data: string | null }[]>`
          SELECT id, data, stage_data FROM ${sql(table)}
          WHERE left(data, 3) <> 'v1:' OR left(stage_data, 3) <> 'v1:'
          LIMIT ${SEAL_BATCH}`;
        let changed = 0;
        for (const row of rows) {
          const data = isSealed(row.data) ? row.data : seal(key, row.id, row.data);
          const stageData =
            row.stage_data === null || isSealed(row.stage_data) ? row.stage_data : seal(key, row.id, row.stage_data);
          const result = await sql`
            UPDATE ${sql(table)} SET data = ${data}, stage_data = ${stageData}
            WHERE id = ${row.id} AND data = ${row.data} AND stage_data IS NOT DISTINCT FROM ${row.stage_data}`;
          changed += result.count;
        }
        if (rows.length < SEAL_BATCH || changed === 0) break;
      }
    }
  }

  /** Every call: the schema first, then the statement, within the time limit. */
  async function run<T>(what: string, work: () => Promise<T>, limitMs: number = timeoutMs): Promise<T> {
    if (closed) throw new Error("the store is closed");
    const deadline = startDeadline(limitMs);
    try {
      const result = await Promise.race([ready().then(work), deadline.expired]);
      if (result === "timeout") throw new Error(`PostgreSQL did not answer ${what} within ${limitMs} ms`);
      return result;
    } finally {
      deadline.clear();
    }
  }

  const lostLease = (id: string, operation: string) =>
    warn("lease lost: another replica took the event over; its outcome is not recorded here", {
      webhook_id: id,
      operation,
    });

  const sealed = (id: string, text: string | undefined) => (text === undefined ? null : seal(key, id, text));
  // `::text::jsonb`: a parameter typed jsonb would be serialised again, appending a JSON string, not the array.
  const appended = (id: string, attempt: AttemptRecord) =>
    sql`${sql.unsafe(TRIMMED_HISTORY)} || ${JSON.stringify([storedAttempt(key, id, attempt)])}::text::jsonb`;

  /** The WHERE condition of a dead-letter filter. */
  const deadLetterWhere = (filter: DeadLetterFilter, q: postgres.Sql | Tx = sql) => {
    const conditions = [q`TRUE`];
    if (filter.route !== undefined) conditions.push(q`route = ${filter.route}`);
    if (filter.routes !== undefined) conditions.push(q`route = ANY(${q.array([...filter.routes])}::text[])`);
    if (filter.reasonContains !== undefined) conditions.push(q`strpos(reason, ${filter.reasonContains}) > 0`);
    if (filter.diedBefore !== undefined) conditions.push(q`dead_at < ${filter.diedBefore}`);
    return conditions.reduce((all, condition) => q`${all} AND ${condition}`);
  };

  const digest = orderKeyDigester(key);

  /**
   * Takes the transaction's lock on each order key (sorted, so that two replicas locking several keys
   * cannot deadlock). An event of a key gets its seq only after every earlier add of that key has
   * committed, so seq order is commit order per key: a claim that sees a later event of a key never
   * misses an earlier one that commits after it.
   */
  const lockOrderKeys = async (tx: Tx, digests: readonly (string | null)[]) => {
    const distinct = [...new Set(digests.filter((value): value is string => value !== null))].sort();
    for (const value of distinct) await tx`SELECT pg_advisory_xact_lock(${ORDER_LOCK_SPACE}, hashtext(${value}))`;
  };

  /** Adds one event in `tx`; true when it was added (not when its id is pending or dead already). */
  const insertEvent = async (tx: Tx | postgres.Sql, event: NewOutboxEvent, orderKey: string | null) => {
    const data = seal(key, event.id, event.data);
    const secret = sealed(event.id, event.secret);
    const stageData = sealed(event.id, event.stageData);
    // The first of two adds with the same id wins, also against a dead letter of that id (replay
    // protection is earlier; this is the safety net).
    // It joins the end of its key's line: waiting when an event of its route and key is in the outbox.
    const result = await tx`
      INSERT INTO outbox (id, route, stage, data, secret, created_at, attempts, next_attempt_at, history, stage_data, order_key, waiting)
      SELECT ${event.id}, ${event.route}, ${event.stage}, ${data}, ${secret}, ${event.createdAt}, 0, ${event.createdAt}, '[]', ${stageData}, ${orderKey},
        ${orderKey}::text IS NOT NULL AND EXISTS (SELECT 1 FROM outbox AS line WHERE line.route = ${event.route} AND line.order_key = ${orderKey})
      WHERE NOT EXISTS (SELECT 1 FROM dead_letters WHERE id = ${event.id})
      ON CONFLICT (id) DO NOTHING`;
    return result.count > 0;
  };

  /**
   * Once an event of a line has left the outbox, the next one of its key goes: under the key's lock, so
   * that an add of the key still committing is seen (it decided to wait behind the one that left).
   * A crash before this runs leaves the next one waiting until the minute's repair (`repairLines`).
   */
  const releaseLine = (route: string, orderKey: string) =>
    run("release line", () =>
      sql.begin(async (tx) => {
        await lockOrderKeys(tx, [orderKey]);
        await tx`
          UPDATE outbox SET waiting = false WHERE id = (
            SELECT id FROM outbox WHERE route = ${route} AND order_key = ${orderKey} ORDER BY seq LIMIT 1)`;
      }),
    );

  /** An event waiting with nothing of its key before it goes (a slipped release, an older replica). */
  const repairLines = () =>
    run(
      "repair lines",
      () => sql`
      UPDATE outbox SET waiting = false WHERE waiting AND NOT EXISTS (
        SELECT 1 FROM outbox AS earlier
        WHERE earlier.route = outbox.route AND earlier.order_key = outbox.order_key AND earlier.seq < outbox.seq)`,
    );
  let lastRepairAt = Number.NEGATIVE_INFINITY;

  const digestOf = (event: NewOutboxEvent) =>
    event.orderKey === undefined ? null : digest(event.route, event.orderKey);

  const countRoutes = async (table: "outbox" | "dead_letters") =>
    countsPerRoute(
      await run(`count of ${table}`, () => sql`SELECT route, count(*)::int AS n FROM ${sql(table)} GROUP BY route`),
    );

  /**
   * Adds of events without an order key that arrive together go in one statement (one round trip,
   * one commit). As insertEvent: the first of two adds with the same id wins, also against a dead
   * letter of that id.
   */
  const unorderedAdds = new Batcher<NewOutboxEvent, void>(
    async (events) => {
      const column = (read: (event: NewOutboxEvent) => string | number | null) => sql.array(events.map(read));
      await run(
        "add",
        () => sql`
        INSERT INTO outbox (id, route, stage, data, secret, created_at, attempts, next_attempt_at, history, stage_data, order_key, waiting)
        SELECT u.id, u.route, u.stage, u.data, u.secret, u.created_at, 0, u.created_at, '[]', u.stage_data, NULL, false
        FROM unnest(${column((event) => event.id)}::text[], ${column((event) => event.route)}::text[],
          ${column((event) => event.stage)}::text[], ${column((event) => seal(key, event.id, event.data))}::text[],
          ${column((event) => sealed(event.id, event.secret))}::text[], ${column((event) => event.createdAt)}::bigint[],
          ${column((event) => sealed(event.id, event.stageData))}::text[])
          WITH ORDINALITY AS u(id, route, stage, data, secret, created_at, stage_data, position)
        WHERE NOT EXISTS (SELECT 1 FROM dead_letters WHERE dead_letters.id = u.id)
        ORDER BY u.position
        ON CONFLICT (id) DO NOTHING`,
      );
      return events.map(() => undefined);
    },
    { maxBatch: 200, maxInFlight: 2, retryAlone: (error) => error instanceof postgres.PostgresError },
  );

  const outbox: OutboxStore = {
    async add(event: NewOutboxEvent) {
      const orderKey = digestOf(event);
      // Committed when it resolves: in a batch of one statement, or with an order key in one
      // transaction that first takes the key's lock.
      if (orderKey === null) return unorderedAdds.submit(event);
      await run("add", () =>
        sql.begin(async (tx) => {
          await lockOrderKeys(tx, [orderKey]);
          return insertEvent(tx, event, orderKey);
        }),
      );
    },

    async claim(route, limit, claimNow, leaseMs) {
      if (limit <= 0) return [];
      // SKIP LOCKED: replicas polling at once take disjoint rows instead of waiting on each other. An
      // ordered event goes only as the head of its key's line: nothing of its route and key with a
      // lower seq is left in the outbox. The check reads other rows without locking them, so a head
      // another replica holds (leased, or being completed) keeps its line waiting; and no earlier event
      // of a key can appear later (adds of a key are serialised, a replayed dead letter joins the end).
      if (Math.abs(claimNow - lastRepairAt) >= REPAIR_INTERVAL_MS) {
        lastRepairAt = claimNow;
        await repairLines();
      }
      // Only heads (NOT waiting, through outbox_ready) are looked at, however long their lines.
      const rows = await run(
        "claim",
        () => sql<Row[]>`
        UPDATE outbox SET lease_until = ${claimNow + leaseMs}, lease_owner = ${owner}
        WHERE id IN (
          SELECT id FROM outbox AS o
          WHERE route = ${route} AND NOT waiting AND next_attempt_at <= ${claimNow} AND (lease_until IS NULL OR lease_until <= ${claimNow})
            AND (order_key IS NULL OR NOT EXISTS (
              SELECT 1 FROM outbox AS earlier
              WHERE earlier.route = o.route AND earlier.order_key = o.order_key AND earlier.seq < o.seq))
          ORDER BY next_attempt_at, created_at, seq
          LIMIT ${limit}
          FOR UPDATE SKIP LOCKED)
        RETURNING ${sql.unsafe(EVENT_COLUMNS)}`,
      );
      const claimed: OutboxEvent[] = [];
      for (const row of rows) {
        const { event, readable } = readEventRow(row, key);
        // It would fail the same way on every attempt: to the dead letters at once, with the reason.
        if (readable) claimed.push(event);
        else await outbox.bury(event.id, unreadableAttempt(event, claimNow), UNREADABLE_REASON);
      }
      return claimed.sort((a, b) => a.nextAttemptAt - b.nextAttemptAt || a.createdAt - b.createdAt);
    },

    async retryLater(id, attempt, nextAttemptAt) {
      const result = await run(
        "retryLater",
        () => sql`
        UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ${nextAttemptAt}, lease_until = NULL, lease_owner = NULL,
          history = ${appended(id, attempt)}
        WHERE id = ${id} AND lease_owner = ${owner}`,
      );
      if (result.count === 0) lostLease(id, "retry");
    },

    async advance(id, attempt, stage, stageData) {
      const result = await run(
        "advance",
        () => sql`
        UPDATE outbox SET stage = ${stage}, stage_data = ${sealed(id, stageData)}, attempts = 0, next_attempt_at = ${now()},
          lease_until = NULL, lease_owner = NULL, history = ${appended(id, attempt)}
        WHERE id = ${id} AND lease_owner = ${owner}`,
      );
      if (result.count === 0) lostLease(id, "advance");
    },

    async postpone(id, nextAttemptAt) {
      const result = await run(
        "postpone",
        () => sql`
        UPDATE outbox SET next_attempt_at = ${nextAttemptAt}, lease_until = NULL, lease_owner = NULL
        WHERE id = ${id} AND lease_owner = ${owner}`,
      );
      if (result.count === 0) lostLease(id, "postpone");
    },

    async complete(id, _attempt) {
      // One statement; an ordered event then lets the next of its line go.
      const [gone] = await run(
        "complete",
        () => sql<{ route: string; order_key: string | null }[]>`
        DELETE FROM outbox WHERE id = ${id} AND lease_owner = ${owner} RETURNING route, order_key`,
      );
      if (!gone) lostLease(id, "complete");
      else if (gone.order_key !== null) await releaseLine(gone.route, gone.order_key);
    },

    async bury(id, attempt, reason) {
      // One statement moves the row, so a crash between the delete and the insert cannot lose it.
      const result = await run(
        "bury",
        () => sql<{ route: string; order_key: string | null }[]>`
        WITH moved AS (DELETE FROM outbox WHERE id = ${id} AND lease_owner = ${owner} RETURNING *)
        INSERT INTO dead_letters (${sql.unsafe(EVENT_COLUMNS)}, order_key, dead_at, reason)
        SELECT id, route, stage, data, secret, created_at, attempts + 1, next_attempt_at, ${appended(id, attempt)}, stage_data, order_key, ${now()}, ${reason}
        FROM moved
        ${sql.unsafe(DEAD_LETTER_UPSERT)}
        RETURNING route, order_key`,
      );
      const [moved] = result;
      if (!moved) lostLease(id, "bury");
      else if (moved.order_key !== null) await releaseLine(moved.route, moved.order_key);
    },

    depth: () => countRoutes("outbox"),

    secretOf(event: OutboxEvent) {
      return event.secret === undefined ? undefined : openSecret(key, event.id, event.secret);
    },

    async list(query, listNow) {
      const cursor = query.after === undefined ? undefined : readCursor(query.after);
      const rows = await run(
        "list outbox",
        () => sql<Row[]>`
        SELECT ${sql.unsafe(SUMMARY_COLUMNS)}, lease_until FROM outbox
        WHERE ${query.route !== undefined ? sql`route = ${query.route}` : sql`TRUE`}
          AND ${cursor ? sql`(next_attempt_at, id) > (${cursor.sortValue}, ${cursor.id})` : sql`TRUE`}
        ORDER BY next_attempt_at, id LIMIT ${query.limit + 1}`,
      );
      return pageOf(
        rows.map((row) => pendingSummaryFromRow(row, listNow)),
        query.limit,
        (item) => item.nextAttemptAt,
      );
    },

    async moveToDeadLetters(route, reason, moveNow, limit) {
      if (limit <= 0) return 0;
      // One statement: the rows leave the outbox and arrive in the dead letters together, or not at all.
      const [row] = await run(
        "moveToDeadLetters",
        () => sql<{ n: number }[]>`
        WITH picked AS (
          SELECT id FROM outbox WHERE route = ${route} AND (lease_until IS NULL OR lease_until <= ${moveNow})
          ORDER BY next_attempt_at, id LIMIT ${limit} FOR UPDATE SKIP LOCKED),
        moved AS (DELETE FROM outbox WHERE id IN (SELECT id FROM picked) RETURNING *),
        inserted AS (
          INSERT INTO dead_letters (${sql.unsafe(EVENT_COLUMNS)}, order_key, dead_at, reason)
          SELECT ${sql.unsafe(EVENT_COLUMNS)}, order_key, ${moveNow}, ${reason} FROM moved
          ${sql.unsafe(DEAD_LETTER_UPSERT)})
        SELECT count(*)::int AS n FROM moved`,
      );
      return Number(row?.n ?? 0);
    },

    async markDelivering(deliveringOwner, at) {
      await run(
        "markDelivering",
        () => sql`
        INSERT INTO store_meta (name, value) VALUES (${DELIVERING_PREFIX + deliveringOwner}, ${String(at)})
        ON CONFLICT (name) DO UPDATE SET value = excluded.value`,
      );
    },

    async stopDelivering(deliveringOwner) {
      await run(
        "stopDelivering",
        () => sql`DELETE FROM store_meta WHERE name = ${DELIVERING_PREFIX + deliveringOwner}`,
      );
    },

    async lastDelivering() {
      const [row] = await run(
        "lastDelivering",
        () => sql<{ at: string | null }[]>`
        SELECT max(value::bigint)::text AS at FROM store_meta
        WHERE left(name, ${DELIVERING_PREFIX.length}) = ${DELIVERING_PREFIX}`,
      );
      return row?.at === null || row?.at === undefined ? undefined : Number(row.at);
    },
  };

  // Back into the outbox at the stage it died in, with fresh attempts and its history, at the end of its
  // key's line (a new seq, under the key's lock like an add); one statement moves them, so a dead
  // letter is never lost nor doubled. ON CONFLICT: should the id somehow be pending already, that
  // pending event is the one that runs.
  const replayMoved = (tx: Tx, replayNow: number) => tx`
    INSERT INTO outbox (${tx.unsafe(EVENT_COLUMNS)}, lease_until, lease_owner, order_key, waiting)
    SELECT id, route, stage, data, secret, created_at, 0, ${replayNow}, history, stage_data, NULL, NULL, order_key, order_key IS NOT NULL
    FROM moved ORDER BY dead_at, id
    ON CONFLICT (id) DO NOTHING`;

  /**
   * After a replay (under the keys' locks): in each line it joined, the head goes and the rest wait.
   * Several dead letters of one key come back in one statement, which cannot see its own rows.
   */
  const settleLines = (tx: Tx, orderKeys: readonly (string | null)[]) => {
    const keys = [...new Set(orderKeys.filter((value): value is string => value !== null))];
    return tx`
      UPDATE outbox SET waiting = EXISTS (
        SELECT 1 FROM outbox AS earlier
        WHERE earlier.route = outbox.route AND earlier.order_key = outbox.order_key AND earlier.seq < outbox.seq)
      WHERE order_key = ANY(${keys})`;
  };

  const deadLetters: DeadLetterStore = {
    async list() {
      const rows = await run(
        "list",
        () =>
          sql<Row[]>`SELECT ${sql.unsafe(EVENT_COLUMNS)}, dead_at, reason FROM dead_letters ORDER BY dead_at DESC, id`,
      );
      return rows.map((row) => deadLetterFromRow(row, key));
    },

    async get(id) {
      const [row] = await run(
        "get",
        () => sql<Row[]>`SELECT ${sql.unsafe(EVENT_COLUMNS)}, dead_at, reason FROM dead_letters WHERE id = ${id}`,
      );
      return row ? deadLetterFromRow(row, key) : undefined;
    },

    async replay(id, replayNow) {
      const [row] = await run("replay", () =>
        sql.begin(async (tx) => {
          const keys = await tx<{ order_key: string | null }[]>`SELECT order_key FROM dead_letters WHERE id = ${id}`;
          await lockOrderKeys(
            tx,
            keys.map((key) => key.order_key),
          );
          const counted = await tx<{ n: number }[]>`
            WITH moved AS (DELETE FROM dead_letters WHERE id = ${id} RETURNING *), inserted AS (${replayMoved(tx, replayNow)})
            SELECT count(*)::int AS n FROM moved`;
          await settleLines(
            tx,
            keys.map((key) => key.order_key),
          );
          return counted;
        }),
      );
      return Number(row?.n ?? 0) > 0;
    },

    async replayAll(replayNow) {
      const [row] = await run("replayAll", () =>
        sql.begin(async (tx) => {
          const keys = await tx<
            { order_key: string | null }[]
          >`SELECT DISTINCT order_key FROM dead_letters WHERE order_key IS NOT NULL`;
          await lockOrderKeys(
            tx,
            keys.map((key) => key.order_key),
          );
          const counted = await tx<{ n: number }[]>`
            WITH moved AS (DELETE FROM dead_letters RETURNING *), inserted AS (${replayMoved(tx, replayNow)})
            SELECT count(*)::int AS n FROM moved`;
          await settleLines(
            tx,
            keys.map((key) => key.order_key),
          );
          return counted;
        }),
      );
      return Number(row?.n ?? 0);
    },

    async purge(id) {
      return (await run("purge", () => sql`DELETE FROM dead_letters WHERE id = ${id}`)).count > 0;
    },

    async purgeOlderThan(cutoff) {
      return (await run("purgeOlderThan", () => sql`DELETE FROM dead_letters WHERE dead_at < ${cutoff}`)).count;
    },

    async countByRoute(filter) {
      if (!filter) return countRoutes("dead_letters");
      return countsPerRoute(
        await run(
          "count of dead letters",
          () => sql`SELECT route, count(*)::int AS n FROM dead_letters WHERE ${deadLetterWhere(filter)} GROUP BY route`,
        ),
      );
    },

    async query(query) {
      const cursor = query.after === undefined ? undefined : readCursor(query.after);
      const rows = await run(
        "query dead letters",
        () => sql<Row[]>`
        SELECT ${sql.unsafe(SUMMARY_COLUMNS)}, dead_at, reason FROM dead_letters
        WHERE ${deadLetterWhere(query)}
          AND ${cursor ? sql`(dead_at, id) < (${cursor.sortValue}, ${cursor.id})` : sql`TRUE`}
        ORDER BY dead_at DESC, id DESC LIMIT ${query.limit + 1}`,
      );
      return pageOf(rows.map(deadLetterSummaryFromRow), query.limit, (item) => item.deadAt);
    },

    async replayBatch(filter, replayNow, limit) {
      if (limit <= 0) return 0;
      const [row] = await run("replayBatch", () =>
        sql.begin(async (tx) => {
          const picked = await tx<{ id: string; order_key: string | null }[]>`
            SELECT id, order_key FROM dead_letters WHERE ${deadLetterWhere(filter, tx)}
            ORDER BY dead_at, id LIMIT ${limit} FOR UPDATE SKIP LOCKED`;
          if (picked.length === 0) return [{ n: 0 }];
          // As replayAll: under the keys' locks, then each line it joined settled.
          const keys = picked.map((letter) => letter.order_key);
          await lockOrderKeys(tx, keys);
          const counted = await tx<{ n: number }[]>`
            WITH moved AS (DELETE FROM dead_letters WHERE id = ANY(${tx.array(picked.map((letter) => letter.id))}::text[]) RETURNING *),
            inserted AS (${replayMoved(tx, replayNow)})
            SELECT count(*)::int AS n FROM moved`;
          await settleLines(tx, keys);
          return counted;
        }),
      );
      return Number(row?.n ?? 0);
    },
  };

  // A failed release is retried in the background and before a claim of that id (pending-releases.ts).
  const releases = pendingReleases(
    async (webhookId) => {
      await run("replay guard release", () => sql`DELETE FROM replay_guard WHERE id = ${webhookId}`);
    },
    warn,
    (error) => safeMessage(error, options.url),
  );

  let lastPruneAt = Number.NEGATIVE_INFINITY;
  /**
   * Claims that arrive together go in one statement (one round trip, one commit). Atomic across
   * replicas: a new id is inserted; a known id counts as new (and is refreshed) only once its window
   * has passed; RETURNING names exactly the ids that are new. Of one id twice in a batch, the first
   * is the claim and the second a replay, as if they had come one after the other.
   */
  const claims = new Batcher<{ readonly id: string; readonly at: number }, boolean>(
    async (batch) => {
      const firstOf = new Map<string, number>();
      batch.forEach((claim, index) => {
        if (!firstOf.has(claim.id)) firstOf.set(claim.id, index);
      });
      const unique = [...firstOf.values()].map((index) => batch[index]!);
      const rows = await run(
        "replay guard",
        () => sql`
        INSERT INTO replay_guard (id, seen_at)
        SELECT * FROM unnest(${sql.array(unique.map((claim) => claim.id))}::text[], ${sql.array(unique.map((claim) => claim.at))}::bigint[])
        ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at
          WHERE replay_guard.seen_at <= excluded.seen_at - ${options.replayWindowMs}
        RETURNING id`,
      );
      const claimed = new Set(rows.map((row) => String(row.id)));
      return batch.map((claim, index) => firstOf.get(claim.id) === index && claimed.has(claim.id));
    },
    { maxBatch: 500, maxInFlight: 2, retryAlone: (error) => error instanceof postgres.PostgresError },
  );
  const claimsInFlight = new Map<string, Promise<boolean>>();
  const claimNow = async (webhookId: string, nowMs: number): Promise<boolean> => {
    const expiredBefore = nowMs - options.replayWindowMs;
    if (releases.has(webhookId)) await releases.settle(webhookId);
    if (Math.abs(nowMs - lastPruneAt) >= PRUNE_INTERVAL_MS) {
      lastPruneAt = nowMs;
      await run("replay guard prune", () => sql`DELETE FROM replay_guard WHERE seen_at <= ${expiredBefore}`);
    }
    return claims.submit({ id: webhookId, at: nowMs });
  };
  const replayGuard: ReplayGuard = {
    claim(webhookId, nowMs = now()) {
      // Known from its first moment, so that a release sent after it waits for it (below).
      const claim = claimNow(webhookId, nowMs);
      claimsInFlight.set(webhookId, claim);
      void claim
        .catch(() => false)
        .finally(() => {
          if (claimsInFlight.get(webhookId) === claim) claimsInFlight.delete(webhookId);
        });
      return claim;
    },

    async release(webhookId) {
      // After a claim of the same id still in its batch: a release must not overtake the claim it undoes.
      await claimsInFlight.get(webhookId)?.catch(() => false);
      await releases.release(webhookId);
    },
  };

  const inbox: PollInbox = {
    async commit(source, entries, commitNow) {
      if (entries.length === 0) return [];
      return run("inbox commit", () =>
        sql.begin(async (tx) => {
          const orderKeys = entries.map((entry) => digestOf(entry.event));
          await lockOrderKeys(tx, orderKeys);
          const added: boolean[] = [];
          for (const [index, entry] of entries.entries()) {
            const seen = await tx`
              INSERT INTO poll_seen (use_case_id, event_id, source, seen_at)
              VALUES (${entry.useCaseId}, ${entry.eventId}, ${source}, ${commitNow})
              ON CONFLICT DO NOTHING`;
            added.push(seen.count > 0 && (await insertEvent(tx, entry.event, orderKeys[index] ?? null)));
          }
          return added;
        }),
      );
    },
    async prune(source, cutoff) {
      return (
        await run("inbox prune", () => sql`DELETE FROM poll_seen WHERE source = ${source} AND seen_at < ${cutoff}`)
      ).count;
    },
    async acquirePollLock(source, lockOwner, lockNow, ttlMs) {
      const result = await run(
        "poll lock",
        () => sql`
        INSERT INTO poll_locks (source, owner, until) VALUES (${source}, ${lockOwner}, ${lockNow + ttlMs})
        ON CONFLICT (source) DO UPDATE SET owner = excluded.owner, until = excluded.until
        WHERE poll_locks.owner = excluded.owner OR poll_locks.until <= ${lockNow}`,
      );
      return result.count > 0;
    },
    async releasePollLock(source, lockOwner) {
      await run("poll unlock", () => sql`DELETE FROM poll_locks WHERE source = ${source} AND owner = ${lockOwner}`);
    },
  };

  // Migrate at start when the database is there; when it is not, say so once and serve not-ready.
  ready().catch((error: unknown) =>
    warn("PostgreSQL is not ready at start; store calls fail (503) until it is", {
      error: safeMessage(error, options.url),
    }),
  );

  return {
    ownerId: owner,
    outbox,
    deadLetters,
    replayGuard,
    inbox,
    ready,
    async status() {
      if (closed) return { kind: "postgres", writable: false, error: "closed" };
      try {
        // A real write, committed, in this replica's own row (replicas never wait on each other's probe):
        // it fails on a read-only database (a standby), a full disk, or a lock held too long.
        await run(
          "status",
          () =>
            sql.begin(async (tx) => {
              // SET takes no parameters; set_config(..., true) is SET LOCAL.
              await tx`SELECT set_config('lock_timeout', ${`${PROBE_LOCK_TIMEOUT_MS}ms`}, true), set_config('statement_timeout', ${`${PROBE_TIMEOUT_MS}ms`}, true)`;
              await tx`
                INSERT INTO store_meta (name, value) VALUES (${probeName}, ${String(now())})
                ON CONFLICT (name) DO UPDATE SET value = excluded.value`;
              await tx`DELETE FROM store_meta WHERE name = ${probeName}`;
            }),
          PROBE_TIMEOUT_MS + 250,
        );
        return { kind: "postgres", writable: true, schemaVersion: schemaVersion ?? POSTGRES_SCHEMA_VERSION };
      } catch (error) {
        const readOnly = (error as { code?: string }).code === "25006";
        return {
          kind: "postgres",
          writable: false,
          ...(schemaVersion !== undefined ? { schemaVersion } : {}),
          error: readOnly ? "the database is read-only (a standby?)" : safeMessage(error, options.url),
        };
      }
    },
    async close() {
      if (closed) return;
      // What was sent before close gets its answer: the batches queued go out first.
      await Promise.all([claims.drain(), unorderedAdds.drain()]);
      closed = true;
      releases.stop();
      await sql.end({ timeout: 5 });
    },
  };
}

/** An error as safe text: never the password of the URL. */
function safeMessage(error: unknown, url: string): string {
  const message = error instanceof Error ? error.message : String(error);
  let password = "";
  try {
    password = decodeURIComponent(new URL(url).password);
  } catch {
    // An unparsable URL fails in the driver with its own message.
  }
  return password ? message.split(password).join("***") : message;
}
