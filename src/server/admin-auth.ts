import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import { EPILOT_ERROR_CODE } from "../delivery/answer.ts";

/** The one answer to a missing or wrong token, whatever the path or method: nothing to tell them apart by. */
export const UNAUTHORIZED_BODY = {
  error_output: {
    error_code: EPILOT_ERROR_CODE,
    error_reason: "The admin API needs Authorization: Bearer <admin.token>",
    error_info: { outcome: "unauthorized" },
  },
} as const;

/** The answer while no `admin.token` is configured. */
export const ADMIN_OFF_BODY = {
  error_output: {
    error_code: EPILOT_ERROR_CODE,
    error_reason: "The admin API is off: set admin.token (for example admin.token: ${ADMIN_TOKEN}) and restart",
    error_info: { outcome: "forbidden" },
  },
} as const;

/**
 * Guards `/api/*`: without `admin.token` configured every request gets 403 saying so; with it, a
 * request without `Authorization: Bearer <token>` or with another token gets one and the same 401,
 * before anything is looked up, so neither the path nor the time taken tells what exists. The token
 * is compared as HMAC-SHA256 digests under a key made at start, so the comparison takes as long
 * whatever the length or the first wrong character of what was sent.
 *
 * @example
 * app.use("/api/*", adminAuth(config.admin.token));
 */
export function adminAuth(token: string | undefined): MiddlewareHandler {
  const key = randomBytes(32);
  const digest = (text: string) => createHmac("sha256", key).update(text, "utf8").digest();
  const expected = token === undefined ? undefined : digest(token);
  return async (c, next) => {
    if (!expected) return c.json(ADMIN_OFF_BODY, 403, { "cache-control": "no-store" });
    const header = c.req.header("authorization") ?? "";
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
    // A digest is computed for a missing header too, so that every refusal costs the same.
    const given = digest(match?.[1] ?? "");
    if (!match || !timingSafeEqual(given, expected)) {
      return c.json(UNAUTHORIZED_BODY, 401, {
        "www-authenticate": 'Bearer realm="actiongate admin"',
        "cache-control": "no-store",
      });
    }
    return next();
  };
}
