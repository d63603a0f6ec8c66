import { randomUUID } from "node:crypto";
import { orderKeyOf } from "../delivery/order-key.ts";
import { buildOutboxEvent } from "../delivery/outbox-event.ts";
import { prepareMessage } from "../delivery/prepare.ts";
import type { Route } from "../delivery/route.ts";
import { isRecord } from "../kit/records.ts";
import type { Logger } from "../log/logger.ts";
import { type ParsedMessage, parsePollMessage } from "../payload/message.ts";
import { createRouter, type Router } from "../routing/router.ts";
import type { HttpClient } from "../runtime/http-client.ts";
import type { InboxEntry, PollInbox } from "../store/types.ts";
import { noopTracer, type Tracer, type TraceSpan } from "../telemetry/tracer.ts";
import { type AckEntry, type AckResult, type OutboundQueueApi, outboundQueueApi, type QueueFailure } from "./api.ts";
import type { PollSourceConfig } from "./schema.ts";

/**
 * What became of one polled message:
 * - `stored`: committed to the outbox (then acknowledged);
 * - `duplicate`: its (use_case_id, event_id) was stored before: acknowledged, not stored again;
 * - `unrouted`: no route takes it: acknowledged and dropped, never retried;
 * - `skipped`: its route's `skip_when` held: acknowledged, nothing sent;
 * - `refused`: it cannot be taken (not a poll message, or its route's expressions fail on it): not
 *   acknowledged, so epilot hands it out again after its lease (and, after `max_delivery_attempts`,
 *   applies the use case's poison_policy); the rest of its batch waits behind it.
 */
export type PollMessageResult = "stored" | "duplicate" | "unrouted" | "skipped" | "refused";

/** epilot's verdict on the acknowledgement of a message, or `failed` when the ack got no verdict. */
export type PollAckResult = "accepted" | "stale_lease" | "out_of_order" | "not_found" | "rejected" | "failed";

/** Told what the source does (metrics, monitoring); every method is optional. */
export interface PollObserver {
  messages?(source: string, result: PollMessageResult, count: number): void;
  acks?(source: string, result: PollAckResult, count: number): void;
  /** Seconds between now and the oldest `enqueued_at` of the batch just leased (0 for an empty batch). */
  lag?(source: string, seconds: number): void;
  /** A message was stored for `route` (monitoring reports it as received). */
  stored?(source: string, route: Route, message: ParsedMessage, at: number): void;
}

/** The routes in force for one batch, held until `release()` (a reload never closes a target under it). */
export interface PollConfigLease {
  readonly routes: readonly Route[];
  release(): void;
}

export interface PollSourceOptions {
  readonly config: PollSourceConfig;
  readonly inbox: PollInbox;
  readonly acquireConfig: () => PollConfigLease;
  readonly logger: Logger;
  readonly userAgent: string;
  /** Called once messages are committed, so that the delivery engine looks at the outbox at once. */
  readonly onStored?: (() => void) | undefined;
  readonly observer?: PollObserver | undefined;
  /** This process's id in the poll lock (random by default). */
  readonly ownerId?: string;
  readonly now?: () => number;
  /** The queue's API (tests); epilot's, over the runtime's HTTP client, by default. */
  readonly api?: OutboundQueueApi;
  readonly client?: HttpClient;
  /**
   * Traces each poll and ack request (a `client` span) and each message stored (a `consumer` span
   * inside the poll's), whose context the outbox event keeps: its delivery attempts join that trace.
   */
  readonly tracer?: Tracer | undefined;
}

/** What `/readyz` shows of a source. */
export interface PollSourceStatus {
  /** False while the token is refused or another 4xx keeps coming, or polls have failed for 5 minutes. */
  readonly ok: boolean;
  /** `polling`: this process polls; `standby`: another replica holds the poll lock. */
  readonly state: "starting" | "polling" | "standby" | "stopped";
  readonly last_success_at?: string;
  readonly consecutive_failures: number;
  readonly last_error?: string;
  /** Set while epilot refuses the token (401, 403) or the request (another 4xx): the operator's to fix. */
  readonly config_problem?: string;
  /** Seconds between the last poll and the oldest `enqueued_at` it leased. */
  readonly lag_s?: number;
}

/** Failing this long (network, 5xx) makes the source not ok in /readyz. */
const FAILING_TOO_LONG_MS = 5 * 60_000;
/** The longest pause between polls while they fail. */
const MAX_RETRY_MS = 60_000;
/** The longest pause while the token or request is refused: never a tight loop against epilot. */
const MAX_REFUSED_MS = 5 * 60_000;
/** How often the duplicate keys past the window are forgotten. */
const PRUNE_EVERY_MS = 60 * 60_000;
/** Tries of one ack before its messages are left to come again (they are stored: no loss, no second copy). */
const ACK_ATTEMPTS = 3;

