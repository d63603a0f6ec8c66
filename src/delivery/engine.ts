import { randomUUID } from "node:crypto";
import type { EpilotCallbacks } from "../epilot/types.ts";
import type { Logger } from "../log/logger.ts";
import type { OutboxEvent, OutboxStore } from "../store/types.ts";
import type { Tracer } from "../telemetry/tracer.ts";
import { nextDelayMs } from "./retry-policy.ts";
import type { Route } from "./route.ts";
import { runStage, type StageResult, type StepResult } from "./stages.ts";
import type { DeliveryObserver } from "./sync.ts";

/**
 * The config in force, as one attempt sees it from start to end. `release()` ends the attempt's use
 * of it: a config replaced by a reload closes (its targets' connection pools) once its last call
 * and its last attempt have released it.
 */
export interface DeliveryConfigLease {
  readonly routes: readonly Route[];
  readonly epilot: EpilotCallbacks;
  release(): void;
}

/**
 * Told what one attempt decided: metrics (delivered, retried, dead-lettered), monitoring spans. `event`
 * is the event as claimed (its attempts before this one, its stage). A listener that throws is logged
 * and changes nothing of the delivery.
 */
export type DeliveryResultListener = (
  route: string,
  result: StepResult,
  deadLettered: boolean,
  event: OutboxEvent,
) => void;

export interface DeliveryEngineOptions {
  readonly outbox: OutboxStore;
  /** Takes the config in force now (a reload swaps it); see {@link DeliveryConfigLease}. */
  readonly acquireConfig: () => DeliveryConfigLease;
  readonly logger: Logger;
  readonly observer?: DeliveryObserver | undefined;
  /** Traces each attempt in the trace of the call its event came from (telemetry/); none when absent. */
  readonly tracer?: Tracer | undefined;
  /** Told what each attempt decided, once it is recorded; one listener or several. */
  readonly onResult?: DeliveryResultListener | readonly DeliveryResultListener[] | undefined;
  /** How long a claimed event stays reserved for this worker; another worker takes it over after. */
  readonly leaseMs?: number | undefined;
  /** How often the outbox is polled when nothing woke the engine up. */
  readonly pollIntervalMs?: number | undefined;
  readonly now?: (() => number) | undefined;
}

/** How often events of routes that are no longer configured are counted (they are only reported, never buried). */
const ORPHAN_CHECK_INTERVAL_MS = 60_000;
/** The longest pause between polls while the store fails (a database restarting or unreachable). */
const MAX_STORE_BACKOFF_MS = 5_000;
/**
 * How often the loop leaves its mark in the store (`markDelivering`), so that `dlq replay`, `outbox
 * list` and the admin API can tell whether any gateway delivers from this store now.
 */
export const DELIVERING_MARK_INTERVAL_MS = 5_000;

/**
 * Background delivery: claims due events from the outbox per route (up to the route's
 * `delivery.concurrency` in flight), runs their current stage (delivery/stages.ts), and records
 * what the stage decided: retry with backoff, move on, or the dead letters. Events of a route that
 * is no longer configured stay in the outbox (a reload may bring the route back); they are counted
 * for `/readyz` ({@link orphanedEvents}) until the operator decides.
 *
 * @example
 * const engine = new DeliveryEngine({ outbox, acquireConfig: () => active.acquire(), logger });
 * engine.start();
 * engine.wake(); // after adding an event, so it goes out without waiting for the next poll
 * await engine.stop();
 */
export class DeliveryEngine {
  private readonly inFlight = new Map<string, Set<Promise<void>>>();
  private running = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private ticking: Promise<void> | undefined;
  private wakeRequested = false;
  private lastOrphanCheck = Number.NEGATIVE_INFINITY;
  private orphans: Readonly<Record<string, number>> = {};
  /** Polls in a row whose store calls failed: the poll loop backs off and logs once per outage. */
  private storeFailures = 0;
  private storeFailedThisTick = false;
  private lastMarkAt = Number.NEGATIVE_INFINITY;
  /** This loop's name in the store's delivery marks. */
  private readonly owner = randomUUID();
  private readonly leaseMs: number;
  private readonly pollIntervalMs: number;
  private readonly now: () => number;
  private readonly listeners: readonly DeliveryResultListener[];

