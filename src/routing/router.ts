import type { CustomActionPayload } from "../payload/schema.ts";
import type { CompiledRoute } from "./route.ts";

/** Finds the route for a call: by the name in the path, or by the first `match` that holds. */
export interface Router {
  byName(name: string): CompiledRoute | undefined;
  byMatch(payload: CustomActionPayload): CompiledRoute | undefined;
  readonly routes: readonly CompiledRoute[];
}

/**
 * @example
 * const router = createRouter(routes);
 * router.byName("erp-contract") ?? router.byMatch(payload);
 */
export function createRouter(routes: readonly CompiledRoute[]): Router {
  const named = new Map(routes.map((route) => [route.name, route]));
  const matchable = routes.filter((route) => route.matches !== undefined);
  return {
    routes,
    byName: (name) => named.get(name),
    byMatch: (payload) => matchable.find((route) => route.matches!(payload)),
  };
}
