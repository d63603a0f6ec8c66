import type { LoadedConfig } from "../config/load.ts";
import { isRecord } from "../kit/records.ts";
import { redactUrl } from "../kit/urls.ts";
import { escapeXmlText } from "../targets/soap/envelope.ts";
import type { TargetRequest } from "../targets/types.ts";

/** A request as `explain` and `test` show it: credentials as `***`. */
export interface RequestView {
  readonly method: string;
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string;
}

/** Header names whose values are credentials whatever the config says (Authorization, X-Api-Key, ...). */
const CREDENTIAL_HEADER = /^(authorization|proxy-authorization|cookie)$|token|secret|passw|api[-_]?key|credential/i;

/** What `***` stands for in one request, and how to hide it in any text shown. */
export interface RequestMask {
  /** The request with every credential as `***`. */
  readonly view: RequestView;
  /** Any text with the request's credentials replaced by `***` (for values quoted in a test's report). */
  text(value: string): string;
}

/**
 * Hides what must never be shown of a request: the whole value of a header that is a credential
 * (the target says so in `secretHeaders`: auth, forwarded tokens; its configured text held a
 * `${VAR}`; or its name is a credential's), the credentials the target wrote into the body
 * (`secretTexts`: a WS-Security password or digest), values of the route's SOAP header blocks that
 * came from `${VAR}`, and the password and secret query parameters of the URL.
 *
 * @example
 * const { view } = maskRequest(request, loaded, 0);
 * view.headers.authorization; // "***"
 */
export function maskRequest(request: TargetRequest, loaded: LoadedConfig, routeIndex: number): RequestMask {
  const target = ["routes", routeIndex, "target"];
  const configuredHeaders = loaded.config.routes[routeIndex]?.target.headers ?? {};
  const fromEnv = new Set(
    Object.keys(configuredHeaders)
      .filter((name) => loaded.fromEnv([...target, "headers", name]))
      .map((name) => name.toLowerCase()),
  );
  const secrets = new Set<string>();
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    const secret = request.secretHeaders.has(name) || fromEnv.has(name) || CREDENTIAL_HEADER.test(name);
    if (secret && value !== "") secrets.add(value);
    headers[name] = secret ? "***" : value;
  }
  for (const text of request.secretTexts ?? []) secrets.add(text);
  const soapHeaders = loaded.config.routes[routeIndex]?.target;
  if (soapHeaders && "soap_headers" in soapHeaders) {
    collectEnvTexts(soapHeaders.soap_headers, [...target, "soap_headers"], loaded, (text) => {
      secrets.add(text);
      secrets.add(escapeXmlText(text));
    });
  }
  // As JSON writes them too (a test's report quotes values as JSON); longest first, so that a
  // secret holding another is hidden whole.
  const ordered = [...secrets]
    .flatMap((secret) => [secret, JSON.stringify(secret).slice(1, -1)])
    .filter((secret, index, all) => secret !== "" && all.indexOf(secret) === index)
    .sort((a, b) => b.length - a.length);
  const text = (value: string) => ordered.reduce((out, secret) => out.split(secret).join("***"), value);
  const view: RequestView = {
    method: request.method,
    url: text(redactUrl(request.url.href)),
    headers,
    ...(request.body !== undefined ? { body: text(request.body) } : {}),
  };
  return { view, text };
}

/** Calls `found` with every string under `value` whose config text held a `${VAR}`. */
function collectEnvTexts(
  value: unknown,
  path: PropertyKey[],
  loaded: LoadedConfig,
  found: (text: string) => void,
): void {
  if (typeof value === "string") {
    if (loaded.fromEnv(path)) found(value);
  } else if (Array.isArray(value)) {
    for (const [index, item] of value.entries()) collectEnvTexts(item, [...path, index], loaded, found);
  } else if (isRecord(value)) {
    for (const [key, inner] of Object.entries(value)) collectEnvTexts(inner, [...path, key], loaded, found);
  }
}
