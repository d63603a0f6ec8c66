import type { LoadedConfig } from "../config/load.ts";
import type { RouteConfig } from "../config/schema.ts";
import { failure } from "../delivery/answer.ts";
import { CircuitBreaker } from "../delivery/circuit-breaker.ts";
import { type PreparedMessage, prepareMessage } from "../delivery/prepare.ts";
import type { Route } from "../delivery/route.ts";
import { runStage } from "../delivery/stages.ts";
import { isRecord } from "../kit/records.ts";
import { USER_AGENT } from "../kit/version.ts";
import { silentLogger } from "../log/logger.ts";
import type { ParsedCall } from "../payload/parse.ts";
import { type ActionAnswer, routeAndDispatch } from "../pipeline/handle-action.ts";
import { firstUnmetRule, type UnmetRule } from "../routing/match.ts";
import { createRouter, type Router } from "../routing/router.ts";
import { openMemoryStore } from "../store/memory-store.ts";
import { type StandInAnswer, type StandInTarget, standInTarget } from "../targets/stand-in.ts";
import type { TargetRequest } from "../targets/types.ts";
import type { ExpressionEvaluationError } from "../transform/expression.ts";
import type { ShapingStage } from "../transform/shaping.ts";
import { strippedPaths } from "../transform/strip.ts";
import { type CompiledConfig, compileConfig } from "./compile.ts";

/**
 * What `explain` and `test` feed the pipeline, one kind per source of calls. A custom action is a
 * ParsedCall made from a payload file (payload/parse.ts, `parseUnsignedPayload`). A second kind (a
 * Pollable Outbound message) is added here and in the functions that switch on `kind` (`payloadOf`,
 * `prepare`, `dispatch`, `chooseByMatch`): nothing else in this file knows the kinds.
 */
export type LocalInput = { readonly kind: "custom_action"; readonly call: ParsedCall };

function payloadOf(input: LocalInput): ParsedCall["payload"] {
  switch (input.kind) {
    case "custom_action":
      return input.call.payload;
  }
}

function prepare(input: LocalInput, route: Route): Promise<PreparedMessage> {
  switch (input.kind) {
    case "custom_action":
      return prepareMessage(input.call, route, silentLogger);
  }
}

function dispatch(
  input: LocalInput,
  routeName: string | undefined,
  context: Parameters<typeof routeAndDispatch>[2],
): Promise<ActionAnswer> {
  switch (input.kind) {
    case "custom_action":
      return routeAndDispatch(input.call, routeName, context);
  }
}

/** Why a route did or did not take the call, in the order `POST /actions` tries them. */
export interface RouteDecision {
  readonly route: string;
  /** `taken`: this route handles the call; `unmet`: its `match` did not hold; `by_name_only`: it has no `match`. */
  readonly verdict: "taken" | "unmet" | "by_name_only";
  readonly unmet?: UnmetRule;
}

/** The route that handles the call, as `explain` describes it. */
export interface RouteSummary {
  readonly name: string;
  readonly targetType: string;
  /** `name`: named by `--route` (as `POST /actions/<name>`, which does not check `match`); `match`: its `match` held. */
  readonly chosenBy: "name" | "match";
  readonly hasSkipWhen: boolean;
  readonly hasTransform: boolean;
  readonly delivery: Route["delivery"];
  readonly timeoutMs: number;
}

/** What the route's shaping and its target made of the call. */
export type ShapingOutcome =
  | { readonly kind: "skipped"; readonly reason: string }
  | {
      readonly kind: "failed";
      readonly stage: ShapingStage;
      readonly error: ExpressionEvaluationError;
      /** The expression that failed, as the config holds it (its `position` points into it). */
      readonly source: string;
    }
  /** The transform produced no value: the gateway answers 400. */
  | { readonly kind: "empty" }
  /** The target cannot build a request for this payload (a placeholder without a value). */
  | { readonly kind: "unsendable"; readonly body: unknown; readonly reason: string }
  /** Building the request threw: a bug the gateway answers with 500 internal_error. */
  | { readonly kind: "crashed"; readonly body: unknown; readonly error: string }
  | { readonly kind: "request"; readonly body: unknown; readonly request: TargetRequest };

export type Explanation =
  | { readonly kind: "unknown_route"; readonly name: string; readonly routes: readonly string[] }
  | { readonly kind: "unrouted"; readonly decisions: readonly RouteDecision[] }
  | {
      readonly kind: "routed";
      readonly route: RouteSummary;
      readonly decisions: readonly RouteDecision[];
      /** The paths strip removed, written out. */
      readonly stripped: readonly string[];
      readonly outcome: ShapingOutcome;
    };