/**
 * One `poll:` entry: the loop that leases messages from epilot's Pollable Outbound queue, commits them
 * to the store, and acknowledges them, one batch at a time (never two polls of one integration in
 * flight; across replicas, the store's poll lock lets one of them poll).
 *
 * For each batch, in the batch's order: parse the message (payload/message.ts), find its route
 * (`match.source`), shape it as the route says (strip, `skip_when`, `transform`, the target's
 * request rendered once), and take its order key. Everything taken is committed in one transaction
 * with its duplicate key `(use_case_id, event_id)`; only then is the batch acknowledged, the longest
 * prefix that was handled (acks must be prefix-contiguous), so that a process killed at any point
 * loses nothing: what was not acknowledged comes again after its lease, and what was stored already
 * is acknowledged without being stored twice.
 *
 * A full batch (`has_more`) is followed by the next poll at once; an empty one waits `interval`.
 * Failures back off (doubling, full jitter, `Retry-After`); a refused token is logged once and shown
 * in /readyz, and polled again after `interval`, doubling up to 5 minutes.
 *
 * @example
 * const source = new PollSource({ config, inbox: store.inbox, acquireConfig: () => active.acquire(), logger, userAgent });
 * source.start();
 * source.status(); // { ok: true, state: "polling", ... }
 * await source.stop();
 */
