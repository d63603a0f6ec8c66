import { z } from "zod";
import { DEFAULT_MAX_JSON_DEPTH } from "../kit/json-depth.ts";
import { duration, envNumber, size } from "../kit/units.ts";
import { InvalidCidrError, parseCidr } from "./allowed-ips.ts";

export const serverSchema = z
  .strictObject({
    host: z.string().min(1).default("0.0.0.0").describe("address the public listener binds to"),
    port: envNumber(z.number().int().min(0).max(65535))
      .prefault(8080)
      .describe("port of the public listener (0 picks a free one)"),
    max_body_size: size.prefault("1mb").describe("larger calls are refused with 413 before the rest is read"),
    body_memory_limit: size
      .prefault("256mb")
      .describe(
        "request-body bytes all calls in progress may hold at once (bodies are read before their signatures are checked); past it a new call gets 503 at once and its connection is closed",
      ),
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

export const adminSchema = z
  .strictObject({
    host: z
      .string()
      .min(1)
      .default("127.0.0.1")
      .describe("address of the admin listener; keep it off the public network"),
    port: envNumber(z.number().int().min(0).max(65535))
      .prefault(9090)
      .describe("port of /healthz, /readyz and /metrics (with workers, worker N listens on port + N)"),
    token: z
      .string()
      .regex(
        /^[\x21-\x7e]{16,}$/,
        "must be at least 16 characters without spaces (make one with: openssl rand -hex 32)",
      )
      .optional()
      .describe(
        "Bearer token of the admin API (/api/*) and the console (GET /); use ${ADMIN_TOKEN}. Without it, /api/* answers 403 and only health, readiness and metrics are served",
      ),
    recent_calls: envNumber(z.number().int().min(0).max(100_000))
      .prefault(1000)
      .describe("calls each process keeps in memory for GET /api/calls and the console (about 200 bytes each)"),
  })
  .describe(
    "The admin listener: health, readiness, Prometheus metrics, and with admin.token the admin API and the console. Off when absent.",
  );

/** A bad CIDR in `server.allowed_ips` is a config problem at its own line, not a surprise 403 later. */
function checkCidr(value: string, ctx: z.RefinementCtx<string>): void {
  try {
    parseCidr(value);
  } catch (error) {
    if (!(error instanceof InvalidCidrError)) throw error;
    ctx.addIssue({ code: "custom", message: error.message });
  }
}

export type ServerConfig = z.output<typeof serverSchema>;
export type AdminConfig = z.output<typeof adminSchema>;

/**
 * Whether an admin listener on `host` can be reached from other machines (anything but loopback):
 * without `admin.token` that is worth a warning, since /metrics and /readyz are open there.
 *
 * @example
 * adminReachableFromNetwork("0.0.0.0"); // true
 * adminReachableFromNetwork("127.0.0.1"); // false
 */
export function adminReachableFromNetwork(host: string): boolean {
  const name = host
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, "");
  return !(name === "localhost" || name === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name));
}