/** What one call did in a route test: the answer epilot got and what the target would have received. */
export interface LocalRunResult {
  /** The route that handled the call; null when none did (404). */
  readonly route: string | null;
  readonly targetType?: string;
  readonly skipped: boolean;
  readonly answer: { readonly status: number; readonly body: unknown };
  /** The request of the (first) delivery attempt; null when nothing was sent. */
  readonly request: TargetRequest | null;
  /** Set when the test's target_response does not fit the route's target; nothing was run. */
  readonly problem?: string;
  /** Set when the pipeline threw (a bug): the answer is then the gateway's 500 internal_error. */
  readonly crashed?: string;
}

/** The pipeline of one config, in process, with nothing listening, no store opened and no key fetched. */
export interface LocalRunner {
  /** The config that was compiled; `explain` masks by it. */
  readonly loaded: LoadedConfig;
  readonly routeNames: readonly string[];
  /** What the route would do with `input`, stage by stage, without sending anything. */
  explain(input: LocalInput, routeName?: string): Promise<Explanation>;
  /**
   * Runs `input` through the real request path (route, strip, skip_when, transform, the target's
   * request, the response rules, the answer) with each target answering `targetResponse` in its
   * stead. An async route answers 202; its request is what the first delivery attempt sends.
   */
  run(input: LocalInput, options: { routeName?: string; targetResponse: StandInAnswer }): Promise<LocalRunResult>;
  /** Closes the targets' (unused) connection pools. */
  close(): Promise<void>;
}

/**
 * Compiles `loaded` as `serve` would (throws its ConfigError) for the local commands. The remote
 * key source is never started, and no store is opened: an async route's call goes to a memory
 * outbox that lives for one run.
 *
 * @example
 * const runner = createLocalRunner(loadConfigFile("config.yaml", process.env));
 * const explanation = await runner.explain({ kind: "custom_action", call: parsed });
 */
export function createLocalRunner(loaded: LoadedConfig): LocalRunner {
  const compiled = compileConfig(loaded, { logger: silentLogger, userAgent: USER_AGENT });
  const configOf = (name: string): RouteConfig => compiled.source.routes.find((route) => route.name === name)!;
  return {
    loaded,
    routeNames: compiled.routes.map((route) => route.name),
    explain: (input, routeName) => explain(compiled, configOf, input, routeName),
    run: (input, options) => run(compiled, configOf, input, options),
    close: () => compiled.close(),
  };
}

async function explain(
  compiled: CompiledConfig,
  configOf: (name: string) => RouteConfig,
  input: LocalInput,
  routeName: string | undefined,
): Promise<Explanation> {
  const router = createRouter(compiled.routes);
  const payload = payloadOf(input);
  let route: Route | undefined;
  let decisions: RouteDecision[];
  if (routeName !== undefined) {
    route = router.byName(routeName);
    if (!route) return { kind: "unknown_route", name: routeName, routes: compiled.routes.map((each) => each.name) };
    decisions = [{ route: route.name, verdict: "taken" }];
  } else {
    route = chooseByMatch(router, input);
    decisions = [];
    for (const candidate of compiled.routes) {
      if (candidate === route) {
        decisions.push({ route: candidate.name, verdict: "taken" });
        break;
      }
      const rules = configOf(candidate.name).match;
      if (!rules) decisions.push({ route: candidate.name, verdict: "by_name_only" });
      else {
        const unmet = firstUnmetRule(rules, payload);
        decisions.push({ route: candidate.name, verdict: "unmet", ...(unmet ? { unmet } : {}) });
      }
    }
    if (!route) return { kind: "unrouted", decisions };
  }

  const config = configOf(route.name);
  const summary: RouteSummary = {
    name: route.name,
    targetType: route.targetType,
    chosenBy: routeName !== undefined ? "name" : "match",
    hasSkipWhen: route.shaping.skipWhen !== undefined,
    hasTransform: route.shaping.transform !== undefined,
    delivery: route.delivery,
    timeoutMs: config.target.timeout,
  };
  const stripped = strippedPaths(payload, route.shaping.strip);
  const prepared = await prepare(input, route);
  const shaped = prepared.shaped;
  let outcome: ShapingOutcome;
  if (shaped.kind === "skipped") outcome = { kind: "skipped", reason: skipReasonOf(prepared) };
  else if (shaped.kind === "failed") {
    const source = stageSource(route, shaped.stage);
    outcome = { kind: "failed", stage: shaped.stage, error: shaped.error, source };
  } else if (shaped.kind === "empty" || !prepared.ok) outcome = { kind: "empty" };
  else {
    try {
      const rendered = await route.target.render(prepared.message);
      outcome = rendered.ok
        ? { kind: "request", body: shaped.body, request: rendered.request }
        : { kind: "unsendable", body: shaped.body, reason: rendered.reason };
    } catch (error) {
      outcome = { kind: "crashed", body: shaped.body, error: describeThrown(error) };
    }
  }
  return { kind: "routed", route: summary, decisions, stripped, outcome };
}

