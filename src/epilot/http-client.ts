import { createHttpClient, type HttpClient } from "../runtime/http-client.ts";
import type { ProxySettings } from "../runtime/proxy.ts";

/**
 * The HTTP client for calls to epilot (resume, write-back, and what else goes to epilot's APIs):
 * keep-alive connections to the few epilot hosts, through `epilot.proxy` when the config names one
 * (never a proxy from the environment). The per-call deadline (an AbortSignal) bounds each call;
 * the connect timeout only caps a hung dial.
 *
 * @example
 * const client = createEpilotHttpClient(config.epilot.proxy);
 * await client.request({ url, method: "POST", headers, body, signal: AbortSignal.timeout(10_000), maxResponseSize: 1 << 18 });
 */
export function createEpilotHttpClient(proxy?: ProxySettings): HttpClient {
  return createHttpClient({ connections: 32, connectTimeoutMs: 10_000, ...(proxy ? { proxy } : {}) });
}
