import { z } from "zod";
import { InvalidConfigValue } from "../kit/config-errors.ts";
import { redactUrl } from "../kit/urls.ts";
import type { HttpClient } from "../runtime/http-client.ts";
import { CookieJar } from "./cookie-jar.ts";
import { exchange } from "./exchange.ts";
import { parseResponseBody } from "./http-response.ts";
import { HEADER_NAME } from "./request-templates.ts";
import type { TargetOutcome } from "./types.ts";

export const csrfSchema = z
  .strictObject({
    fetch_url: z
      .string()
      .optional()
      .describe(
        "where the token is fetched with `GET` (an absolute http(s) URL, e.g. the OData service root); default: the call's own URL, placeholders filled",
      ),
    header: z
      .string()
      .regex(HEADER_NAME, "must be a valid HTTP header name")
      .default("x-csrf-token")
      .describe("the header that carries the token both ways (`Fetch` on the fetch, `Required` on a 403)"),
  })
  .describe(
    "SAP Gateway style CSRF protection: a `GET` with `x-csrf-token: Fetch` (with the target's auth) gives a token and session cookies, which go along on every call; a `403` with `x-csrf-token: Required` fetches them again and retries the call once. Token fetches do not count against `rate_limit`.",
  )
  .meta({
    examples: [{ fetch_url: "https://sap.internal/sap/opu/odata/sap/API_BUSINESS_PARTNER/", header: "x-csrf-token" }],
  });

export type CsrfConfig = z.output<typeof csrfSchema>;

/** A token answer carries its token in a header; a body bigger than this is not read. */
const MAX_FETCH_ANSWER_BYTES = 1024 * 1024;

/** The headers one call sends for the session, or the outcome when no token could be fetched. */
export type CsrfHeaders = { ok: true; headers: Record<string, string> } | { ok: false; outcome: TargetOutcome };

export interface CsrfFetchOptions {
  /** Where the token is fetched when `fetch_url` is not set: the call's URL. */
  readonly callUrl: URL;
  /** The target's credentials (and user agent): the fetch carries the same auth as the calls. */
  readonly headers: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  readonly signal: AbortSignal;
}

/**
 * The CSRF token and the cookie jar of one target. The first call fetches the token (concurrent
 * calls share the fetch) and every call sends it with the session's cookies; `rejectedAsRequired`
 * recognises the answer that means the session or token expired, after which the next call fetches
 * them anew. The token and cookies are secrets: never logged, shown as `***` by `explain`.
 *
 * @example
 * const session = new CsrfSession(config, client);
 * const headers = await session.headers({ callUrl, headers: auth, timeoutMs: 10_000, signal });
 * // { ok: true, headers: { "x-csrf-token": "...", cookie: "SAP_SESSIONID_..." } }
 */
export class CsrfSession {
  readonly jar = new CookieJar();
  readonly header: string;
  private readonly fetchUrl: URL | undefined;
  private token: string | undefined;
  private inFlight: Promise<CsrfHeaders> | undefined;

  constructor(
    private readonly config: CsrfConfig,
    private readonly client: HttpClient,
  ) {
    this.header = config.header.toLowerCase();
    this.fetchUrl = config.fetch_url === undefined ? undefined : checkFetchUrl(config.fetch_url);
  }

  /** Lower-case names of the headers the session sets on a call. */
  get headerNames(): readonly string[] {
    return [this.header, "cookie"];
  }

  /** The headers for one call to `options.callUrl`; fetches the token first when there is none. */
  async headers(options: CsrfFetchOptions): Promise<CsrfHeaders> {
    if (this.token === undefined) {
      this.inFlight ??= this.fetchToken(options).finally(() => {
        this.inFlight = undefined;
      });
      const fetched = await this.inFlight;
      if (!fetched.ok) return fetched;
    }
    if (this.token === undefined) return this.headers(options);
    const cookie = this.jar.header(options.callUrl);
    return { ok: true, headers: { [this.header]: this.token, ...(cookie !== undefined ? { cookie } : {}) } };
  }

  /** Keeps the cookies an answer to `url` set (a server may renew the session on any call). */
  record(url: URL, setCookies: readonly string[]): void {
    if (setCookies.length > 0) this.jar.store(url, setCookies);
  }

  /**
   * Whether an answer says the token is not (or no longer) valid: 403 with `<header>: Required`.
   * If so, the token and the session's cookies are dropped, so that the next call starts afresh.
   */
  rejectedAsRequired(
    status: number,
    headers: Readonly<Record<string, string>>,
    sentToken: string | undefined,
  ): boolean {
    if (status !== 403 || headers[this.header]?.trim().toLowerCase() !== "required") return false;
    // A call that raced a refetch leaves the new token alone.
    if (sentToken === this.token) {
      this.token = undefined;
      this.jar.clear();
    }
    return true;
  }

  describe(): { fetch_url: string; header: string } {
    return { fetch_url: this.fetchUrl ? redactUrl(this.fetchUrl.href) : "(the call's URL)", header: this.header };
  }

  private async fetchToken(options: CsrfFetchOptions): Promise<CsrfHeaders> {
    const url = this.fetchUrl ?? options.callUrl;
    const cookie = this.jar.header(url);
    const result = await exchange(
      this.client,
      {
        url,
        method: "GET",
        headers: {
          ...options.headers,
          [this.header]: "Fetch",
          accept: "*/*",
          ...(cookie !== undefined ? { cookie } : {}),
        },
        timeoutMs: options.timeoutMs,
        maxResponseSize: MAX_FETCH_ANSWER_BYTES,
      },
      options.signal,
    );
    if (result.kind !== "answered") return { ok: false, outcome: result };
    this.record(url, result.setCookies);
    const token = result.headers[this.header]?.trim();
    const usable =
      token !== undefined && token !== "" && !/^(fetch|required)$/i.test(token) && /^[\x21-\x7e]+$/.test(token);
    if (usable && result.status < 400) {
      this.token = token;
      return { ok: true, headers: {} };
    }
    const response = {
      status: result.status,
      headers: result.headers,
      body: parseResponseBody(result.body.toString("utf8"), result.headers["content-type"]),
    };
    return {
      ok: false,
      outcome: {
        kind: "rejected",
        response,
        reason:
          result.status >= 400
            ? `target answered the CSRF token fetch with HTTP ${result.status}`
            : `target sent no ${this.config.header} on the CSRF token fetch`,
        info: { target_status: result.status },
        // A 2xx without a token is a configuration problem (wrong fetch_url or header), not a passing one.
        ...(result.status < 400 ? { retryable: false } : {}),
      },
    };
  }
}

function checkFetchUrl(value: string): URL {
  if (value.includes("{{"))
    throw new InvalidConfigValue("may not hold {{ }} placeholders; leave it out to fetch at the call's URL", [
      "csrf",
      "fetch_url",
    ]);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidConfigValue(`must be an absolute http(s) URL (got "${value}")`, ["csrf", "fetch_url"]);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new InvalidConfigValue(`must be an absolute http(s) URL (got "${value}")`, ["csrf", "fetch_url"]);
  return url;
}
