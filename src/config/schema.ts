import { z } from "zod";
import { DEFAULT_MAX_JSON_DEPTH } from "../kit/json-depth.ts";
import { InvalidCidrError, parseCidr } from "../server/allowed-ips.ts";
import { targetSchema } from "../targets/registry.ts";
import { duration, durationAtLeast, envBoolean, envNumber, formatDuration, size } from "./units.ts";

/** epilot's public key document (`{"public_key": "<PEM>"}`), the default source of the Ed25519 key. */
export const EPILOT_PUBLIC_KEY_URL = "https://cdn.app.sls.epilot.io/v1/.well-known/public-key";

const expression = (what: string) => z.string().min(1, "must not be empty").describe(`JSONata expression: ${what}`);
// YAML reads `org_id: 739224` as a number; epilot's ids are compared as strings.
const matchScalar = z.union([z.string().min(1, "must not be empty"), z.number().int().transform(String)]);
const matchValue = z.union([matchScalar, z.array(matchScalar).min(1, "must not be empty")], {
  error: "must be a string or a list of strings",
});
const absoluteUrl = z.string().refine((value) => {
  try {
    return ["http:", "https:"].includes(new URL(value).protocol);
  } catch {
    return false;
  }
}, "must be an absolute http(s) URL");

const serverSchema = z
  .strictObject({
    host: z.string().min(1).default("0.0.0.0").describe("address the public listener binds to"),
    port: envNumber(z.number().int().min(0).max(65535))
      .prefault(8080)
      .describe("port of the public listener (0 picks a free one)"),
    max_body_size: size.prefault("1mb").describe("larger calls are refused with 413 before the rest is read"),
    shutdown_timeout: duration.prefault("10s").describe("on SIGTERM/SIGINT, how long calls in flight may still take"),
    body_timeout: duration
      .prefault("10s")
      .describe("deadline for receiving a request body; a slower sender gets 408 and the connection is closed"),
    max_header_size: size
      .prefault("16kb")
      .describe("larger request headers (names and values together) are refused with 431"),
    max_header_count: envNumber(z.number().int().min(8).max(1000))
      .prefault(100)
      .describe("calls with more request headers are refused with 431"),
    max_json_depth: envNumber(z.number().int().min(8).max(1000))
      .prefault(DEFAULT_MAX_JSON_DEPTH)
      .describe("calls whose JSON body nests arrays and objects deeper are refused with 400 before the body is parsed"),
    allowed_ips: z
      .array(z.string().min(1).superRefine(checkCidr))
      .default([])
      .describe("CIDRs (IPv4 or IPv6) allowed to call; others get 403 before anything is read. Empty: every address"),
    tls: z
      .strictObject({
        cert_file: z.string().min(1).describe("PEM certificate chain; relative to the config file's folder"),
        key_file: z.string().min(1).describe("PEM private key"),
      })
      .optional()
      .describe("serve HTTPS on the public listener (reloaded only on restart)"),
    workers: envNumber(z.number().int().min(1).max(64))
      .prefault(1)
      .describe(
        "processes serving the public port together (SO_REUSEPORT); more than 1 needs a store so that the replay guard is shared",
      ),
  })
  .describe("The public listener that epilot calls.");

const adminSchema = z
  .strictObject({
    host: z
      .string()
      .min(1)
      .default("127.0.0.1")
      .describe("address of the admin listener; keep it off the public network"),
    port: envNumber(z.number().int().min(0).max(65535))
      .prefault(9090)
      .describe("port of /healthz, /readyz and /metrics (with workers, worker N listens on port + N)"),
  })
  .describe("The admin listener: health, readiness and Prometheus metrics. Off when absent.");

