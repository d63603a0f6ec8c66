import { Agent } from "undici/index.js";
import { z } from "zod";
import { InvalidConfigValue } from "../config/errors.ts";
import { duration, size } from "../config/units.ts";
import { compileTemplate, TemplateValueError, type CompiledTemplate } from "../transform/template.ts";
import { describeNetworkError, flattenHeaders, parseResponseBody, readBodyText, ResponseTooLargeError } from "./http-response.ts";
import type { OutboundMessage, Target, TargetContext, TargetDefinition, TargetOutcome } from "./types.ts";

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export const httpTargetSchema = z
  .strictObject({
    type: z.literal("http"),
    url: z
      .string()
      .describe("absolute http(s) URL; `{{ <JSONata> }}` placeholders are evaluated against the stripped payload and percent-encoded"),
    method: z.enum(["POST", "PUT", "PATCH", "DELETE", "GET"]).default("POST").describe("HTTP method; GET sends no body"),
    headers: z
      .record(z.string().regex(HEADER_NAME, "must be a valid HTTP header name"), z.string())
      .default({})
      .describe("headers sent with every call; values may hold `${ENV}` and `{{ <JSONata> }}`"),
    timeout: duration.prefault("10s").describe("deadline for the whole exchange (connect, send, answer); on expiry epilot gets 504"),
    idempotency_header: z
      .string()
      .regex(HEADER_NAME, "must be a valid HTTP header name")
      .default("Idempotency-Key")
      .describe("header that carries the webhook-id, so the legacy system can drop duplicates"),
    connections: z.number().int().min(1).max(1024).default(32).describe("keep-alive connections kept open per target host"),
    max_response_size: size.prefault("10mb").describe("larger answers are cut off and treated as a failure"),
  })
  .describe("An HTTP(S) endpoint, called with JSON (undici, pooled keep-alive connections).");

export type HttpTargetConfig = z.output<typeof httpTargetSchema>;

/** Placeholder values in a URL are percent-encoded so they cannot change its path or host. */
const URL_ENCODE = encodeURIComponent;

function headerValueGuard(value: string): string {
  // A CR or LF from the payload would let it smuggle headers into the legacy request.
  if (/[\r\n\0]/.test(value)) throw new TemplateValueError("header value holds a line break", value);
  return value;
}

/**
 * Delivers to an HTTP endpoint through an undici Agent (one keep-alive pool per origin), with one
 * deadline for the whole exchange and the answer's size capped.
 *
 * @example
 * const target = createHttpTarget({ type: "http", url: "http://erp/api", ... }, context);
 * const outcome = await target.deliver(message);
 */
export function createHttpTarget(config: HttpTargetConfig, context: TargetContext): Target {
  const url = compileTargetTemplate(config.url, ["url"], URL_ENCODE);
  checkUrlShape(config.url);
  const headers = Object.entries(config.headers).map(([name, value]) => ({
    name,
    value: compileTargetTemplate(value, ["headers", name], headerValueGuard),
  }));
  const agent = new Agent({
    connections: config.connections,
    keepAliveTimeout: 4_000,
    connect: { timeout: Math.min(config.timeout, 10_000) },
  });
  const sendsBody = config.method !== "GET";

  return {
    type: "http",
    async deliver(message: OutboundMessage): Promise<TargetOutcome> {
      let target: URL;
      const requestHeaders: Record<string, string> = {
        "user-agent": context.userAgent,
        [config.idempotency_header.toLowerCase()]: message.webhookId,
      };
      try {
        target = new URL(await url.render(message.payload));
        for (const header of headers) requestHeaders[header.name.toLowerCase()] = await header.value.render(message.payload);
      } catch (error) {
        if (error instanceof TemplateValueError) return { kind: "invalid_message", reason: error.message };
        if (error instanceof TypeError) return { kind: "invalid_message", reason: "the target URL is not valid for this payload" };
        throw error;
      }
      for (const [name, value] of Object.entries(message.forwardedHeaders)) requestHeaders[name] = value;
      let body: string | undefined;
      if (sendsBody && message.body !== undefined) {
        body = JSON.stringify(message.body);
        requestHeaders["content-type"] ??= "application/json";
      }

      const deadline = AbortSignal.timeout(config.timeout);
      try {
        const response = await agent.request({
          origin: target.origin,
          path: target.pathname + target.search,
          method: config.method,
          headers: requestHeaders,
          body,
          signal: deadline,
          headersTimeout: config.timeout,
          bodyTimeout: config.timeout,
        });
        const responseHeaders = flattenHeaders(response.headers);
        const text = await readBodyText(response.body, config.max_response_size);
        const answer = { status: response.statusCode, headers: responseHeaders, body: parseResponseBody(text, responseHeaders["content-type"]) };
        if (response.statusCode >= 200 && response.statusCode < 300) return { kind: "delivered", response: answer };
        return { kind: "rejected", response: answer, reason: `target answered HTTP ${response.statusCode}`, info: { target_status: response.statusCode } };
      } catch (error) {
        if (deadline.aborted) return { kind: "timeout", timeoutMs: config.timeout };
        if (error instanceof ResponseTooLargeError) return { kind: "unreachable", reason: error.message, code: "RESPONSE_TOO_LARGE" };
        const failure = describeNetworkError(error);
        if (failure.isTimeout) return { kind: "timeout", timeoutMs: config.timeout };
        return { kind: "unreachable", reason: failure.reason, ...(failure.code ? { code: failure.code } : {}) };
      }
    },
    close: () => agent.close(),
  };
}

function compileTargetTemplate(source: string, path: PropertyKey[], encode: (value: string) => string): CompiledTemplate {
  try {
    return compileTemplate(source, { encode });
  } catch (error) {
    throw new InvalidConfigValue(`invalid {{ }} expression: ${(error as Error).message}`, path);
  }
}

/** Checks the URL with each placeholder stood in for by a plain value, so mistakes surface at load. */
function checkUrlShape(source: string): void {
  let parsed: URL;
  try {
    parsed = new URL(source.replace(/\{\{[\s\S]*?\}\}/g, "x"));
  } catch {
    throw new InvalidConfigValue("must be an absolute http(s) URL", ["url"]);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new InvalidConfigValue("must be an absolute http(s) URL", ["url"]);
}

export const httpTarget: TargetDefinition<typeof httpTargetSchema> = {
  type: "http",
  schema: httpTargetSchema,
  create: createHttpTarget,
};
