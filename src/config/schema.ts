import { z } from "zod";
import { deliverySchema, responseSchema } from "../delivery/schema.ts";
import { epilotSchema } from "../epilot/schema.ts";
import { isRecord } from "../kit/records.ts";
import { envBoolean, formatDuration } from "../kit/units.ts";
import { logSchema } from "../log/schema.ts";
import { pollSchema } from "../poll/schema.ts";
import { matchSchema } from "../routing/schema.ts";
import { adminSchema, serverSchema } from "../server/schema.ts";
import { storeSchema } from "../store/schema.ts";
import { targetSchema } from "../targets/registry.ts";
import { telemetrySchema } from "../telemetry/schema.ts";
import { expression, stripPath } from "../transform/schema.ts";
import { verificationSchema } from "../verify/schema.ts";

/**
 * The whole config file's schema, assembled from the schema each part of the gateway declares next
 * to its code (server/, verify/, store/, epilot/, log/, telemetry/, routing/, delivery/, targets/). The config
 * reference (docs/configuration.md) and the JSON Schema for editors are generated from it.
 */

const routeFields = z
  .strictObject({
    name: z
      .string()
      .regex(
        /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/,
        "must be letters, digits, `.`, `_` or `-` (it is part of the URL /actions/<name>)",
      )
      .describe("the route's name: epilot calls POST /actions/<name>"),
    match: matchSchema.optional(),
    strip: z.array(stripPath).default([]).describe("dot paths removed from the payload before anything else sees it"),
    forward_headers: z
      .array(z.string().min(1))
      .default([])
      .describe("incoming headers passed to the target by name (e.g. x-epilot-token); none by default"),
    forward_caller: envBoolean(z.boolean())
      .prefault(false)
      .describe("keep data.trigger_event.caller (the user's token and identity); removed by default"),
    skip_when: expression(
      "over the stripped payload; when true nothing is sent and epilot gets 200 {skip_reason}",
    ).optional(),
    skip_reason: expression("over the stripped payload; the skip_reason text").optional(),
    transform: expression(
      "over the stripped payload; its result is the body sent (the stripped payload when unset)",
    ).optional(),
    target: targetSchema.describe(
      "where the call goes: `type` chooses the kind of target, and each kind has its own keys",
    ),
    response: responseSchema.optional(),
    delivery: deliverySchema.prefault({}),
    use_case_slug: z
      .string()
      .min(1)
      .optional()
      .describe(
        "the use case this route's monitoring spans are reported under (instead of epilot.monitoring.use_case_slug)",
      ),
  })
  .describe("One custom action, or one kind of polled message: where it goes and in what shape.");

/** Where a route of polled messages differs from one of custom actions: it has no caller, no headers, no token. */
const routeSchema = routeFields
  .superRefine((route, ctx) => {
    const polled = route.match?.source !== undefined;
    const refuse = (path: PropertyKey[], message: string) => ctx.addIssue({ code: "custom", path, message });
    if (polled) {
      if (route.delivery.mode === "sync")
        refuse(
          ["delivery", "mode"],
          "polled messages always go through the outbox (async); sync has no caller to answer",
        );
      if (route.forward_headers.length > 0) refuse(["forward_headers"], "polled messages carry no headers to forward");
      if (route.forward_caller) refuse(["forward_caller"], "polled messages carry no caller");
      if (route.response?.write_back !== undefined)
        refuse(
          ["response", "write_back"],
          "write-back needs the x-epilot-token of a custom action call; polled messages carry none",
        );
    } else if (route.delivery.order_key !== undefined && route.delivery.mode !== "async") {
      refuse(
        ["delivery", "order_key"],
        "orders outbox deliveries: needs delivery.mode: async (a sync route delivers at once)",
      );
    }
  })
  .transform((route) => ({
    ...route,
    delivery: {
      ...route.delivery,
      mode: route.delivery.mode ?? (route.match?.source !== undefined ? ("async" as const) : ("sync" as const)),
    },
  }));

export { routeSchema };