const verificationSchema = z
  .strictObject({
    public_key_url: absoluteUrl
      .default(EPILOT_PUBLIC_KEY_URL)
      .describe(
        "where epilot's Ed25519 public key is fetched (JSON `{public_key: PEM}`, PEM or whpk_); used unless public_key or public_key_file is set",
      ),
    public_key_file: z
      .string()
      .min(1)
      .optional()
      .describe(
        "file holding the public key: PEM (SPKI), whpk_ or epilot's JSON document; relative to the config file's folder; not together with public_key",
      ),
    public_key: z
      .string()
      .min(1)
      .optional()
      .describe("the public key inline: PEM (SPKI) or whpk_; not together with public_key_file"),
    secrets: z
      .array(z.string().min(1))
      .default([])
      .describe("Standard Webhooks v1 (HMAC-SHA256) secrets, `whsec_<base64>`; any one may match"),
    tolerance: durationAtLeast(1_000)
      .prefault("5m")
      .describe("how far webhook-timestamp may be from now, in either direction"),
    key_refresh_interval: durationAtLeast(10_000)
      .prefault("1h")
      .describe("how often a fetched key is fetched again (a failing signature also triggers a rate-limited fetch)"),
  })
  .refine((v) => !(v.public_key && v.public_key_file), {
    message: "set public_key or public_key_file, not both",
    path: ["public_key_file"],
    // Reported alongside other problems in the same section, not only once they are fixed.
    when: ({ value }) => isRecord(value),
  })
  .describe("How every call is verified (Standard Webhooks). Verification cannot be turned off.");

const matchSchema = z
  .strictObject({
    component_id: matchValue.optional().describe("data.action_config.component_id"),
    app_id: matchValue.optional().describe("data.action_config.app_id"),
    action_name: matchValue.optional().describe("data.action_config.name"),
    entity_schema: matchValue.optional().describe("data.entity._schema"),
    org_id: matchValue.optional().describe("data.org_id"),
  })
  .refine((m) => Object.values(m).some((value) => value !== undefined), "must list at least one key")
  .describe("For `POST /actions`: the route applies when every listed key holds; a list means any of its values.");

const responseSchema = z
  .strictObject({
    transform: expression(
      "over {status, headers, body} of a successful answer; its result is the 200 answer to epilot",
    ).optional(),
    write_back: expression(
      "over {status, headers, body, payload}; its result is PATCHed onto data.entity through epilot's entity API with the call's x-epilot-token",
    ).optional(),
    fail_when: expression(
      "over {status, headers, body}; when true, a 2xx answer is treated as a failure (502)",
    ).optional(),
    error_reason: expression(
      "over {status, headers, body}; the error_reason shown in epilot when the target failed",
    ).optional(),
  })
  .describe("How the legacy system's answer is read.");

const circuitBreakerSchema = z
  .strictObject({
    failure_threshold: envNumber(z.number().int().min(1))
      .prefault(5)
      .describe("consecutive failures of the target that open the breaker"),
    cooldown: duration.prefault("30s").describe("how long the breaker stays open before one probe call decides"),
  })
  .describe(
    "Per target: stops calling a target that keeps failing. Open: sync calls get 503 at once, async delivery pauses without spending attempts.",
  );

const deliverySchema = z
  .strictObject({
    mode: z
      .enum(["sync", "async"])
      .default("sync")
      .describe(
        "sync: epilot waits for the target's answer; async: 202 once stored, delivered in the background with retries (needs `store`)",
      ),
    max_attempts: envNumber(z.number().int().min(1).max(1000))
      .prefault(10)
      .describe("attempts per stage (delivery, resume, write-back) before the event goes to the dead letters"),
    backoff: z
      .strictObject({
        initial: duration.prefault("1s").describe("delay before the first retry"),
        max: duration.prefault("5m").describe("upper bound of the delay between attempts"),
      })
      .prefault({})
      .describe("exponential backoff with full jitter between attempts"),
    concurrency: envNumber(z.number().int().min(1).max(256))
      .prefault(4)
      .describe("async deliveries in flight at once for this route"),
    circuit_breaker: circuitBreakerSchema.prefault({}),
  })
  .describe("How the call is delivered.");

