import { createHttpClient, type HttpClient, ResponseTooLargeError } from "../runtime/http-client.ts";
import { describeNetworkError } from "../runtime/network-errors.ts";
import type { ProxySettings } from "../runtime/proxy.ts";
import type { TargetTlsOptions } from "./tls.ts";
import type { TargetOutcome } from "./types.ts";

/** One request to a legacy system. */
export interface ExchangeRequest {
  readonly url: URL;
  readonly method: string;
  /** Lower-case names. */
  readonly headers: Record<string, string>;
  readonly body?: string;
  /** One deadline for the whole exchange: waiting for a free connection, connect, send, answer. */
  readonly timeoutMs: number;
  readonly maxResponseSize: number;
}

/** The legacy system answered (any status), or the outcome that no answer means. */
export type ExchangeResult =
  /** `body` as bytes: JSON is UTF-8, but a SOAP answer may declare another charset. */
  | {
      kind: "answered";
      status: number;
      headers: Record<string, string>;
      /** Each set-cookie header on its own (a CSRF session keeps them). */
      setCookies: readonly string[];
      body: Buffer;
    }
  | Extract<TargetOutcome, { kind: "timeout" | "unreachable" }>;

/**
 * The HTTP client of one target: at most `connections` calls in flight (kept-alive connections),
 * a connect timeout bounded by the target's deadline, and the target's TLS options (private CA,
 * client certificate) for https, and its forward proxy. Which runtime client is behind it is src/runtime's business.
 *
 * @example
 * const client = createTargetClient({ connections: 32, timeoutMs: 10_000, tls: loadTargetTls(config.tls, configDir) });
 */
export function createTargetClient(options: {
  connections: number;
  timeoutMs: number;
  tls?: TargetTlsOptions;
  proxy?: ProxySettings;
}): HttpClient {
  return createHttpClient({
    connections: options.connections,
    connectTimeoutMs: Math.min(options.timeoutMs, 10_000),
    ...(options.tls ? { tls: options.tls } : {}),
    ...(options.proxy ? { proxy: options.proxy } : {}),
  });
}

/**
 * Sends one request through `client` and reads the answer up to `maxResponseSize` bytes. A missed
 * deadline becomes `timeout`, a network failure `unreachable` with a reason that never names the host.
 * `deadline` is the call's, when several exchanges (a token fetch, a retry) share one; else the
 * request's `timeoutMs` from now.
 *
 * @example
 * const result = await exchange(client, { url, method: "POST", headers, body, timeoutMs: 10_000, maxResponseSize: 1 << 20 });
 * if (result.kind === "answered") console.log(result.status, result.body.toString("utf8"));
 */
export async function exchange(
  client: HttpClient,
  request: ExchangeRequest,
  deadline: AbortSignal = AbortSignal.timeout(request.timeoutMs),
): Promise<ExchangeResult> {
  try {
    const response = await client.request({
      url: request.url,
      method: request.method,
      headers: request.headers,
      ...(request.body !== undefined ? { body: request.body } : {}),
      signal: deadline,
      maxResponseSize: request.maxResponseSize,
    });
    return {
      kind: "answered",
      status: response.status,
      headers: response.headers,
      setCookies: response.setCookies,
      body: response.body,
    };
  } catch (error) {
    if (deadline.aborted) return { kind: "timeout", timeoutMs: request.timeoutMs };
    if (error instanceof ResponseTooLargeError)
      return { kind: "unreachable", reason: error.message, code: "RESPONSE_TOO_LARGE" };
    const failure = describeNetworkError(error);
    if (failure.isTimeout) return { kind: "timeout", timeoutMs: request.timeoutMs };
    return { kind: "unreachable", reason: failure.reason, ...(failure.code ? { code: failure.code } : {}) };
  }
}
