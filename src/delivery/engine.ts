import { decodeJwt } from "jose";
import type { EpilotCallOutcome } from "../epilot/types.ts";
import type { Logger } from "../log/logger.ts";
import type { CompiledRoute } from "../routing/route.ts";
import type { AttemptRecord, OutboxEvent, OutboxStage, OutboxStore } from "../store/types.ts";
import type { TargetResponse } from "../targets/types.ts";
import {
  canResume,
  nextStage,
  type OutboxEventData,
  type OutboxEventSecrets,
  readEventData,
  readEventSecrets,
} from "./outbox-event.ts";
import { classifyFailure, nextDelayMs, recordOutcome } from "./retry-policy.ts";
import { reportsFailure } from "./sync.ts";

/** The two calls back to epilot, injectable so that tests and other stores can stand in. */
export interface EpilotCallbacks {
  resume(callbackUrl: string, resumeToken: string): Promise<EpilotCallOutcome>;
  writeBack(
    entity: { schema: string; id: string },
    patch: Record<string, unknown>,
    token: string,
  ): Promise<EpilotCallOutcome>;
}

export interface DeliveryEngineOptions {
  readonly outbox: OutboxStore;
  /** The routes in force now (a reload swaps them; events of a removed route go to the dead letters). */
  readonly routes: () => readonly CompiledRoute[];
  readonly epilot: EpilotCallbacks;
  readonly logger: Logger;
  /** How long a claimed event stays reserved for this worker; another worker takes it over after. */
  readonly leaseMs?: number;
  /** How often the outbox is polled when nothing woke the engine up. */
  readonly pollIntervalMs?: number;
  readonly now?: () => number;
}

const ORPHAN_CHECK_INTERVAL_MS = 60_000;
/** The longest pause between polls while the store fails (a database restarting or unreachable). */
const MAX_STORE_BACKOFF_MS = 5_000;

type StepResult =
  | { kind: "done"; attempt: AttemptRecord; next?: OutboxStage; stageData?: string }
  | { kind: "retry"; attempt: AttemptRecord; retryAfterMs?: number }
  | { kind: "dead"; attempt: AttemptRecord; reason: string }
  | { kind: "postpone"; until: number };

