import { z } from "zod";
import { deliverySchema, responseSchema } from "../delivery/schema.ts";
import { epilotSchema } from "../epilot/schema.ts";
import { isRecord } from "../kit/records.ts";
import { envBoolean, formatDuration } from "../kit/units.ts";
import { logSchema } from "../log/schema.ts";
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

export const routeSchema = z
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
  })
  .describe("One custom action: where it goes and in what shape.");

export const configSchema = z
  .strictObject({
    $schema: z.string().optional().describe("path or URL of the JSON Schema, for editors; ignored by actiongate"),
    server: serverSchema.prefault({}),
    admin: adminSchema.optional(),
    verification: verificationSchema.prefault({}),
    log: logSchema.prefault({}),
    store: storeSchema.optional(),
    epilot: epilotSchema.prefault({}),
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
      if (route.delivery.mode === "async") {
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
