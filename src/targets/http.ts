import { z } from "zod";
import { duration, envNumber, size } from "../kit/units.ts";
import { createTargetClient, exchange } from "./exchange.ts";
import { parseResponseBody } from "./http-response.ts";
import { compileRequestLine, HEADER_NAME } from "./request-templates.ts";
import { loadTargetTls, targetTlsSchema } from "./tls.ts";
import type { OutboundMessage, Target, TargetContext, TargetDefinition, TargetOutcome } from "./types.ts";

export const httpTargetSchema = z
  .strictObject({
    type: z.literal("http"),
    url: z
      .string()
      .describe(
        "absolute http(s) URL; `{{ <JSONata> }}` placeholders are evaluated against the stripped payload and percent-encoded",
      ),
    method: z
      .enum(["POST", "PUT", "PATCH", "DELETE", "GET"])
      .default("POST")
      .describe("HTTP method; GET sends no body"),
    headers: z
      .record(z.string().regex(HEADER_NAME, "must be a valid HTTP header name"), z.string())
      .default({})
      .describe("headers sent with every call; values may hold `${ENV}` and `{{ <JSONata> }}`"),
    timeout: duration
      .prefault("10s")
      .describe("deadline for the whole exchange (connect, send, answer); on expiry epilot gets 504"),
    idempotency_header: z
      .string()
      .regex(HEADER_NAME, "must be a valid HTTP header name")
      .default("Idempotency-Key")
      .describe("header that carries the webhook-id, so the legacy system can drop duplicates"),
    connections: envNumber(z.number().int().min(1).max(1024))
      .prefault(32)
      .describe("keep-alive connections kept open per target host"),
    max_response_size: size.prefault("10mb").describe("larger answers are cut off and treated as a failure"),
    tls: targetTlsSchema.optional(),
  })
  .describe("An HTTP(S) endpoint, called with JSON over pooled keep-alive connections.");

export type HttpTargetConfig = z.output<typeof httpTargetSchema>;

/**
 * Delivers to an HTTP endpoint through the target's HTTP client (keep-alive connections, at most
 * `connections` calls in flight), with one deadline for the whole exchange and the answer's size capped.
 *
 * @example
 * const target = createHttpTarget({ type: "http", url: "http://erp/api", ... }, context);
 * const outcome = await target.deliver(message);
 */
export function createHttpTarget(config: HttpTargetConfig, context: TargetContext): Target {
  const requestLine = compileRequestLine(config.url, config.headers);
  const tls = config.tls && loadTargetTls(config.tls, context.configDir);
  const client = createTargetClient({
    connections: config.connections,
    timeoutMs: config.timeout,
    ...(tls ? { tls } : {}),
  });
  const sendsBody = config.method !== "GET";

  return {
    type: "http",
    async deliver(message: OutboundMessage): Promise<TargetOutcome> {
      const rendered = await requestLine.render(message.payload);
      if (!rendered.ok) return { kind: "invalid_message", reason: rendered.reason };
      const requestHeaders: Record<string, string> = {
        "user-agent": context.userAgent,
        [config.idempotency_header.toLowerCase()]: message.webhookId,
        ...rendered.value.headers,
        ...message.forwardedHeaders,
      };
      let body: string | undefined;
      if (sendsBody && message.body !== undefined) {
        body = JSON.stringify(message.body);
        requestHeaders["content-type"] ??= "application/json";
      }

      const result = await exchange(client, {
        url: rendered.value.url,
        method: config.method,
        headers: requestHeaders,
        ...(body !== undefined ? { body } : {}),
        timeoutMs: config.timeout,
        maxResponseSize: config.max_response_size,
      });
      if (result.kind !== "answered") return result;
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
    close: () => client.close(),
  };
}

export const httpTarget: TargetDefinition<typeof httpTargetSchema> = {
  type: "http",
  schema: httpTargetSchema,
  create: createHttpTarget,
};
