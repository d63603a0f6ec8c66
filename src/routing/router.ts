import type { ParsedMessage } from "../payload/message.ts";
import type { ParsedCall, ParsedInput } from "../payload/parse.ts";

/**
 * What the router needs of a route: its name, and which input it takes. A route takes custom action
 * calls (`matches`, or by name) or polled messages (`matchesMessage`), never both: a route of polled
 * messages is not reachable by a call, not even by its name.
 */
export interface Routable {
  readonly name: string;
  /** Custom action calls: undefined when the route has no `match` (reachable only by name). */
  readonly matches?: ((call: ParsedCall) => boolean) | undefined;
  /** Set on routes of polled messages (`match.source`); such a route takes no calls. */
  readonly matchesMessage?: ((message: ParsedMessage) => boolean) | undefined;
}

/** Which kind of input a route takes. */
export type RouteInput = ParsedInput["kind"];

/** Finds the route for an input: by name, or by the first `match` that holds. */
export interface Router<R extends Routable> {
  /** The route of that name that takes `input` (calls by default: `POST /actions/<name>`). */
  byName(name: string, input?: RouteInput): R | undefined;
  /** The first route of the input's kind whose `match` holds. */
  byMatch(input: ParsedInput): R | undefined;
  readonly routes: readonly R[];
}

/** Which kind of input `route` takes. */
export function inputOf(route: Routable): RouteInput {
  return route.matchesMessage ? "message" : "call";
}

/**
 * @example
 * const router = createRouter(routes);
 * router.byName("erp-contract") ?? router.byMatch(parsed);
 */
export function createRouter<R extends Routable>(routes: readonly R[]): Router<R> {
  const named = new Map(routes.map((route) => [route.name, route]));
  const forCalls = routes.filter((route) => route.matches !== undefined && route.matchesMessage === undefined);
  const forMessages = routes.filter((route) => route.matchesMessage !== undefined);
  return {
    routes,
    byName: (name, input = "call") => {
      const route = named.get(name);
      return route && inputOf(route) === input ? route : undefined;
    },
    byMatch: (input) =>
      input.kind === "message"
        ? forMessages.find((route) => route.matchesMessage!(input))
        : forCalls.find((route) => route.matches!(input)),
  };
}
