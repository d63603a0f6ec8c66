import type { Route } from "../delivery/route.ts";
import type { StepResult } from "../delivery/stages.ts";
import { isRecord } from "../kit/records.ts";
import { redactUrl } from "../kit/urls.ts";
import type { DeliveryResult } from "../metrics/metrics.ts";
import type { AdminRouteView } from "../server/admin-api.ts";
import type { CompiledConfig } from "./compile.ts";

/**
 * The routes in force as the admin API shows them: the compiled route (mode, breaker, rate limit)
 * with what its config says of its source and target, URLs with their credentials hidden.
 *
 * @example
 * adminRouteViews(active.config); // [{ name: "erp", source: "custom_action", target: { type: "http", url: "http://erp/api" }, ... }]
 */
export function adminRouteViews(config: CompiledConfig): AdminRouteView[] {
  const configs = new Map(config.source.routes.map((route) => [route.name, route]));
  return config.routes.map((route) => {
    const routeConfig = configs.get(route.name);
    const match: unknown = routeConfig?.match;
    const target: unknown = routeConfig?.target;
    const text = (record: unknown, key: string): string | undefined =>
      isRecord(record) && typeof record[key] === "string" ? record[key] : undefined;
    const url = text(target, "url");
    const wsdl = text(target, "wsdl");
    return {
      name: route.name,
      // Polled messages (epilot's Pollable Outbound) name their source in `match.source`.
      source: text(match, "source") ?? "custom_action",
      target: {
        type: route.targetType,
        ...(url !== undefined ? { url: redactUrl(url) } : {}),
        ...(wsdl !== undefined ? { wsdl: redactUrl(wsdl) } : {}),
      },
      mode: route.delivery.mode,
      maxAttempts: route.delivery.maxAttempts,
      breaker: route.breaker,
      rateLimit: rateLimitOf(route),
    };
  });
}

function rateLimitOf(route: Route): AdminRouteView["rateLimit"] {
  return route.target.rateLimitState?.();
}

/**
 * What one attempt at an outbox stage counts as (`actiongate_deliveries_total`, the console): the
 * stage done, another attempt to follow, or the dead letters. A postponed event (breaker open) made
 * no attempt, and a stage with nothing to do (`skipped`) is not one either.
 *
 * @example
 * deliveryResult({ kind: "retry", attempt }, false); // "retried"
 */
export function deliveryResult(result: StepResult, deadLettered: boolean): DeliveryResult | undefined {
  if (deadLettered) return "dead_lettered";
  switch (result.kind) {
    case "done":
      return result.attempt.outcome === "skipped" ? undefined : "delivered";
    case "retry":
      return "retried";
    case "dead":
      return "dead_lettered";
    case "postpone":
      return undefined;
  }
}
