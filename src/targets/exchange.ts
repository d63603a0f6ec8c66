import { Agent } from "undici/index.js";
import { describeNetworkError, flattenHeaders, readBodyBytes, ResponseTooLargeError } from "./http-response.ts";
import type { TargetTlsOptions } from "./tls.ts";
import type { TargetOutcome } from "./types.ts";

/** One request to a legacy system. */
export interface ExchangeRequest {
  readonly url: URL;
  readonly method: string;
  /** Lower-case names. */
  readonly headers: Record<string, string>;
  readonly body?: string;
  /** One deadline for the whole exchange: connect, send, answer. */
  readonly timeoutMs: number;
  readonly maxResponseSize: number;
}

/** The legacy system answered (any status), or the outcome that no answer means. */
export type ExchangeResult =
  /** `body` as bytes: JSON is UTF-8, but a SOAP answer may declare another charset. */
  | { kind: "answered"; status: number; headers: Record<string, string>; body: Buffer }
  | Extract<TargetOutcome, { kind: "timeout" | "unreachable" }>;

/**
 * The connection pool of one target: keep-alive connections per origin, connect timeout bounded by
 * the target's deadline, and the target's TLS options (private CA, client certificate) for https.
 *
 * @example
 * const agent = createTargetAgent({ connections: 32, timeoutMs: 10_000, tls: loadTargetTls(config.tls, configDir) });
 */
export function createTargetAgent(options: { connections: number; timeoutMs: number; tls?: TargetTlsOptions }): Agent {
  return new Agent({
    connections: options.connections,
    keepAliveTimeout: 4_000,
    connect: { timeout: Math.min(options.timeoutMs, 10_000), ...options.tls },
  });
}

/**
 * Sends one request through `agent` and reads the answer up to `maxResponseSize` bytes. A missed
 * deadline becomes `timeout`, a network failure `unreachable` with a reason that never names the host.
 *
 * @example
 * const result = await exchange(agent, { url, method: "POST", headers, body, timeoutMs: 10_000, maxResponseSize: 1 << 20 });
 * if (result.kind === "answered") console.log(result.status, result.body.toString("utf8"));
 */
export async function exchange(agent: Agent, request: ExchangeRequest): Promise<ExchangeResult> {
  const deadline = AbortSignal.timeout(request.timeoutMs);
  try {
    const response = await agent.request({
      origin: request.url.origin,
      path: request.url.pathname + request.url.search,
      method: request.method as "POST",
      headers: request.headers,
      body: request.body,
      signal: deadline,
      headersTimeout: request.timeoutMs,
      bodyTimeout: request.timeoutMs,
    });
    const headers = flattenHeaders(response.headers);
    const body = await readBodyBytes(response.body, request.maxResponseSize);
    return { kind: "answered", status: response.statusCode, headers, body };
  } catch (error) {
    if (deadline.aborted) return { kind: "timeout", timeoutMs: request.timeoutMs };
    if (error instanceof ResponseTooLargeError) return { kind: "unreachable", reason: error.message, code: "RESPONSE_TOO_LARGE" };
    const failure = describeNetworkError(error);
    if (failure.isTimeout) return { kind: "timeout", timeoutMs: request.timeoutMs };
    return { kind: "unreachable", reason: failure.reason, ...(failure.code ? { code: failure.code } : {}) };
  }
}
