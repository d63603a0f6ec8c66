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
}

/** What a target's rate limit shows of itself (the admin API's `/api/routes`). */
export interface RateLimitState {
  /** At most this many calls start within any `perMs`. */
  readonly requests: number;
  readonly perMs: number;
  /** Calls started within the current interval. */
  readonly inWindow?: number;
  /** Calls and events waiting for their turn now. */
  readonly waiting?: number;
}

/**
 * A route ready to serve, built once at load (gateway/compile.ts): what the router matches on, how
 * the call is shaped, how the answer is read, how it is delivered, and the target with its breaker.
 * Each part is its stage's own type; this only puts them together.
 */
export interface Route extends Routable {
  readonly name: string;
  readonly matches?: ((call: ParsedCall) => boolean) | undefined;
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
  /** The state of the target's `rate_limit`, when it has one (read by the admin API). */
  readonly rateLimit?: { state(): RateLimitState } | undefined;
}
