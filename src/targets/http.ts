import { z } from "zod";
import { parseResponseBody } from "./http-response.ts";
import { createTransportTarget, transportKeys } from "./transport.ts";
import type { Target, TargetContext, TargetDefinition } from "./types.ts";

export const httpTargetSchema = z
  .strictObject({
    type: z.literal("http"),
    url: z
      .string()
      .describe(
        "absolute http(s) URL; `{{ <JSONata> }}` placeholders in its path, query or fragment are evaluated against the stripped payload and percent-encoded",
      ),
    method: z
      .enum(["POST", "PUT", "PATCH", "DELETE", "GET"])
      .default("POST")
      .describe("HTTP method; GET sends no body"),
    ...transportKeys,
  })
  .describe("An HTTP(S) endpoint, called with JSON over pooled keep-alive connections.");

export type HttpTargetConfig = z.output<typeof httpTargetSchema>;

/**
 * Delivers to an HTTP endpoint: the transform's result as JSON (`content-type: application/json`
 * unless the configured headers say otherwise), over the target's pooled connections with one
 * deadline and the answer's size capped (targets/transport.ts). A 2xx answer is delivered; any
 * other is rejected with its status.
 *
 * @example
 * const target = createHttpTarget({ type: "http", url: "http://erp/api", ... }, context);
 * const outcome = await target.deliver(message);
 */
export function createHttpTarget(config: HttpTargetConfig, context: TargetContext): Target {
  const sendsBody = config.method !== "GET";
  const configuresContentType = Object.keys(config.headers).some((name) => name.toLowerCase() === "content-type");
  return createTransportTarget({
    type: "http",
    config,
    context,
    method: config.method,
    url: config.url,
    ownedHeaders: sendsBody && !configuresContentType ? { "content-type": "application/json" } : {},
    async body(message) {
      return { ok: true, body: sendsBody && message.body !== undefined ? JSON.stringify(message.body) : undefined };
    },
    interpret(result) {
      const text = result.body.toString("utf8");
      const answer = {
        status: result.status,
        headers: result.headers,
        body: parseResponseBody(text, result.headers["content-type"]),
      };
      if (result.status >= 200 && result.status < 300) return { kind: "delivered", response: answer };
      return {
        kind: "rejected",
        response: answer,
        reason: `target answered HTTP ${result.status}`,
        info: { target_status: result.status },
      };
    },
  });
}

export const httpTarget: TargetDefinition<typeof httpTargetSchema> = {
  type: "http",
  schema: httpTargetSchema,
  create: createHttpTarget,
};
