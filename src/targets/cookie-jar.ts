/** The most cookies one jar keeps; past it the oldest goes (a session needs a handful). */
const MAX_COOKIES = 50;
/** A longer `name=value` is not kept (browsers keep 4 KB). */
const MAX_COOKIE_BYTES = 4096;

interface StoredCookie {
  readonly name: string;
  readonly value: string;
  /** Host-only: sent to exactly the host that set it (a `Domain` attribute is not widened to). */
  readonly host: string;
  readonly path: string;
  readonly secure: boolean;
  /** ms since epoch; undefined for a session cookie (kept while the gateway runs). */
  readonly expiresAt: number | undefined;
}

/**
 * A small cookie jar for one target (RFC 6265, simplified for a service session): keeps what a
 * legacy system sets (SAP's session and user-context cookies) and sends it back on later calls.
 * Cookies are host-only, path-matched, `Secure` ones only over https, and `Max-Age`/`Expires`
 * end them. Bounded: at most 50 cookies of at most 4 KB each.
 *
 * @example
 * const jar = new CookieJar();
 * jar.store(new URL("http://sap/sap/opu/odata/x"), ["SAP_SESSIONID_ABC_100=s1; path=/; HttpOnly"]);
 * jar.header(new URL("http://sap/sap/opu/odata/x")); // "SAP_SESSIONID_ABC_100=s1"
 */
export class CookieJar {
  private cookies: StoredCookie[] = [];

  constructor(private readonly now: () => number = Date.now) {}

  /** Takes the `set-cookie` headers of an answer from `url`. */
  store(url: URL, setCookies: readonly string[]): void {
    for (const line of setCookies) {
      const cookie = parseSetCookie(line, url, this.now());
      if (!cookie) continue;
      this.cookies = this.cookies.filter(
        (other) => !(other.name === cookie.name && other.host === cookie.host && other.path === cookie.path),
      );
      // An expiry in the past deletes the cookie (how a server logs a session out).
      if (cookie.expiresAt !== undefined && cookie.expiresAt <= this.now()) continue;
      this.cookies.push(cookie);
      if (this.cookies.length > MAX_COOKIES) this.cookies.shift();
    }
  }

  /** The `cookie` header for a call to `url`, or undefined when no cookie applies. */
  header(url: URL): string | undefined {
    const now = this.now();
    this.cookies = this.cookies.filter((cookie) => cookie.expiresAt === undefined || cookie.expiresAt > now);
    const host = url.hostname.toLowerCase();
    const matching = this.cookies
      .filter(
        (cookie) =>
          cookie.host === host &&
          pathMatches(url.pathname, cookie.path) &&
          (!cookie.secure || url.protocol === "https:"),
      )
      // Longer paths first, as RFC 6265 5.4 orders them.
      .sort((a, b) => b.path.length - a.path.length);
    return matching.length > 0 ? matching.map((cookie) => `${cookie.name}=${cookie.value}`).join("; ") : undefined;
  }

  /** Forgets every cookie (a session the server ended). */
  clear(): void {
    this.cookies = [];
  }

  get size(): number {
    return this.cookies.length;
  }
}

function parseSetCookie(line: string, url: URL, now: number): StoredCookie | undefined {
  const [pair = "", ...attributes] = line.split(";");
  const equals = pair.indexOf("=");
  if (equals <= 0) return undefined;
  const name = pair.slice(0, equals).trim();
  const value = pair.slice(equals + 1).trim();
  // Only what can go back in a cookie header unchanged: no controls, no separators in the name.
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name) || !/^[\x21-\x7e]*$/.test(value.replace(/^"|"$/g, "")))
    return undefined;
  if (name.length + value.length + 1 > MAX_COOKIE_BYTES) return undefined;
  let path = defaultPath(url.pathname);
  let secure = false;
  let expiresAt: number | undefined;
  let maxAgeSeen = false;
  for (const attribute of attributes) {
    const [rawKey = "", ...rest] = attribute.split("=");
    const key = rawKey.trim().toLowerCase();
    const attributeValue = rest.join("=").trim();
    if (key === "path" && attributeValue.startsWith("/")) path = attributeValue;
    else if (key === "secure") secure = true;
    else if (key === "max-age" && /^-?\d+$/.test(attributeValue)) {
      maxAgeSeen = true;
      expiresAt = now + Number(attributeValue) * 1000;
    } else if (key === "expires" && !maxAgeSeen) {
      const at = Date.parse(attributeValue);
      if (!Number.isNaN(at)) expiresAt = at;
    }
  }
  return { name, value, host: url.hostname.toLowerCase(), path, secure, expiresAt };
}

/** RFC 6265 5.1.4: the directory of the request's path. */
function defaultPath(requestPath: string): string {
  if (!requestPath.startsWith("/")) return "/";
  const last = requestPath.lastIndexOf("/");
  return last <= 0 ? "/" : requestPath.slice(0, last);
}

/** RFC 6265 5.1.4: the cookie's path is the request path or a prefix of it at a `/`. */
function pathMatches(requestPath: string, cookiePath: string): boolean {
  if (requestPath === cookiePath) return true;
  if (!requestPath.startsWith(cookiePath)) return false;
  return cookiePath.endsWith("/") || requestPath[cookiePath.length] === "/";
}
