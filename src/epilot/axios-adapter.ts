import type { AxiosAdapter, AxiosResponse, InternalAxiosRequestConfig } from "axios";
import type { HttpClient } from "../runtime/http-client.ts";

/** An answer of epilot's APIs that actiongate reads (a write-back reads only the status). */
const MAX_ANSWER_BYTES = 1024 * 1024;

/**
 * An axios adapter that sends @epilot/sdk's requests through actiongate's own HTTP client, so they
 * take the same way out as every other call to epilot: `epilot.proxy` (with `CONNECT` for https,
 * which axios's own `proxy` option does not do), no proxy from the environment, no redirects.
 * With `discardBody`, the answer's body is not read (a write-back needs only the status).
 *
 * @example
 * await client.patchEntity(params, patch, { adapter: httpClientAdapter(epilotClient, { discardBody: true }) });
 */
export function httpClientAdapter(client: HttpClient, options: { discardBody?: boolean } = {}): AxiosAdapter {
  return async (config: InternalAxiosRequestConfig): Promise<AxiosResponse> => {
    const url = requestUrl(config);
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(config.headers.toJSON())) {
      if (value === undefined || value === null) continue;
      headers[name.toLowerCase()] = Array.isArray(value) ? value.join(", ") : String(value);
    }
    const body = config.data === undefined || config.data === null ? undefined : String(config.data);
    const signal =
      config.signal instanceof AbortSignal
        ? config.signal
        : AbortSignal.timeout(config.timeout && config.timeout > 0 ? config.timeout : 30_000);
    const answer = await client.request({
      url,
      method: (config.method ?? "get").toUpperCase(),
      headers,
      ...(body !== undefined ? { body } : {}),
      signal,
      maxResponseSize: MAX_ANSWER_BYTES,
      ...(options.discardBody ? { discardBody: true } : {}),
    });
    return {
      data: options.discardBody ? "" : answer.body.toString("utf8"),
      status: answer.status,
      statusText: "",
      headers: answer.headers,
      config,
      request: {},
    };
  };
}

/** `baseURL` and `url` joined as axios joins them (a path prefix of the base is kept), with `params`. */
function requestUrl(config: InternalAxiosRequestConfig): URL {
  const path = config.url ?? "";
  const joined =
    /^[a-z][a-z0-9+.-]*:\/\//i.test(path) || !config.baseURL
      ? path
      : `${config.baseURL.replace(/\/+$/, "")}/${path.replace(/^\/+/, "")}`;
  const url = new URL(joined);
  const params: unknown = config.params;
  if (params && typeof params === "object") {
    for (const [name, value] of Object.entries(params as Record<string, unknown>)) {
      if (value !== undefined && value !== null) url.searchParams.append(name, String(value));
    }
  }
  return url;
}