export class PollSource {
  readonly name: string;
  private readonly api: OutboundQueueApi;
  private readonly ownerId: string;
  private readonly now: () => number;
  private readonly lockTtlMs: number;
  private running = false;
  private loop: Promise<void> | undefined;
  private readonly stopping = new AbortController();
  private wakeSleep: (() => void) | undefined;
  private state: PollSourceStatus["state"] = "starting";
  private lastSuccessAt: number | undefined;
  private failures = 0;
  private failingSince: number | undefined;
  private lastError: string | undefined;
  private configProblem: string | undefined;
  private refusedInARow = 0;
  private lagSeconds: number | undefined;
  private lastPruneAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly options: PollSourceOptions) {
    const { config } = options;
    this.name = config.name;
    this.now = options.now ?? Date.now;
    this.ownerId = options.ownerId ?? randomUUID();
    this.api =
      options.api ??
      outboundQueueApi(
        {
          apiUrl: config.api_url,
          integrationId: config.integration_id,
          token: config.token,
          timeoutMs: config.timeout,
          userAgent: options.userAgent,
        },
        ...(options.client ? [options.client] : []),
      );
    // Outlasts a usual cycle (poll, commit, ack), so that a live poller keeps it; renewed at every
    // poll. Should a slow cycle outlast it, the replica taking over only gets an empty batch (the lease
    // is still out) or, after it lapsed, messages that are already stored: nothing is stored twice.
    this.lockTtlMs = 3 * config.timeout + 5_000;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Ends the loop after the batch in hand (a poll in flight is abandoned: its lease lapses, nothing is lost). */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.stopping.abort();
    this.wakeSleep?.();
    await this.loop;
    this.state = "stopped";
    await this.options.inbox.releasePollLock(this.name, this.ownerId).catch(() => {});
  }

  /** When the last poll succeeded (ms since epoch), undefined before the first. */
  lastSuccessTime(): number | undefined {
    return this.lastSuccessAt;
  }

  status(): PollSourceStatus {
    const now = this.now();
    const failingTooLong = this.failingSince !== undefined && now - this.failingSince >= FAILING_TOO_LONG_MS;
    return {
      ok: this.configProblem === undefined && !failingTooLong,
      state: this.state,
      ...(this.lastSuccessAt !== undefined ? { last_success_at: new Date(this.lastSuccessAt).toISOString() } : {}),
      consecutive_failures: this.failures,
      ...(this.lastError !== undefined ? { last_error: this.lastError } : {}),
      ...(this.configProblem !== undefined ? { config_problem: this.configProblem } : {}),
      ...(this.lagSeconds !== undefined ? { lag_s: this.lagSeconds } : {}),
    };
  }

  private async run(): Promise<void> {
    const { logger, config } = this.options;
    logger.info("poll source started", { source: this.name, interval_ms: config.interval, limit: config.limit });
    while (this.running) {
      let pauseMs: number;
      try {
        pauseMs = await this.cycle();
      } catch (error) {
        // A bug or the store failing outside a batch (the lock, the prune): logged, then backed off.
        pauseMs = this.failed({ kind: "retry", reason: `internal: ${(error as Error).message}` });
      }
      if (pauseMs > 0) await this.sleep(pauseMs);
    }
  }

  /** One poll and what follows; returns how long to wait before the next one. */
  private async cycle(): Promise<number> {
    const { config, logger } = this.options;
    if (!(await this.options.inbox.acquirePollLock(this.name, this.ownerId, this.now(), this.lockTtlMs))) {
      if (this.state !== "standby")
        logger.info("poll source on standby: another replica polls it", { source: this.name });
      this.state = "standby";
      return config.interval;
    }
    if (this.state === "standby") logger.info("poll source takes over polling", { source: this.name });
    this.state = "polling";
    await this.pruneWhenDue();

    const span = (this.options.tracer ?? noopTracer).startSpan("poll", "client", undefined, {
      "messaging.system": "epilot_pollable_outbound",
      "messaging.operation.type": "receive",
      "actiongate.poll.source": this.name,
    });
    const answer = await this.api.poll(config.limit, this.stopping.signal);
    if (answer.kind !== "batch") {
      span.fail(answer.reason);
      span.end();
      return this.running ? this.failed(answer) : 0;
    }
    if (span.recording) span.setAttributes({ "messaging.batch.message_count": answer.messages.length });
    span.end();
    if (!this.running) return 0;
    this.succeeded();
    this.recordLag(answer.messages);
    // An empty batch waits, whatever has_more says: epilot answers empty while another lease is out.
    if (answer.messages.length === 0) return config.interval;

    const taken = await this.take(answer.messages, span);
    if (taken.acks.length > 0) await this.acknowledge(taken.acks, span);
    return answer.hasMore && taken.complete ? 0 : config.interval;
  }

  /**
   * Parses, routes, shapes and commits the batch's messages, in order, up to the first that cannot be
   * taken. Returns the acks of the handled prefix (empty when the commit failed) and whether the
   * whole batch was handled.
   */
  private async take(messages: readonly unknown[], poll: TraceSpan): Promise<{ acks: AckEntry[]; complete: boolean }> {
    const { logger } = this.options;
    const config = this.options.acquireConfig();
    const handled: AckEntry[] = [];
    const entries: InboxEntry[] = [];
    const storedFor: { route: Route; parsed: ParsedMessage; span: TraceSpan }[] = [];
    const counts: Partial<Record<PollMessageResult, number>> = {};
    const count = (result: PollMessageResult) => (counts[result] = (counts[result] ?? 0) + 1);
    let complete = true;
    try {
      const router = createRouter(config.routes);
      const now = this.now();
      for (const raw of messages) {
        const taken = await this.takeOne(raw, router, now, poll);
        if (taken.kind === "refused") {
          count("refused");
          logger.error(
            "polled message not taken; epilot hands it out again after its lease, and the rest of the batch waits",
            { source: this.name, ...taken.log },
          );
          complete = false;
          break;
        }
        handled.push(taken.ack);
        if (taken.kind === "entry") {
          entries.push(taken.entry);
          storedFor.push({ route: taken.route, parsed: taken.parsed, span: taken.span });
        } else {
          count(taken.kind);
          logger.info(
            taken.kind === "unrouted"
              ? "polled message taken by no route; acknowledged and dropped"
              : "polled message skipped by its route",
            { source: this.name, ...taken.log },
          );
        }
      }
      let added: boolean[] = [];
      if (entries.length > 0) {
        try {
          added = await this.options.inbox.commit(this.name, entries, now);
        } catch (error) {
          // Nothing is acknowledged: the batch comes again after its lease.
          for (const stored of storedFor) {
            stored.span.fail("the store refused the message");
            stored.span.end();
          }
          logger.error("polled messages could not be stored; they come again after their lease", {
            source: this.name,
            messages: entries.length,
            error: (error as Error).message,
          });
          this.tellCounts(counts);
          return { acks: [], complete: false };
        }
      }
      added.forEach((isNew, index) => {
        count(isNew ? "stored" : "duplicate");
        const stored = storedFor[index]!;
        if (stored.span.recording) stored.span.setAttributes({ "actiongate.poll.duplicate": !isNew });
        stored.span.end();
        if (isNew) this.options.observer?.stored?.(this.name, stored.route, stored.parsed, now);
        else
          logger.info("polled message was stored before; acknowledged, not stored twice", {
            source: this.name,
            route: stored.route.name,
            event_id: stored.parsed.message.event_id,
            use_case_id: stored.parsed.message.use_case_id,
            message_id: stored.parsed.message.id,
          });
      });
      if (added.some(Boolean)) this.options.onStored?.();
      this.tellCounts(counts);
      return { acks: handled, complete };
    } finally {
      config.release();
    }
  }

  private async takeOne(
    raw: unknown,
    router: Router<Route>,
    now: number,
    poll: TraceSpan,
  ): Promise<
    | { kind: "entry"; ack: AckEntry; entry: InboxEntry; route: Route; parsed: ParsedMessage; span: TraceSpan }
    | { kind: "unrouted" | "skipped"; ack: AckEntry; log: Record<string, unknown> }
    | { kind: "refused"; log: Record<string, unknown> }
  > {
    const { logger } = this.options;
    const messageId = isRecord(raw) && typeof raw.id === "string" ? raw.id.slice(0, 256) : undefined;
    const parsed = parsePollMessage(raw, this.name);
    if (!parsed.ok) return { kind: "refused", log: { message_id: messageId, problem: parsed.message } };
    const message = parsed.parsed;
    const fields = {
      message_id: message.message.id,
      event_id: message.message.event_id,
      event_name: message.message.event_name,
      use_case_id: message.message.use_case_id,
    };
    const ack = { id: message.message.id, lease_token: message.message.lease_token };
    const route = router.byMatch(message);
    if (!route) return { kind: "unrouted", ack, log: fields };
    const prepared = await prepareMessage(message, route, logger);
    if (!prepared.ok) {
      if (prepared.answer.outcome === "skipped") return { kind: "skipped", ack, log: { ...fields, route: route.name } };
      return { kind: "refused", log: { ...fields, route: route.name, problem: reasonOf(prepared.answer.body) } };
    }
    // Rendered now as well (URL and header placeholders, the SOAP envelope), so a message that cannot be
    // sent is found before it is acknowledged. Delivery renders again with the config in force.
    const rendered = await route.target.render(prepared.message);
    if (!rendered.ok) return { kind: "refused", log: { ...fields, route: route.name, problem: rendered.reason } };
    const ordered = await orderKeyOf(message, route, prepared.message.payload, logger);
    if (!ordered.ok)
      return { kind: "refused", log: { ...fields, route: route.name, problem: reasonOf(ordered.answer.body) } };
    // Its attempts become spans of this trace (the event keeps the context, as for a call).
    const span = poll.child("store message", "consumer", {
      "actiongate.route": route.name,
      "actiongate.poll.event_name": message.message.event_name,
      "actiongate.poll.use_case_id": message.message.use_case_id,
    });
    return {
      kind: "entry",
      ack,
      route,
      parsed: message,
      span,
      entry: {
        useCaseId: message.message.use_case_id,
        eventId: message.message.event_id,
        event: buildOutboxEvent(message, route, prepared.message, "deliver", now, undefined, {
          orderKey: ordered.key,
          trace: span.traceHeaders(),
        }),
      },
    };
  }

  /** Acknowledges the handled prefix, trying a few times; what is not accepted comes again and is not stored twice. */
  private async acknowledge(acks: readonly AckEntry[], poll: TraceSpan): Promise<void> {
    const { logger } = this.options;
    for (let attempt = 1; ; attempt++) {
      const span = poll.child("ack", "client", { "messaging.batch.message_count": acks.length, attempt });
      const answer = await this.api.ack(acks);
      if (answer.kind !== "acked") span.fail(answer.reason);
      span.end();
      if (answer.kind === "acked") {
        this.tellAcks(acks, answer.results);
        return;
      }
      if (answer.kind !== "retry") {
        this.failed(answer);
        break;
      }
      logger.warn("ack failed", { source: this.name, attempt, reason: answer.reason });
      // At shutdown one try is enough: the rest comes again after the lease.
      if (attempt >= ACK_ATTEMPTS || !this.running) break;
      await this.sleep(Math.min(answer.retryAfterMs ?? 1_000 * attempt, 10_000));
    }
    this.options.observer?.acks?.(this.name, "failed", acks.length);
    logger.warn("messages stored but not acknowledged; epilot hands them out again, and they are not stored twice", {
      source: this.name,
      messages: acks.length,
    });
  }

  private tellAcks(acks: readonly AckEntry[], results: readonly AckResult[]): void {
    const { logger, observer } = this.options;
    const byId = new Map(results.map((result) => [result.id, result]));
    const counts: Partial<Record<PollAckResult, number>> = {};
    for (const ack of acks) {
      const result = byId.get(ack.id);
      const verdict: PollAckResult =
        result === undefined
          ? "failed"
          : result.status === "accepted"
            ? "accepted"
            : result.reason === "stale_lease" || result.reason === "out_of_order" || result.reason === "not_found"
              ? result.reason
              : "rejected";
      counts[verdict] = (counts[verdict] ?? 0) + 1;
    }
    for (const [verdict, n] of Object.entries(counts) as [PollAckResult, number][]) {
      observer?.acks?.(this.name, verdict, n);
      if (verdict === "accepted") continue;
      // stale_lease: the lease lapsed and the message was (or will be) handed out again; it is stored, and
      // its next delivery is acknowledged as a duplicate. not_found: already acknowledged or expired.
      const level = verdict === "out_of_order" || verdict === "rejected" || verdict === "failed" ? "warn" : "info";
      logger[level]("ack not accepted", { source: this.name, result: verdict, messages: n });
    }
  }

  private tellCounts(counts: Partial<Record<PollMessageResult, number>>): void {
    for (const [result, n] of Object.entries(counts) as [PollMessageResult, number][])
      this.options.observer?.messages?.(this.name, result, n);
  }

  private recordLag(messages: readonly unknown[]): void {
    let oldest = Number.POSITIVE_INFINITY;
    for (const message of messages) {
      const at =
        isRecord(message) && typeof message.enqueued_at === "string" ? Date.parse(message.enqueued_at) : Number.NaN;
      if (!Number.isNaN(at)) oldest = Math.min(oldest, at);
    }
    this.lagSeconds = Number.isFinite(oldest) ? Math.max(0, (this.now() - oldest) / 1000) : 0;
    this.options.observer?.lag?.(this.name, this.lagSeconds);
  }

  private succeeded(): void {
    if (this.configProblem !== undefined || this.failures > 0) {
      this.options.logger.info("poll source works again", { source: this.name, failed_polls: this.failures });
    }
    this.lastSuccessAt = this.now();
    this.failures = 0;
    this.failingSince = undefined;
    this.lastError = undefined;
    this.configProblem = undefined;
    this.refusedInARow = 0;
  }

  /** Records a failed call; returns the pause before the next poll. */
  private failed(failure: QueueFailure): number {
    const { logger, config } = this.options;
    this.failures++;
    this.failingSince ??= this.now();
    this.lastError = failure.reason;
    if (failure.kind === "refused" || failure.kind === "fatal") {
      // Logged once per episode: a configuration problem, not a storm of errors.
      if (this.configProblem === undefined) {
        logger.error("poll source refused by epilot: a configuration problem (see /readyz)", {
          source: this.name,
          status: failure.status,
          reason: failure.reason,
        });
      }
      this.configProblem = failure.reason;
      const pause = Math.min(MAX_REFUSED_MS, config.interval * 2 ** Math.min(this.refusedInARow, 16));
      this.refusedInARow++;
      return pause;
    }
    if (failure.reason === "stopped") return 0;
    if (this.failures === 1)
      logger.warn("poll failed; retrying with backoff", { source: this.name, reason: failure.reason });
    else logger.debug("poll failed", { source: this.name, reason: failure.reason, failed_polls: this.failures });
    const ceiling = Math.min(MAX_RETRY_MS, Math.min(1_000, config.interval) * 2 ** Math.min(this.failures, 16));
    return Math.max(failure.retryAfterMs ?? 0, Math.random() * ceiling);
  }

  private async pruneWhenDue(): Promise<void> {
    const now = this.now();
    if (now - this.lastPruneAt < PRUNE_EVERY_MS) return;
    this.lastPruneAt = now;
    try {
      const pruned = await this.options.inbox.prune(this.name, now - this.options.config.dedupe_window);
      if (pruned > 0)
        this.options.logger.debug("duplicate keys past the window forgotten", { source: this.name, pruned });
    } catch (error) {
      this.options.logger.warn("forgetting old duplicate keys failed; tried again in an hour", {
        source: this.name,
        error: (error as Error).message,
      });
    }
  }

  /** Waits `ms`, or less when the source stops. */
  private sleep(ms: number): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wakeSleep = () => {
        this.wakeSleep = undefined;
        done();
      };
    });
  }
}

/** The `error_reason` of an answer prepare or the order key built, for the log. */
function reasonOf(body: unknown): string {
  const output = isRecord(body) && isRecord(body.error_output) ? body.error_output : undefined;
  return typeof output?.error_reason === "string" ? output.error_reason : "the route cannot take this message";
}
