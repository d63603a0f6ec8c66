import { z } from "zod";
import { targetSchema } from "../targets/registry.ts";
import { duration, size } from "./units.ts";

/** epilot's public key document (`{"public_key": "<PEM>"}`), the default source of the Ed25519 key. */
export const EPILOT_PUBLIC_KEY_URL = "https://cdn.app.sls.epilot.io/v1/.well-known/public-key";

const expression = (what: string) => z.string().min(1, "must not be empty").describe(`JSONata expression: ${what}`);
const matchValue = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);
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
    port: z.number().int().min(0).max(65535).default(8080).describe("port of the public listener (0 picks a free one)"),
    max_body_size: size.prefault("1mb").describe("larger calls are refused with 413 before the rest is read"),
    shutdown_timeout: duration.prefault("10s").describe("on SIGTERM/SIGINT, how long calls in flight may still take"),
  })
  .describe("The public listener that epilot calls.");

const verificationSchema = z
  .strictObject({
    public_key_url: absoluteUrl
      .default(EPILOT_PUBLIC_KEY_URL)
      .describe("where epilot's Ed25519 public key is fetched (JSON `{public_key: PEM}`, PEM or whpk_); used unless public_key or public_key_file is set"),
    public_key_file: z.string().min(1).optional().describe("file holding the public key: PEM (SPKI), whpk_ or epilot's JSON document"),
    public_key: z.string().min(1).optional().describe("the public key inline: PEM (SPKI) or whpk_"),
    secrets: z.array(z.string().min(1)).default([]).describe("Standard Webhooks v1 (HMAC-SHA256) secrets, `whsec_<base64>`; any one may match"),
    tolerance: duration.prefault("5m").describe("how far webhook-timestamp may be from now, in either direction"),
    key_refresh_interval: duration.prefault("1h").describe("how often a fetched key is fetched again (a failing signature also triggers a rate-limited fetch)"),
  })
  .refine((v) => !(v.public_key && v.public_key_file), { message: "set public_key or public_key_file, not both", path: ["public_key_file"] })
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
    transform: expression("over {status, headers, body} of a successful answer; its result is the 200 answer to epilot").optional(),
    fail_when: expression("over {status, headers, body}; when true, a 2xx answer is treated as a failure (502)").optional(),
    error_reason: expression("over {status, headers, body}; the error_reason shown in epilot when the target failed").optional(),
  })
  .describe("How the legacy system's answer is read.");

const stripPath = z
  .string()
  .regex(/^[^.]+(\.[^.]+)*$/, "must be a dot path such as data.app_options.api_key (`*` for any key or index)");

export const routeSchema = z
  .strictObject({
    name: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, "must be letters, digits, `.`, `_` or `-` (it is part of the URL /actions/<name>)")
      .describe("the route's name: epilot calls POST /actions/<name>"),
    match: matchSchema.optional(),
    strip: z.array(stripPath).default([]).describe("dot paths removed from the payload before anything else sees it"),
    forward_headers: z
      .array(z.string().min(1))
      .default([])
      .describe("incoming headers passed to the target by name (e.g. x-epilot-token); none by default"),
    forward_caller: z
      .boolean()
      .default(false)
      .describe("keep data.trigger_event.caller (the user's token and identity); removed by default"),
    skip_when: expression("over the stripped payload; when true nothing is sent and epilot gets 200 {skip_reason}").optional(),
    skip_reason: expression("over the stripped payload; the skip_reason text").optional(),
    transform: expression("over the stripped payload; its result is the body sent (the stripped payload when unset)").optional(),
    target: targetSchema,
    response: responseSchema.optional(),
  })
  .describe("One custom action: where it goes and in what shape.");

const logSchema = z
  .strictObject({
    level: z.enum(["debug", "info", "warn", "error"]).default("info").describe("lowest level written"),
  })
  .describe("Logs: JSON lines on stdout, secrets redacted.");

export const configSchema = z
  .strictObject({
    $schema: z.string().optional().describe("path or URL of the JSON Schema, for editors; ignored by actiongate"),
    server: serverSchema.prefault({}),
    verification: verificationSchema.prefault({}),
    log: logSchema.prefault({}),
    routes: z
      .array(routeSchema)
      .min(1, "must list at least one route")
      .superRefine((routes, ctx) => {
        const seen = new Set<string>();
        routes.forEach((route, index) => {
          if (seen.has(route.name)) ctx.addIssue({ code: "custom", message: `duplicate route name "${route.name}"`, path: [index, "name"] });
          seen.add(route.name);
        });
      })
      .describe("The routes, tried in order for `POST /actions`."),
  })
  .describe("actiongate configuration");

export type GatewayConfig = z.output<typeof configSchema>;
export type RouteConfig = z.output<typeof routeSchema>;
