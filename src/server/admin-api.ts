import { type Context, Hono } from "hono";
import { EPILOT_ERROR_CODE } from "../delivery/answer.ts";
import type { BreakerState } from "../delivery/circuit-breaker.ts";
import { isRecord } from "../kit/records.ts";
import { parseDuration } from "../kit/units.ts";
import type { Logger } from "../log/logger.ts";
import {
  type AttemptRecord,
  type DeadLetterFilter,
  type DeadLetterSummary,
  InvalidCursorError,
  type PendingEventSummary,
  type Store,
} from "../store/types.ts";
import type { RateLimitState } from "../targets/rate-limit.ts";
import { adminAuth } from "./admin-auth.ts";
import type { CallRing, DeliveryTally } from "./call-ring.ts";

/** A route as the admin API shows it: built by the gateway from the config in force (no credentials). */
export interface AdminRouteView {
  readonly name: string;
  /** Where its calls come from: `custom_action` (epilot's calls), or a `poll` source's name. */
  readonly source: string;
  /** The target's type and URL, credentials hidden (a SOAP target may take its address from its WSDL). */
  readonly target: { readonly type: string; readonly url?: string; readonly wsdl?: string };
  readonly mode: "sync" | "async";
  readonly maxAttempts: number;
  readonly breaker: { readonly state: BreakerState; readonly retryAt: number };
  /** The state of the target's `rate_limit`, when it has one. */
  readonly rateLimit?: RateLimitState | undefined;
}

/** What the admin API reads and acts on. */
export interface AdminApiSources {
  /** `admin.token`; undefined: every `/api/*` request answers 403. */
  readonly token: string | undefined;
  /** The routes in force now (a reload changes them). */
  routes(): readonly AdminRouteView[];
  readonly store: Pick<Store, "outbox" | "deadLetters">;
  readonly calls: CallRing;
  readonly deliveries: DeliveryTally;
  /** Looks at the outbox now, so that a replay goes out without waiting for the next poll (a no-op where this process does not deliver). */
  wake(): void;
  readonly logger: Logger;
  readonly now?: () => number;
}

/** Events moved per transaction by a bulk replay or a move to the dead letters. */
export const BULK_BATCH = 500;
/** The largest page of a listing. */
export const MAX_PAGE = 1_000;
const DEFAULT_PAGE = 100;
/** A delivery loop marks the store every 5 s; one silent for three times that is taken as stopped. */
const DELIVERING_STALE_MS = 15_000;

