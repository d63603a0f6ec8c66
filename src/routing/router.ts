import type { ParsedCall } from "../payload/parse.ts";

/** What the router needs of a route: its name, and when it takes a call that names no route. */
export interface Routable {
  readonly name: string;
  /** Undefined when the route has no `match` (reachable only by name). */
  readonly matches?: ((call: ParsedCall) => boolean) | undefined;
}

/** Finds the route for a call: by the name in the path, or by the first `match` that holds. */
export interface Router<R extends Routable> {
  byName(name: string): R | undefined;
  byMatch(call: ParsedCall): R | undefined;
  readonly routes: readonly R[];
}

/**
 * @example
 * const router = createRouter(routes);
 * router.byName("erp-contract") ?? router.byMatch(parsed);
 */
export function createRouter<R extends Routable>(routes: readonly R[]): Router<R> {
  const named = new Map(routes.map((route) => [route.name, route]));
  const matchable = routes.filter((route) => route.matches !== undefined);
  return {
    routes,
    byName: (name) => named.get(name),
    byMatch: (call) => matchable.find((route) => route.matches!(call)),
  };
}