  constructor(private readonly options: DeliveryEngineOptions) {
    const onResult = options.onResult;
    this.listeners = onResult === undefined ? [] : typeof onResult === "function" ? [onResult] : onResult;
    this.leaseMs = options.leaseMs ?? 30_000;
    this.pollIntervalMs = options.pollIntervalMs ?? 250;
    this.now = options.now ?? Date.now;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(0);
  }

  /** Looks at the outbox now instead of at the next poll. */
  wake(): void {
    if (!this.running) return;
    if (this.ticking) {
      this.wakeRequested = true;
      return;
    }
    this.schedule(0);
  }

  /** Stops claiming; resolves once every attempt in flight has finished and been recorded. */
  async stop(): Promise<void> {
    const wasRunning = this.running;
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    await this.ticking;
    await Promise.allSettled([...this.inFlight.values()].flatMap((set) => [...set]));
    // Tools then say at once that nothing delivers (a store that is down keeps the mark until it ages).
    if (wasRunning) await this.options.outbox.stopDelivering(this.owner).catch(() => undefined);
  }

  /** Events waiting for a route the config no longer has, per route name (counted once a minute). */
  orphanedEvents(): Readonly<Record<string, number>> {
    return this.orphans;
  }

  private schedule(delayMs: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.ticking = this.tick().finally(() => {
        this.ticking = undefined;
        if (!this.running) return;
        const again = this.wakeRequested;
        this.wakeRequested = false;
        this.schedule(this.storeFailures > 0 ? this.storeBackoffMs() : again ? 0 : this.pollIntervalMs);
      });
    }, delayMs);
  }

  private storeBackoffMs(): number {
    return Math.min(MAX_STORE_BACKOFF_MS, this.pollIntervalMs * 2 ** Math.min(this.storeFailures, 10));
  }

  /** One poll; never rejects, so that a failing store slows the loop down instead of ending it. */
  private async tick(): Promise<void> {
    this.storeFailedThisTick = false;
    const config = this.options.acquireConfig();
    try {
      await this.claimAndRun(config.routes);
      if (this.now() - this.lastMarkAt >= DELIVERING_MARK_INTERVAL_MS) {
        this.lastMarkAt = this.now();
        await this.options.outbox.markDelivering(this.owner, this.lastMarkAt);
      }
      if (this.now() - this.lastOrphanCheck >= ORPHAN_CHECK_INTERVAL_MS) {
        this.lastOrphanCheck = this.now();
        await this.countOrphans(config.routes);
      }
    } catch (error) {
      this.storeFailedThisTick = true;
      this.options.logger.error("outbox poll failed", { error: (error as Error).message });
    } finally {
      config.release();
    }
    if (this.storeFailedThisTick) {
      this.storeFailures++;
    } else if (this.storeFailures > 0) {
      this.options.logger.info("outbox store reachable again", { failed_polls: this.storeFailures });
      this.storeFailures = 0;
    }
  }

  private async claimAndRun(routes: readonly Route[]): Promise<void> {
    for (const route of routes) {
      if (!this.running) return;
      const active = this.inFlight.get(route.name) ?? new Set<Promise<void>>();
      this.inFlight.set(route.name, active);
      const free = route.delivery.concurrency - active.size;
      if (free <= 0) continue;
      let events: OutboxEvent[];
      try {
        events = await this.options.outbox.claim(route.name, free, this.now(), this.leaseMs);
      } catch (error) {
        // Logged once per outage (then at debug), not on every backed-off poll.
        const fields = { route: route.name, error: (error as Error).message };
        if (this.storeFailures === 0 && !this.storeFailedThisTick) {
          this.options.logger.error("outbox claim failed; backing off until the store answers", fields);
        } else this.options.logger.debug("outbox claim failed", fields);
        this.storeFailedThisTick = true;
        continue;
      }
      for (const event of events) {
        const work: Promise<void> = this.process(event)
          .catch((error: unknown) =>
            // Only the store can fail here (the stage itself never throws): the lease runs out and the
            // event is claimed again once the store answers; nothing was recorded, so nothing is lost.
            this.options.logger.error("recording an attempt failed; the event is tried again after its lease", {
              route: route.name,
              webhook_id: event.id,
              error: (error as Error).message,
            }),
          )
          .finally(() => {
            active.delete(work);
            this.wake();
          });
        active.add(work);
      }
    }
  }

  private async countOrphans(routes: readonly Route[]): Promise<void> {
    const known = new Set(routes.map((route) => route.name));
    const depth = await this.options.outbox.depth();
    const orphans: Record<string, number> = {};
    for (const [name, count] of Object.entries(depth)) if (!known.has(name) && count > 0) orphans[name] = count;
    const before = Object.keys(this.orphans).sort().join(",");
    this.orphans = orphans;
    if (Object.keys(orphans).length > 0 && Object.keys(orphans).sort().join(",") !== before) {
      this.options.logger.warn(
        "outbox events wait for routes that are not configured; they stay until the route is back or they are moved to the dead letters",
        {
          routes: orphans,
        },
      );
    }
  }

  /** Runs the event's stage on the config in force when the attempt starts, and records the result. */
  private async process(event: OutboxEvent): Promise<void> {
    const config = this.options.acquireConfig();
    try {
      const route = config.routes.find((candidate) => candidate.name === event.route);
      // The route disappeared between the claim and now (a reload): leave the event for later.
      if (!route) return await this.options.outbox.postpone(event.id, this.now() + this.pollIntervalMs);
      const result = await runStage(event, this.options.outbox.secretOf(event), route, {
        epilot: config.epilot,
        logger: this.options.logger,
        observer: this.options.observer,
        now: this.now,
        tracer: this.options.tracer,
      });
      await this.record(event, route, result);
    } finally {
      config.release();
    }
  }

  private tell(route: Route, result: StepResult, deadLettered: boolean, event: OutboxEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(route.name, result, deadLettered, event);
      } catch (error) {
        this.options.logger.error("a delivery result listener failed", {
          route: route.name,
          webhook_id: event.id,
          error: (error as Error).message,
        });
      }
    }
  }

  private async record(event: OutboxEvent, route: Route, result: StageResult): Promise<void> {
    const { outbox, logger } = this.options;
    // trace_id and span_id of the attempt's span, when it was traced: the log line leads to the trace.
    const log = {
      route: route.name,
      webhook_id: event.id,
      stage: event.stage,
      attempt: event.attempts + 1,
      ...result.traceLog,
    };
    switch (result.kind) {
      case "postpone":
        await outbox.postpone(event.id, result.until);
        logger.debug(
          result.reason === "rate_limited"
            ? "attempt postponed: the target's rate limit is reached"
            : "attempt postponed: circuit breaker open",
          { ...log, until: new Date(result.until).toISOString() },
        );
        this.tell(route, result, false, event);
        return;
      case "done":
        if (result.next) {
          await outbox.advance(event.id, result.attempt, result.next, result.stageData);
          logger.info("stage done", {
            ...log,
            outcome: result.attempt.outcome,
            status: result.attempt.status,
            next_stage: result.next,
          });
        } else {
          await outbox.complete(event.id, result.attempt);
          logger.info("event done", { ...log, outcome: result.attempt.outcome, status: result.attempt.status });
        }
        this.tell(route, result, false, event);
        return;
      case "retry": {
        const attempts = event.attempts + 1;
        if (attempts >= route.delivery.maxAttempts) {
          const reason = `gave up after ${attempts} attempts at ${event.stage}: ${result.attempt.error ?? result.attempt.outcome}`;
          await outbox.bury(event.id, result.attempt, reason);
          logger.error("dead letter", {
            ...log,
            outcome: result.attempt.outcome,
            status: result.attempt.status,
            target_url: result.attempt.url,
            reason,
          });
          this.tell(route, result, true, event);
          return;
        }
        const delay = nextDelayMs(attempts, route.delivery.backoff, result.retryAfterMs);
        await outbox.retryLater(event.id, result.attempt, this.now() + delay);
        logger.warn("attempt failed, will retry", {
          ...log,
          outcome: result.attempt.outcome,
          status: result.attempt.status,
          target_url: result.attempt.url,
          error: result.attempt.error,
          retry_in_ms: delay,
        });
        this.tell(route, result, false, event);
        return;
      }
      case "dead":
        await outbox.bury(event.id, result.attempt, result.reason);
        logger.error("dead letter", {
          ...log,
          outcome: result.attempt.outcome,
          status: result.attempt.status,
          target_url: result.attempt.url,
          reason: result.reason,
        });
        this.tell(route, result, true, event);
        return;
    }
  }
}