/** A refusal in epilot's error shape, as every failure of the gateway answers. */
class ApiError extends Error {
  override name = "ApiError";
  constructor(
    readonly status: 400 | 404 | 409 | 503,
    readonly outcome: string,
    message: string,
    readonly info: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

const errorBody = (outcome: string, reason: string, info: Record<string, unknown> = {}) => ({
  error_output: { error_code: EPILOT_ERROR_CODE, error_reason: reason, error_info: { ...info, outcome } },
});

/**
 * The admin API under `/api` (behind {@link adminAuth}): routes with their health, the recent calls
 * of this process, the outbox, the dead letters with their attempt history, replay (one, or every
 * dead letter a filter selects, in batches), purge, and moving the events of a route that is no
 * longer configured to the dead letters. JSON only; no payload, token or secret in any answer (the
 * target's answer of an attempt is its first KB, redacted). Every process of `server.workers` serves
 * it over the shared store; the calls and the breaker state are those of the process asked.
 *
 * @example
 * app.route("/api", createAdminApi({ token, routes: () => views, store, calls, deliveries, wake, logger }));
 */
export function createAdminApi(sources: AdminApiSources): Hono {
  const now = sources.now ?? Date.now;
  const { store, logger } = sources;
  const api = new Hono();
  api.use("*", adminAuth(sources.token));
  api.use("*", async (c, next) => {
    await next();
    c.header("cache-control", "no-store");
  });
  const configured = () => new Set(sources.routes().map((route) => route.name));

  api.get("/routes", async (c) => {
    const [depth, dead, lastPoll] = await Promise.all([
      store.outbox.depth(),
      store.deadLetters.countByRoute(),
      store.outbox.lastDelivering(),
    ]);
    const outcomes = sources.calls.outcomesByRoute();
    const routes = sources.routes().map((route) => ({
      name: route.name,
      source: route.source,
      target: route.target,
      mode: route.mode,
      max_attempts: route.maxAttempts,
      breaker: {
        state: route.breaker.state,
        ...(route.breaker.state === "closed" ? {} : { retry_at: iso(route.breaker.retryAt) }),
      },
      rate_limit: route.rateLimit
        ? {
            requests: route.rateLimit.requests,
            per_ms: route.rateLimit.perMs,
            held_back: route.rateLimit.heldBack,
            waiting: route.rateLimit.waiting,
            delayed_total: route.rateLimit.delayedTotal,
            refused_total: route.rateLimit.refusedTotal,
          }
        : null,
      outbox_depth: depth[route.name] ?? 0,
      dead_letters: dead[route.name] ?? 0,
      recent_calls: outcomes[route.name] ?? {},
      deliveries: sources.deliveries.of(route.name),
    }));
    const known = configured();
    const unconfigured = [...new Set([...Object.keys(depth), ...Object.keys(dead)])]
      .filter((name) => !known.has(name))
      .sort()
      .map((name) => ({ route: name, outbox_depth: depth[name] ?? 0, dead_letters: dead[name] ?? 0 }));
    return c.json({ routes, unconfigured, delivery: deliveryStatus(lastPoll, now()) });
  });

  api.get("/calls", (c) => {
    const limit = readLimit(
      c.req.query("limit"),
      sources.calls.capacity || 1,
      Math.min(DEFAULT_PAGE, sources.calls.capacity || 1),
    );
    const route = c.req.query("route");
    const outcome = c.req.query("outcome");
    const calls = sources.calls.recent({
      limit,
      ...(route !== undefined && route !== "" ? { route } : {}),
      ...(outcome !== undefined && outcome !== "" ? { outcome } : {}),
    });
    return c.json({
      calls: calls.map((call) => ({
        time: iso(call.at),
        route: call.route ?? null,
        webhook_id: call.webhookId ?? null,
        outcome: call.outcome,
        status: call.status,
        duration_ms: call.durationMs,
        target_status: call.targetStatus ?? null,
      })),
      capacity: sources.calls.capacity,
    });
  });

  api.get("/outbox", async (c) => {
    const route = optional(c.req.query("route"));
    const after = optional(c.req.query("after"));
    const limit = readLimit(c.req.query("limit"), MAX_PAGE, DEFAULT_PAGE);
    const at = now();
    const [page, depth, lastPoll] = await Promise.all([
      store.outbox.list({ limit, ...(route ? { route } : {}), ...(after ? { after } : {}) }, at),
      store.outbox.depth(),
      store.outbox.lastDelivering(),
    ]);
    const known = configured();
    return c.json({
      events: page.items.map((event) => pendingView(event, known)),
      next: page.next ?? null,
      total: route ? (depth[route] ?? 0) : sum(depth),
      delivery: deliveryStatus(lastPoll, at),
    });
  });

  api.post("/outbox/dead-letter", async (c) => {
    const body = await readJsonObject(c);
    const route = body.route;
    if (typeof route !== "string" || route === "") {
      throw new ApiError(400, "bad_request", 'give the route whose waiting events to move: {"route": "<name>"}');
    }
    if (configured().has(route)) {
      throw new ApiError(
        409,
        "route_configured",
        `Route "${route}" is configured: its events are being delivered. Only the events of a route that is no longer configured can be moved to the dead letters`,
        { route },
      );
    }
    const reason = `route "${route}" is no longer configured; moved from the outbox to the dead letters by an operator`;
    let moved = 0;
    let batches = 0;
    try {
      for (;;) {
        const count = await store.outbox.moveToDeadLetters(route, reason, now(), BULK_BATCH);
        moved += count;
        batches++;
        if (count < BULK_BATCH) break;
      }
    } catch (error) {
      throw storeFailed(logger, error, "moving outbox events to the dead letters", { route, moved, batches });
    }
    logger.info("outbox events moved to the dead letters", { route, moved, batches });
    return c.json({ moved, batches }, 200);
  });

  api.get("/dead-letters", async (c) => {
    const filter = readDeadLetterFilter(c.req.query("route"), c.req.query("reason"), c.req.query("older_than"), now());
    const after = optional(c.req.query("after"));
    const limit = readLimit(c.req.query("limit"), MAX_PAGE, DEFAULT_PAGE);
    const [page, counts] = await Promise.all([
      store.deadLetters.query({ ...filter, limit, ...(after ? { after } : {}) }),
      store.deadLetters.countByRoute(filter),
    ]);
    const known = configured();
    return c.json({
      dead_letters: page.items.map((letter) => deadLetterView(letter, known)),
      next: page.next ?? null,
      total: sum(counts),
    });
  });

  api.post("/dead-letters/replay", async (c) => {
    const body = await readJsonObject(c);
    if (body.all !== true) {
      throw new ApiError(
        400,
        "bad_request",
        'a bulk replay replays every dead letter its filter selects: say so with "all": true (filters: route, reason, older_than)',
      );
    }
    for (const key of Object.keys(body)) {
      if (!["all", "route", "reason", "older_than"].includes(key)) {
        throw new ApiError(
          400,
          "bad_request",
          `unknown key "${key.slice(0, 50)}"; a bulk replay takes all, route, reason, older_than`,
        );
      }
    }
    const text = (key: string): string | undefined => {
      const value = body[key];
      if (value === undefined || value === null || value === "") return undefined;
      if (typeof value !== "string") throw new ApiError(400, "bad_request", `${key} must be a string`);
      return value;
    };
    const started = now();
    const filter = readDeadLetterFilter(text("route"), text("reason"), text("older_than"), started);
    const known = configured();
    if (filter.route !== undefined && !known.has(filter.route)) throw routeGone(filter.route);
    // Only what was dead when the request came: an event that dies again meanwhile is not replayed twice.
    const diedBefore = Math.min(filter.diedBefore ?? started, started);
    const selected: DeadLetterFilter = { ...filter, routes: [...known], diedBefore };
    const skipped = Object.fromEntries(
      Object.entries(await store.deadLetters.countByRoute({ ...filter, diedBefore })).filter(
        ([route]) => !known.has(route),
      ),
    );
    let replayed = 0;
    let batches = 0;
    try {
      for (;;) {
        const count = await store.deadLetters.replayBatch(selected, now(), BULK_BATCH);
        replayed += count;
        batches++;
        if (count > 0) sources.wake();
        if (count < BULK_BATCH) break;
      }
    } catch (error) {
      throw storeFailed(logger, error, "the bulk replay", { replayed, batches });
    }
    logger.info("dead letters replayed", {
      replayed,
      batches,
      ...(filter.route ? { route: filter.route } : {}),
      ...(Object.keys(skipped).length > 0 ? { skipped } : {}),
    });
    return c.json({ replayed, batches, skipped }, 202);
  });

  api.get("/dead-letters/:id", async (c) => {
    const id = c.req.param("id");
    const letter = await store.deadLetters.get(id);
    if (!letter) throw noSuchDeadLetter(id);
    const last = letter.history.at(-1);
    return c.json({
      id: letter.id,
      webhook_id: letter.id,
      route: letter.route,
      route_configured: configured().has(letter.route),
      stage: letter.stage,
      attempts: letter.attempts,
      created_at: iso(letter.createdAt),
      dead_at: iso(letter.deadAt),
      reason: letter.reason,
      last_error: last?.error ?? letter.reason,
      history: letter.history.map(attemptView),
    });
  });

  api.post("/dead-letters/:id/replay", async (c) => {
    const id = c.req.param("id");
    const letter = await store.deadLetters.get(id);
    if (!letter) throw noSuchDeadLetter(id);
    if (!configured().has(letter.route)) throw routeGone(letter.route);
    if (!(await store.deadLetters.replay(id, now()))) throw noSuchDeadLetter(id);
    sources.wake();
    logger.info("dead letter replayed", { webhook_id: id, route: letter.route });
    return c.json({ replayed: 1 }, 202);
  });

  api.delete("/dead-letters/:id", async (c) => {
    const id = c.req.param("id");
    if (!(await store.deadLetters.purge(id))) throw noSuchDeadLetter(id);
    logger.info("dead letter purged", { webhook_id: id });
    return c.json({ purged: 1 }, 200);
  });

  // Last: every other path under /api (after the token check, like every route above).
  api.all("*", (c) =>
    c.json(errorBody("not_found", `No admin API endpoint ${c.req.method} ${c.req.path.slice(0, 200)}`), 404),
  );
  api.onError((error, c) => {
    if (error instanceof ApiError) return c.json(errorBody(error.outcome, error.message, error.info), error.status);
    if (error instanceof InvalidCursorError) {
      return c.json(errorBody("bad_request", "after must be the next of an earlier page of this listing"), 400);
    }
    const failed = storeFailed(logger, error, `${c.req.method} ${c.req.path.slice(0, 200)}`);
    return c.json(errorBody(failed.outcome, failed.message, failed.info), failed.status);
  });
  return api;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function sum(counts: Readonly<Record<string, number>>): number {
  return Object.values(counts).reduce((total, count) => total + count, 0);
}

function optional(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}

/**
 * Whether any gateway delivers from this store now, by the marks delivery loops leave in it (every
 * 5 s; one silent for 15 s is taken as stopped). Shared with `actiongate dlq` and `outbox`.
 *
 * @example
 * deliveryStatus(await store.outbox.lastDelivering(), Date.now()); // { running: true, last_poll_at: "..." }
 */
export function deliveryStatus(lastPoll: number | undefined, at: number) {
  return {
    running: lastPoll !== undefined && at - lastPoll <= DELIVERING_STALE_MS,
    last_poll_at: lastPoll === undefined ? null : iso(lastPoll),
  };
}

function readLimit(text: string | undefined, max: number, fallback: number): number {
  if (text === undefined || text === "") return fallback;
  const limit = /^\d{1,7}$/.test(text) ? Number(text) : Number.NaN;
  if (!(limit >= 1 && limit <= max)) {
    throw new ApiError(400, "bad_request", `limit must be a whole number from 1 to ${max}`);
  }
  return limit;
}

function readDeadLetterFilter(
  route: string | undefined,
  reason: string | undefined,
  olderThan: string | undefined,
  at: number,
): DeadLetterFilter {
  let diedBefore: number | undefined;
  if (olderThan !== undefined && olderThan !== "") {
    const ms = parseDuration(olderThan);
    if (ms === undefined) {
      throw new ApiError(
        400,
        "bad_request",
        `older_than must be a duration such as 30m, 12h or 7d (got "${olderThan.slice(0, 50)}")`,
      );
    }
    diedBefore = at - ms;
  }
  return {
    ...(optional(route) !== undefined ? { route: route! } : {}),
    ...(optional(reason) !== undefined ? { reasonContains: reason! } : {}),
    ...(diedBefore !== undefined ? { diedBefore } : {}),
  };
}

async function readJsonObject(c: Context): Promise<Record<string, unknown>> {
  const text = await c.req.text();
  if (text.trim() === "") return {};
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new ApiError(400, "bad_request", "the body is not JSON");
  }
  if (!isRecord(body)) throw new ApiError(400, "bad_request", "the body must be a JSON object");
  return body;
}

function noSuchDeadLetter(id: string): ApiError {
  return new ApiError(404, "not_found", `No dead letter with id "${id.slice(0, 200)}"`);
}

function routeGone(route: string): ApiError {
  return new ApiError(
    409,
    "route_not_configured",
    `Route "${route}" is no longer configured: a replay would wait in the outbox for it. Add the route back (and reload), or purge the dead letter`,
    { route },
  );
}

/** A store that failed: logged with its error, answered without it (no host, no detail of the database). */
function storeFailed(logger: Logger, error: unknown, what: string, progress: Record<string, unknown> = {}): ApiError {
  logger.error("admin API: the store failed", { during: what, error: (error as Error).message, ...progress });
  const done =
    "replayed" in progress
      ? `; ${String(progress.replayed)} events were replayed before, the rest are still dead letters: send the same request again`
      : "moved" in progress
        ? `; ${String(progress.moved)} events were moved before, the rest still wait in the outbox: send the same request again`
        : "";
  return new ApiError(503, "store_unavailable", `The store failed during ${what}${done}; see the log`, progress);
}

function lastErrorOf(summary: { readonly lastAttempt?: AttemptRecord }): string | null {
  const last = summary.lastAttempt;
  return last ? (last.error ?? last.outcome) : null;
}

/** An outbox event as the API and `outbox list --json` show it. */
export function pendingView(event: PendingEventSummary, configured: ReadonlySet<string>) {
  return {
    id: event.id,
    webhook_id: event.id,
    route: event.route,
    route_configured: configured.has(event.route),
    stage: event.stage,
    attempts: event.attempts,
    created_at: iso(event.createdAt),
    next_attempt_at: iso(event.nextAttemptAt),
    leased: event.leased,
    last_error: lastErrorOf(event),
    last_status: event.lastAttempt?.status ?? null,
  };
}

/** A dead letter as the API and `dlq list --json` show it. */
export function deadLetterView(letter: DeadLetterSummary, configured: ReadonlySet<string>) {
  return {
    id: letter.id,
    webhook_id: letter.id,
    route: letter.route,
    route_configured: configured.has(letter.route),
    stage: letter.stage,
    attempts: letter.attempts,
    created_at: iso(letter.createdAt),
    dead_at: iso(letter.deadAt),
    reason: letter.reason,
    last_error: lastErrorOf(letter) ?? letter.reason,
    last_status: letter.lastAttempt?.status ?? null,
  };
}

function attemptView(attempt: AttemptRecord) {
  return {
    time: iso(attempt.at),
    stage: attempt.stage,
    outcome: attempt.outcome,
    status: attempt.status ?? null,
    url: attempt.url ?? null,
    answer: attempt.answer ?? null,
    ...(attempt.answerBytes !== undefined ? { answer_bytes: attempt.answerBytes } : {}),
    reason: attempt.error ?? null,
  };
}
