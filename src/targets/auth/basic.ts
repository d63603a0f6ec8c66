import { z } from "zod";
import type { AuthDefinition, Authenticator } from "./types.ts";

export const basicAuthSchema = z
  .strictObject({
    type: z.literal("basic"),
    username: z
      .string()
      .min(1)
      .regex(/^[^:]*$/, "must not hold a colon")
      .describe("user name, usually `${ENV}`"),
    password: z.string().describe("password, usually `${ENV}`"),
  })
  .describe("HTTP basic authentication: `Authorization: Basic base64(username:password)` on every call.")
  .meta({ examples: [{ type: "basic", username: "${ERP_USER}", password: "${ERP_PASSWORD}" }] });

export type BasicAuthConfig = z.output<typeof basicAuthSchema>;

/**
 * `Authorization: Basic ...` on every call (RFC 7617, UTF-8). A 401 is the answer as it is: the
 * credentials are fixed, so a retry would fail the same way.
 *
 * @example
 * createBasicAuth({ type: "basic", username: "gw", password: "s3cret" }).preview();
 * // { authorization: "Basic Z3c6czNjcmV0" }
 */
export function createBasicAuth(config: BasicAuthConfig): Authenticator {
  const headers = {
    authorization: `Basic ${Buffer.from(`${config.username}:${config.password}`, "utf8").toString("base64")}`,
  };
  return {
    headerNames: ["authorization"],
    preview: () => headers,
    headers: async () => ({ ok: true, headers }),
    refused: () => false,
    describe: () => ({ type: "basic", username: config.username, password: "***" }),
    close: async () => {},
  };
}

export const basicAuth: AuthDefinition<typeof basicAuthSchema> = {
  type: "basic",
  schema: basicAuthSchema,
  create: createBasicAuth,
};