/**
 * Background delivery: claims due events from the outbox per route (up to the route's
 * `delivery.concurrency` in flight), runs their current stage (deliver, write-back, resume), and
 * retries with backoff, moves on, or buries them in the dead letters.
 *
 * @example
 * const engine = new DeliveryEngine({ outbox, routes: () => config.routes, epilot, logger });
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
  /** Polls in a row whose store calls failed: the poll loop backs off and logs once per outage. */
  private storeFailures = 0;
  private storeFailedThisTick = false;
  private readonly leaseMs: number;
  private readonly pollIntervalMs: number;
  private readonly now: () => number;

  constructor(private readonly options: DeliveryEngineOptions) {
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
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    await this.ticking;
    await Promise.allSettled([...this.inFlight.values()].flatMap((set) => [...set]));
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
    try {
      await this.claimAndRun();
    } catch (error) {
      this.storeFailedThisTick = true;
      this.options.logger.error("outbox poll failed", { error: (error as Error).message });
    }
    if (this.storeFailedThisTick) {
      this.storeFailures++;
    } else if (this.storeFailures > 0) {
      this.options.logger.info("outbox store reachable again", { failed_polls: this.storeFailures });
      this.storeFailures = 0;
    }
  }

  private async claimAndRun(): Promise<void> {
    for (const route of this.options.routes()) {
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
        if (this.storeFailures === 0 && !this.storeFailedThisTick)
          this.options.logger.error("outbox claim failed; backing off until the store answers", {
            route: route.name,
            error: (error as Error).message,
          });
        else this.options.logger.debug("outbox claim failed", { route: route.name, error: (error as Error).message });
        this.storeFailedThisTick = true;
        continue;
      }
      for (const event of events) {
        const work: Promise<void> = this.process(event, route)
          .catch((error: unknown) =>
            this.options.logger.error("outbox event failed unexpectedly", {
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
    // Events of routes that no longer exist would wait forever: bury them with a clear reason. They
    // appear only at start, after a reload or by a replay, so a look once a minute is enough, and
    // the outbox is not counted on every poll.
    if (this.now() - this.lastOrphanCheck >= ORPHAN_CHECK_INTERVAL_MS) {
      this.lastOrphanCheck = this.now();
      await this.buryOrphans();
    }
  }

  private async buryOrphans(): Promise<void> {
    const known = new Set(this.options.routes().map((route) => route.name));
    const depth = await this.options.outbox.depth().catch(() => ({}) as Record<string, number>);
    for (const name of Object.keys(depth)) {
      if (known.has(name)) continue;
      for (const event of await this.options.outbox.claim(name, 100, this.now(), this.leaseMs)) {
        const attempt: AttemptRecord = {
          at: this.now(),
          stage: event.stage,
          outcome: "route_removed",
          error: `route "${name}" is no longer configured`,
        };
        await this.options.outbox.bury(
          event.id,
          attempt,
          `route "${name}" is no longer configured; fix the config, then replay`,
        );
        this.options.logger.error("dead letter", {
          route: name,
          webhook_id: event.id,
          stage: event.stage,
          reason: attempt.error,
        });
      }
    }
  }

  private async process(event: OutboxEvent, route: CompiledRoute): Promise<void> {
    const data = readEventData(event);
    const secrets = readEventSecrets(this.options.outbox.secretOf(event));
    const result = await this.runStage(event, route, data, secrets);
    const outbox = this.options.outbox;
    const log = { route: route.name, webhook_id: event.id, stage: event.stage, attempt: event.attempts + 1 };

    switch (result.kind) {
      case "postpone":
        await outbox.postpone(event.id, result.until);
        this.options.logger.debug("attempt postponed: circuit breaker open", {
          ...log,
          until: new Date(result.until).toISOString(),
        });
        return;
      case "done":
        if (result.next) {
          await outbox.advance(event.id, result.attempt, result.next, result.stageData);
          this.options.logger.info("stage done", {
            ...log,
            outcome: result.attempt.outcome,
            status: result.attempt.status,
            next_stage: result.next,
          });
        } else {
          await outbox.complete(event.id, result.attempt);
          this.options.logger.info("event done", {
            ...log,
            outcome: result.attempt.outcome,
            status: result.attempt.status,
          });
        }
        return;
      case "retry": {
        const attempts = event.attempts + 1;
        if (attempts >= route.delivery.maxAttempts) {
          const reason = `gave up after ${attempts} attempts at ${event.stage}: ${result.attempt.error ?? result.attempt.outcome}`;
          await outbox.bury(event.id, result.attempt, reason);
          this.options.logger.error("dead letter", {
            ...log,
            outcome: result.attempt.outcome,
            status: result.attempt.status,
            reason,
          });
          return;
        }
        const delay = nextDelayMs(attempts, route.delivery.backoff, result.retryAfterMs);
        await outbox.retryLater(event.id, result.attempt, this.now() + delay);
        this.options.logger.warn("attempt failed, will retry", {
          ...log,
          outcome: result.attempt.outcome,
          status: result.attempt.status,
          error: result.attempt.error,
          retry_in_ms: delay,
        });
        return;
      }
      case "dead":
        await outbox.bury(event.id, result.attempt, result.reason);
        this.options.logger.error("dead letter", {
          ...log,
          outcome: result.attempt.outcome,
          status: result.attempt.status,
          reason: result.reason,
        });
        return;
    }
  }

  private async runStage(
    event: OutboxEvent,
    route: CompiledRoute,
    data: OutboxEventData,
    secrets: OutboxEventSecrets,
  ): Promise<StepResult> {
    const at = this.now();
    switch (event.stage) {
      case "deliver":
        return this.deliver(event, route, data, secrets, at);
      case "write_back":
        return this.writeBack(event, route, data, secrets, at);
      case "resume":
        return this.resume(event, route, data, secrets, at);
    }
  }

  private async deliver(
    event: OutboxEvent,
    route: CompiledRoute,
    data: OutboxEventData,
    secrets: OutboxEventSecrets,
    at: number,
  ): Promise<StepResult> {
    // An open breaker pauses delivery without spending the event's attempts.
    if (!route.breaker.tryPass()) return { kind: "postpone", until: route.breaker.retryAt };
    const outcome = await route.target.deliver({
      body: data.body,
      payload: data.payload,
      webhookId: event.id,
      forwardedHeaders: secrets.forwardedHeaders,
    });
    recordOutcome(route.breaker, outcome);

    if (outcome.kind === "delivered") {
      const status = outcome.response.status;
      let refused: string | undefined;
      try {
        refused = await reportsFailure(route, outcome.response, this.options.logger);
      } catch {
        refused = "response.fail_when failed to evaluate";
      }
      if (refused)
        return {
          kind: "dead",
          attempt: { at, stage: "deliver", outcome: "target_failed", status, error: refused },
          reason: refused,
        };
      const next = nextStage("deliver", route, canResume(data, secrets));
      return {
        kind: "done",
        attempt: { at, stage: "deliver", outcome: "delivered", status },
        ...(next ? { next, stageData: JSON.stringify(outcome.response) } : {}),
      };
    }
    const failure = classifyFailure(outcome);
    const outcomeName =
      outcome.kind === "rejected"
        ? "target_failed"
        : outcome.kind === "timeout"
          ? "target_timeout"
          : outcome.kind === "unreachable"
            ? "target_unreachable"
            : "bad_request";
    const attempt: AttemptRecord = {
      at,
      stage: "deliver",
      outcome: outcomeName,
      error: failure.reason,
      ...(failure.status !== undefined ? { status: failure.status } : {}),
    };
    if (!failure.retry) return { kind: "dead", attempt, reason: `the target refused the event: ${failure.reason}` };
    return {
      kind: "retry",
      attempt,
      ...(failure.retryAfterMs !== undefined ? { retryAfterMs: failure.retryAfterMs } : {}),
    };
  }

  private async writeBack(
    event: OutboxEvent,
    route: CompiledRoute,
    data: OutboxEventData,
    secrets: OutboxEventSecrets,
    at: number,
  ): Promise<StepResult> {
    const dead = (outcome: string, reason: string, status?: number): StepResult => ({
      kind: "dead",
      attempt: { at, stage: "write_back", outcome, error: reason, ...(status !== undefined ? { status } : {}) },
      reason,
    });
    if (!route.response.writeBack)
      return this.afterStage("write_back", route, data, secrets, { at, stage: "write_back", outcome: "skipped" });
    if (!data.entity)
      return dead("write_back_impossible", "the payload has no data.entity._schema and _id to write back to");
    const token = secrets.epilotToken;
    if (!token) return dead("write_back_impossible", "the call carried no x-epilot-token, which write-back needs");
    const expiry = tokenExpiry(token);
    if (expiry !== undefined && expiry <= at) {
      return dead(
        "token_expired",
        `x-epilot-token expired at ${new Date(expiry).toISOString()}; write-back needs a new call from epilot`,
      );
    }

    let response: TargetResponse | undefined;
    try {
      response = event.stageData ? (JSON.parse(event.stageData) as TargetResponse) : undefined;
    } catch {
      response = undefined;
    }
    let patch: unknown;
    try {
      patch = await route.response.writeBack.evaluate({ ...response, payload: data.payload });
    } catch (error) {
      return dead("transform_failed", `response.write_back failed: ${(error as Error).message}`);
    }
    if (patch === null || typeof patch !== "object" || Array.isArray(patch)) {
      return dead("transform_failed", "response.write_back did not produce an object to write");
    }
    const outcome = await this.options.epilot.writeBack(data.entity, patch as Record<string, unknown>, token);
    return this.fromEpilotOutcome(outcome, "write_back", route, data, secrets, at);
  }

  private async resume(
    _event: OutboxEvent,
    route: CompiledRoute,
    data: OutboxEventData,
    secrets: OutboxEventSecrets,
    at: number,
  ): Promise<StepResult> {
    if (!data.callbackUrl || !secrets.resumeToken)
      return this.afterStage("resume", route, data, secrets, { at, stage: "resume", outcome: "skipped" });
    const outcome = await this.options.epilot.resume(data.callbackUrl, secrets.resumeToken);
    return this.fromEpilotOutcome(outcome, "resume", route, data, secrets, at);
  }

  private fromEpilotOutcome(
    outcome: EpilotCallOutcome,
    stage: OutboxStage,
    route: CompiledRoute,
    data: OutboxEventData,
    secrets: OutboxEventSecrets,
    at: number,
  ): StepResult {
    const status = "status" in outcome && outcome.status !== undefined ? { status: outcome.status } : {};
    switch (outcome.kind) {
      case "ok":
        return this.afterStage(stage, route, data, secrets, {
          at,
          stage,
          outcome: stage === "resume" ? "resumed" : "written_back",
          ...status,
        });
      case "retry":
        return {
          kind: "retry",
          attempt: { at, stage, outcome: `${stage}_failed`, error: outcome.reason, ...status },
          ...(outcome.retryAfterMs !== undefined ? { retryAfterMs: outcome.retryAfterMs } : {}),
        };
      case "fatal":
        return {
          kind: "dead",
          attempt: { at, stage, outcome: `${stage}_failed`, error: outcome.reason, ...status },
          reason: outcome.reason,
        };
      case "refused":
        return {
          kind: "dead",
          attempt: { at, stage, outcome: `${stage}_refused`, error: outcome.reason },
          reason: outcome.reason,
        };
    }
  }

  private afterStage(
    stage: OutboxStage,
    route: CompiledRoute,
    data: OutboxEventData,
    secrets: OutboxEventSecrets,
    attempt: AttemptRecord,
  ): StepResult {
    const next = nextStage(stage, route, canResume(data, secrets));
    return { kind: "done", attempt, ...(next ? { next } : {}) };
  }
}

/** When epilot's token expires (ms since epoch), read from its `exp` claim without verifying it. */
function tokenExpiry(token: string): number | undefined {
  try {
    const exp = decodeJwt(token).exp;
    return typeof exp === "number" ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}
