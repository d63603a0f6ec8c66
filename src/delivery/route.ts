import type { ParsedMessage } from "../payload/message.ts";
import type { ParsedCall } from "../payload/parse.ts";
import type { Routable } from "../routing/router.ts";
import type { Target } from "../targets/types.ts";
import type { CompiledExpression } from "../transform/expression.ts";
import type { Shaping } from "../transform/shaping.ts";
import type { CircuitBreaker } from "./circuit-breaker.ts";
import type { BackoffPolicy } from "./retry-policy.ts";

/** How a route reads the legacy system's answer (`response.*`), compiled. */
export interface ResponseRules {
  readonly transform?: CompiledExpression | undefined;
  readonly failWhen?: CompiledExpression | undefined;
  readonly errorReason?: CompiledExpression | undefined;
  /** Its result is PATCHed onto the entity after a successful delivery. */
  readonly writeBack?: CompiledExpression | undefined;
}

/** How a route delivers (`delivery.*`). */
export interface DeliveryPolicy {
  readonly mode: "sync" | "async";
  readonly maxAttempts: number;
  readonly backoff: BackoffPolicy;
  readonly concurrency: number;
  /**
   * `delivery.order_key`, compiled: outbox events of the route with the same key are delivered one
   * at a time, in the order they were stored. Routes of polled messages without one order by the
   * message's `group`.
   */
  readonly orderKey?: CompiledExpression | undefined;
}

/**
 * A route ready to serve, built once at load (gateway/compile.ts): what the router matches on, how
 * the call is shaped, how the answer is read, how it is delivered, and the target with its breaker.
 * Each part is its stage's own type; this only puts them together.
 */
export interface Route extends Routable {
  readonly name: string;
  readonly matches?: ((call: ParsedCall) => boolean) | undefined;
  /** Set on routes of polled messages (`match.source`). */
  readonly matchesMessage?: ((message: ParsedMessage) => boolean) | undefined;
  readonly shaping: Shaping;
  /** Lower-case names of incoming headers passed to the target. */
  readonly forwardHeaders: readonly string[];
  readonly response: ResponseRules;
  readonly delivery: DeliveryPolicy;
  /** One per route's target; shared by sync calls and async workers. */
  readonly breaker: CircuitBreaker;
  readonly target: Target;
  /** `http`, `soap`: for logs and metrics. */
  readonly targetType: string;
  /** `use_case_slug`: the use case its monitoring spans are reported under, instead of `epilot.monitoring.use_case_slug`. */
  readonly useCaseSlug?: string | undefined;
}