/** The route `POST /actions` would take: the router's own choice. */
function chooseByMatch(router: Router<Route>, input: LocalInput): Route | undefined {
  switch (input.kind) {
    case "custom_action":
      return router.byMatch(input.call);
  }
}

function stageSource(route: Route, stage: ShapingStage): string {
  const expression =
    stage === "skip_when"
      ? route.shaping.skipWhen
      : stage === "skip_reason"
        ? route.shaping.skipReason
        : route.shaping.transform;
  return expression?.source ?? "";
}

function describeThrown(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** The text epilot gets in `skip_reason`, exactly as the answer carries it. */
function skipReasonOf(prepared: PreparedMessage): string {
  const body = prepared.ok ? undefined : prepared.answer.body;
  return isRecord(body) && typeof body.skip_reason === "string" ? body.skip_reason : "";
}

async function run(
  compiled: CompiledConfig,
  configOf: (name: string) => RouteConfig,
  input: LocalInput,
  options: { routeName?: string; targetResponse: StandInAnswer },
): Promise<LocalRunResult> {
  // Every run starts from a fresh gateway: its own breakers (a test's failures do not open the
  // breaker for the next), its own stand-ins and memory outbox.
  const standIns = new Map<string, StandInTarget>();
  const routes = compiled.routes.map((route): Route => {
    const target = standInTarget(route.target, options.targetResponse);
    standIns.set(route.name, target);
    const breaker = configOf(route.name).delivery.circuit_breaker;
    return {
      ...route,
      target,
      breaker: new CircuitBreaker({ failureThreshold: breaker.failure_threshold, cooldownMs: breaker.cooldown }),
    };
  });
  const router = createRouter(routes);
  const chosen = options.routeName !== undefined ? router.byName(options.routeName) : chooseByMatch(router, input);
  if (chosen && options.targetResponse.fault && chosen.targetType !== "soap") {
    return {
      route: chosen.name,
      targetType: chosen.targetType,
      skipped: false,
      answer: { status: 0, body: null },
      request: null,
      problem: `target_response.fault: only a SOAP target answers with a fault; route ${chosen.name} has a ${chosen.targetType} target`,
    };
  }

  const store = openMemoryStore({ replayWindowMs: 60_000 });
  try {
    let answer: ActionAnswer;
    try {
      answer = await dispatch(input, options.routeName, {
        router,
        outbox: store.outbox,
        onEnqueued: () => {},
        logger: silentLogger,
      });
    } catch (error) {
      // What the server answers for an error nothing caught (server/app.ts), with the error for the report.
      const internal = failure(500, "internal_error", "actiongate failed to process the call; see its log");
      return {
        route: chosen?.name ?? null,
        ...(chosen ? { targetType: chosen.targetType } : {}),
        skipped: false,
        answer: { status: internal.status, body: internal.body },
        request: chosen ? (standIns.get(chosen.name)?.requests[0] ?? null) : null,
        crashed: describeThrown(error),
      };
    }
    const route = answer.route !== undefined ? router.byName(answer.route) : undefined;
    if (route && answer.outcome === "accepted") {
      // The first attempt the delivery engine would make, from the event as it was stored.
      const [event] = await store.outbox.claim(route.name, 1, Date.now(), 60_000);
      if (event)
        await runStage(event, store.outbox.secretOf(event), route, {
          epilot: compiled.epilot,
          logger: silentLogger,
          now: Date.now,
        });
    }
    const request = route ? (standIns.get(route.name)?.requests[0] ?? null) : null;
    return {
      route: route?.name ?? null,
      ...(route ? { targetType: route.targetType } : {}),
      skipped: answer.outcome === "skipped",
      answer: { status: answer.status, body: answer.body },
      request,
    };
  } finally {
    await store.close();
  }
}