export const configSchema = z
  .strictObject({
    $schema: z.string().optional().describe("path or URL of the JSON Schema, for editors; ignored by actiongate"),
    server: serverSchema.prefault({}),
    admin: adminSchema.optional(),
    verification: verificationSchema.prefault({}),
    log: logSchema.prefault({}),
    store: storeSchema.optional(),
    epilot: epilotSchema.prefault({}),
    poll: pollSchema.optional(),
    telemetry: telemetrySchema.optional(),
    routes: z
      .array(routeSchema)
      .min(1, "must list at least one route")
      .superRefine(
        (routes, ctx) => {
          const seen = new Set<string>();
          routes.forEach((route, index) => {
            // Runs even when other routes are invalid, so `route` may be any YAML value here.
            const name: unknown = isRecord(route) ? route.name : undefined;
            if (typeof name !== "string") return;
            if (seen.has(name))
              ctx.addIssue({ code: "custom", message: `duplicate route name "${name}"`, path: [index, "name"] });
            seen.add(name);
          });
        },
        { when: ({ value }) => Array.isArray(value) },
      )
      .describe("The routes, tried in order for `POST /actions`."),
  })
  .superRefine((config, ctx) => {
    checkPollSources(config, ctx);
    if (!config.store && config.server.workers > 1) {
      ctx.addIssue({
        code: "custom",
        message: "more than one worker needs a store, so that the replay guard is shared",
        path: ["server", "workers"],
      });
    }
    if (config.store) {
      checkLeaseOutlastsAttempts(config, ctx);
      return;
    }
    config.routes.forEach((route, index) => {
      // Routes of polled messages are async too; the poll entry's own problem says what is missing.
      if (route.delivery.mode === "async" && route.match?.source === undefined) {
        ctx.addIssue({
          code: "custom",
          message: "async delivery needs a store (set store.path or store.url)",
          path: ["routes", index, "delivery", "mode"],
        });
      }
    });
  })
  .describe("actiongate configuration");

/**
 * Polled messages are stored before they are acknowledged, so a poll source needs a store; each one
 * needs a route (or every message would be acknowledged unrouted, which is a loss by configuration),
 * and each `match.source` must name one.
 */
function checkPollSources(
  config: {
    poll?: readonly { name: string }[] | undefined;
    store?: unknown;
    server: { workers: number };
    routes: readonly RouteConfig[];
  },
  ctx: z.RefinementCtx<unknown>,
): void {
  const sources = config.poll ?? [];
  if (sources.length > 0 && !config.store) {
    ctx.addIssue({
      code: "custom",
      message: "polled messages are stored before they are acknowledged: set store.path or store.url",
      path: ["poll"],
    });
  }
  const names = new Set(sources.map((source) => source.name));
  const routed = new Set<string>();
  config.routes.forEach((route, index) => {
    const source = route.match?.source;
    if (source === undefined) return;
    routed.add(source);
    if (!names.has(source)) {
      ctx.addIssue({
        code: "custom",
        message:
          names.size > 0
            ? `names no poll entry (there are: ${[...names].join(", ")})`
            : "names no poll entry (add it under poll:)",
        path: ["routes", index, "match", "source"],
      });
    }
  });
  sources.forEach((source, index) => {
    if (!routed.has(source.name)) {
      ctx.addIssue({
        code: "custom",
        message: `no route takes its messages (match.source: ${source.name}); they would all be acknowledged unrouted`,
        path: ["poll", index, "name"],
      });
    }
  });
  if (config.server.workers > 1 && config.routes.every((route) => route.match?.source !== undefined)) {
    ctx.addIssue({
      code: "custom",
      message: "workers share the public listener, and a gateway of polled messages only has none",
      path: ["server", "workers"],
    });
  }
}

/**
 * An outbox attempt runs under a lease of `store.lease`; when the lease runs out first, another worker
 * or replica takes the event over while the first attempt may still succeed, and the target gets it twice.
 */
function checkLeaseOutlastsAttempts(
  config: { store?: { lease: number } | undefined; epilot: { timeout: number }; routes: readonly RouteConfig[] },
  ctx: z.RefinementCtx<unknown>,
): void {
  const lease = config.store?.lease;
  if (lease === undefined) return;
  const tooLong = (timeout: number) => timeout >= lease;
  const message = (what: string) =>
    `${what} must be shorter than store.lease (${formatDuration(lease)}): an attempt still running when its lease runs out may be taken over and sent twice`;
  config.routes.forEach((route, index) => {
    if (route.delivery.mode === "async" && tooLong(route.target.timeout)) {
      ctx.addIssue({
        code: "custom",
        message: message("the target's timeout of an async route"),
        path: ["routes", index, "target", "timeout"],
      });
    } else if (route.delivery.mode === "async" && route.target.rate_limit) {
      // An attempt may wait max_wait for its turn before its timeout starts.
      if (tooLong(route.target.timeout + route.target.rate_limit.max_wait))
        ctx.addIssue({
          code: "custom",
          message: message("the target's timeout plus rate_limit.max_wait of an async route"),
          path: ["routes", index, "target", "rate_limit", "max_wait"],
        });
    }
  });
  if (tooLong(config.epilot.timeout))
    ctx.addIssue({
      code: "custom",
      message: message("epilot.timeout (resume and write-back)"),
      path: ["epilot", "timeout"],
    });
}

export type GatewayConfig = z.output<typeof configSchema>;
export type RouteConfig = z.output<typeof routeSchema>;
