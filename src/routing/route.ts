import type { CircuitBreaker } from "../delivery/circuit-breaker.ts";
import type { BackoffPolicy } from "../delivery/retry-policy.ts";
import type { CustomActionPayload } from "../payload/schema.ts";
import type { Target } from "../targets/types.ts";
import type { CompiledExpression } from "../transform/expression.ts";
import type { StripPath } from "../transform/strip.ts";

/** A route ready to serve: every expression compiled and its target built, once, at load. */
export interface CompiledRoute {
  readonly name: string;
  /** Undefined when the route has no `match` (reachable only by name). */
  readonly matches?: (payload: CustomActionPayload) => boolean;
  readonly strip: readonly StripPath[];
  /** Lower-case names of incoming headers passed to the target. */
  readonly forwardHeaders: readonly string[];
  readonly skipWhen?: CompiledExpression;
  readonly skipReason?: CompiledExpression;
  readonly transform?: CompiledExpression;
  readonly response: {
    readonly transform?: CompiledExpression;
    readonly failWhen?: CompiledExpression;
    readonly errorReason?: CompiledExpression;
    /** Its result is PATCHed onto the entity after a successful delivery. */
    readonly writeBack?: CompiledExpression;
  };
  readonly delivery: {
    readonly mode: "sync" | "async";
    readonly maxAttempts: number;
    readonly backoff: BackoffPolicy;
    readonly concurrency: number;
  };
  /** One per route's target; shared by sync calls and async workers. */
  readonly breaker: CircuitBreaker;
  readonly target: Target;
  /** `http`, `soap`: for logs and metrics. */
  readonly targetType: string;
}
