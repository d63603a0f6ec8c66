/** The port a scheme uses when the URL names none. */
const DEFAULT_PORTS: Readonly<Record<string, number>> = { "http:": 80, "https:": 443 };

/**
 * Whether actiongate may POST to a `callback_post_url` taken from a payload, and the parsed URL if so.
 *
 * The payload is signed by epilot, but the URL still decides where a resume token goes, so it must
 * name a host listed in `epilot.callback_hosts`:
 * - an entry `host` matches that host on the scheme's default port only (443 for https);
 * - an entry `host:port` matches that host on exactly that port (`host:443` is the same as `host`);
 * - host names compare case-insensitively, after the same normalisation browsers apply
 *   (IDN to punycode, `[0:0::1]` to `[::1]`); IPv6 entries are written in brackets (`[::1]:8443`).
 * The URL must use https, except on loopback hosts (127.0.0.0/8, ::1, localhost), where http is
 * allowed for local stand-ins of epilot. A URL with user info (`https://user:pw@host/`) is refused.
 * Every `reason` is short and safe to log: it names at most the host, never the path or query.
 *
 * @example
 * isCallbackAllowed("https://automation.sls.epilot.io/v1/automation/public/executions:resume", ["automation.sls.epilot.io"]);
 * // { ok: true, url: URL }
 * isCallbackAllowed("https://evil.example/resume", ["automation.sls.epilot.io"]);
 * // { ok: false, reason: "callback host evil.example is not in epilot.callback_hosts" }
 */
export function isCallbackAllowed(
  url: string,
  allowedHosts: readonly string[],
): { ok: true; url: URL } | { ok: false; reason: string } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { ok: false, reason: "callback URL is not a valid absolute URL" };
  }
  const defaultPort = DEFAULT_PORTS[parsed.protocol];
  if (defaultPort === undefined) return { ok: false, reason: "callback URL must use https" };
  if (parsed.username !== "" || parsed.password !== "")
    return { ok: false, reason: "callback URL must not carry user info" };
  if (parsed.hostname === "") return { ok: false, reason: "callback URL has no host" };

  const port = parsed.port === "" ? defaultPort : Number(parsed.port);
  const allowed = allowedHosts.some((entry) => {
    const allowedHost = parseHostEntry(entry);
    if (!allowedHost || allowedHost.hostname !== parsed.hostname) return false;
    return (allowedHost.port ?? defaultPort) === port;
  });
  if (!allowed) return { ok: false, reason: `callback host ${parsed.host} is not in epilot.callback_hosts` };
  if (parsed.protocol !== "https:" && !isLoopback(parsed.hostname)) {
    return { ok: false, reason: `callback URL must use https (http only for loopback hosts), not for ${parsed.host}` };
  }
  return { ok: true, url: parsed };
}

/**
 * `host`, `host:port`, `[v6]` or `[v6]:port`, normalised as the WHATWG URL parser normalises a
 * URL's host, so that both sides compare alike. An entry that does not parse matches nothing.
 */
function parseHostEntry(entry: string): { hostname: string; port?: number } | undefined {
  const trimmed = entry.trim();
  // A bare IPv6 address has several colons and no port; anything else splits at its last colon.
  const bareIpv6 = !trimmed.startsWith("[") && trimmed.indexOf(":") !== trimmed.lastIndexOf(":");
  const hostPart = bareIpv6 ? `[${trimmed}]` : trimmed;
  let parsed: URL;
  try {
    parsed = new URL(`http://${hostPart}`);
  } catch {
    return undefined;
  }
  // Anything besides a host and a port (a path, user info, a query) makes the entry meaningless.
  if (
    parsed.pathname !== "/" ||
    parsed.search !== "" ||
    parsed.hash !== "" ||
    parsed.username !== "" ||
    parsed.password !== ""
  )
    return undefined;
  if (hostPart.endsWith("/")) return undefined;
  const portMatch = /:(\d+)$/.exec(hostPart);
  if (portMatch) {
    const port = Number(portMatch[1]);
    if (!Number.isInteger(port) || port < 1 || port > 65535) return undefined;
    return { hostname: parsed.hostname, port };
  }
  return { hostname: parsed.hostname };
}

/** 127.0.0.0/8, ::1 and localhost, as the URL parser spells them. */
function isLoopback(hostname: string): boolean {
  if (hostname === "localhost" || hostname === "[::1]") return true;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}