const stripPath = z
  .string()
  .regex(/^[^.]+(\.[^.]+)*$/, "must be a dot path such as data.app_options.api_key (`*` for any key or index)");

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

const storeSchema = z
  .strictObject({
    path: z
      .string()
      .min(1)
      .optional()
      .describe(
        "embedded SQLite file (created with its folder if missing): outbox, dead letters, replay guard; one box",
      ),
    url: z
      .string()
      .regex(/^postgres(ql)?:\/\//, "must be a postgres:// URL")
      .optional()
      .describe("PostgreSQL shared by several replicas (postgres://user:password@host:5432/db); instead of path"),
    lease: durationAtLeast(1_000)
      .prefault("30s")
      .describe(
        "how long a worker or replica holds a claimed event; when it dies, another takes the event over after this. Must be longer than the target timeout of every async route and than epilot.timeout",
      ),
    max_connections: envNumber(z.number().int().min(1).max(100))
      .prefault(10)
      .describe("PostgreSQL: connections in the pool"),
    encryption_key: z
      .string()
      .optional()
      .describe(
        "base64 of 32 bytes that encrypts x-epilot-token at rest; required with store.url (the same key on every replica); with store.path and no key, a key file `<path>.key` (mode 0600) is created beside the database",
      ),
    synchronous: z
      .enum(["full", "normal"])
      .default("full")
      .describe("SQLite durability: full survives power loss, normal survives a killed process and is faster"),
  })
  .refine((store) => Boolean(store.path) !== Boolean(store.url), {
    message: "set store.path (SQLite) or store.url (PostgreSQL), exactly one",
    path: ["path"],
  })
  .describe(
    "Durable storage for async delivery and the replay guard. Without it: sync routes only, replay guard in memory.",
  );

const epilotSchema = z
  .strictObject({
    callback_hosts: z
      .array(z.string().min(1))
      .default(["automation.sls.epilot.io"])
      .describe(
        "hosts (host or host:port) that resume calls may go to; callback_post_url elsewhere is refused and logged. https is required except for loopback hosts",
      ),
    entity_api_url: absoluteUrl
      .default("https://entity.sls.epilot.io")
      .describe("epilot's entity API, where write-back PATCHes go"),
    timeout: duration.prefault("10s").describe("deadline for one resume or write-back call"),
  })
  .describe("Calls back to epilot: resuming paused workflows and writing results to the entity.");

const logSchema = z
  .strictObject({
    level: z.enum(["debug", "info", "warn", "error"]).default("info").describe("lowest level written"),
  })
  .describe("Logs: JSON lines on stdout, secrets redacted.");

export const configSchema = z
  .strictObject({
    $schema: z.string().optional().describe("path or URL of the JSON Schema, for editors; ignored by actiongate"),
    server: serverSchema.prefault({}),
    admin: adminSchema.optional(),
    verification: verificationSchema.prefault({}),
    log: logSchema.prefault({}),
    store: storeSchema.optional(),
    epilot: epilotSchema.prefault({}),
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
    }
  });
  if (tooLong(config.epilot.timeout))
    ctx.addIssue({
      code: "custom",
      message: message("epilot.timeout (resume and write-back)"),
      path: ["epilot", "timeout"],
    });
}

/** A bad CIDR in `server.allowed_ips` is a config problem at its own line, not a surprise 403 later. */
function checkCidr(value: string, ctx: z.RefinementCtx<string>): void {
  try {
    parseCidr(value);
  } catch (error) {
    if (!(error instanceof InvalidCidrError)) throw error;
    ctx.addIssue({ code: "custom", message: error.message });
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export type GatewayConfig = z.output<typeof configSchema>;
export type RouteConfig = z.output<typeof routeSchema>;
export type DeliveryConfig = z.output<typeof deliverySchema>;
export type AdminConfig = z.output<typeof adminSchema>;
export type StoreConfig = z.output<typeof storeSchema>;
export type EpilotConfig = z.output<typeof epilotSchema>;
