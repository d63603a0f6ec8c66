/**
 * Forward proxies: the `proxy` key of a target and `epilot.proxy`, and which hosts bypass them.
 * Only a proxy the config names is ever used; the environment's `HTTP(S)_PROXY` stays ignored
 * (see {@link ignoreProxyEnvironment} in http-client.ts).
 */
import { z } from "zod";

/** A proxy as the HTTP client uses it, read from the config. */
export interface ProxySettings {
  /** `http://host:port` of the proxy, without credentials. */
  readonly url: string;
  /** The user name of the proxy credentials (shown by `routes`; the password never is). */
  readonly username?: string;
  /** `Proxy-Authorization` value (`Basic ...`) sent to the proxy; a secret. */
  readonly authorization?: string;
  /** Hosts reached directly; see {@link bypassesProxy} for how entries match. */
  readonly noProxy: readonly string[];
}

const NO_PROXY_ENTRY =
  /^(\*|(\*?\.)?[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?(:\d{1,5})?|\d{1,3}(\.\d{1,3}){3}(\/\d{1,2}|:\d{1,5})?|\[[0-9a-f:.]+\](:\d{1,5})?|[0-9a-f:]*:[0-9a-f:.]+)$/i;

const proxyObject = z.strictObject({
  url: z.string().describe("`http://host:port` of the proxy; credentials may be given in it or below"),
  username: z.string().min(1).optional().describe("proxy user name, usually `${ENV}`; needs password"),
  password: z.string().optional().describe("proxy password, usually `${ENV}`; sent as Proxy-Authorization: Basic"),
  no_proxy: z
    .array(
      z.string().refine((entry) => NO_PROXY_ENTRY.test(entry.trim()), {
        message:
          "must be a host name (`erp.internal`, which also covers its subdomains), `.domain`, `*.domain`, `host:port`, an IPv4 address or CIDR (`10.0.0.0/8`), an IPv6 address, or `*`",
      }),
    )
    .default([])
    .describe(
      "hosts reached directly, not through the proxy: `erp.internal` (and its subdomains), `.corp.local`, `host:8080`, `10.0.0.0/8`, `*` for all",
    ),
});

/**
 * `proxy:` as written in the config: a URL, or a mapping with credentials and `no_proxy`. Read into
 * {@link ProxySettings}; only `http://` proxies (a tunnel to an https target still carries TLS end to end).
 *
 * @example
 * proxySchema.parse("http://proxy.internal:3128");
 * // { url: "http://proxy.internal:3128", noProxy: [] }
 * proxySchema.parse({ url: "http://proxy.internal:3128", username: "gw", password: "pw", no_proxy: [".corp"] });
 */
export const proxySchema = z
  .union([z.string(), proxyObject])
  .transform((value, ctx): ProxySettings => {
    const given = typeof value === "string" ? { url: value, no_proxy: [] } : value;
    const path = typeof value === "string" ? [] : ["url"];
    let parsed: URL;
    try {
      parsed = new URL(given.url);
    } catch {
      ctx.addIssue({ code: "custom", message: `must be an http:// URL such as http://proxy:3128`, path });
      return z.NEVER;
    }
    if (parsed.protocol !== "http:") {
      ctx.addIssue({
        code: "custom",
        message:
          parsed.protocol === "https:"
            ? "must be an http:// proxy: TLS to an https target runs end to end through the proxy's CONNECT tunnel, a TLS connection to the proxy itself is not supported"
            : "must be an http:// URL such as http://proxy:3128",
        path,
      });
      return z.NEVER;
    }
    if ((parsed.pathname !== "/" && parsed.pathname !== "") || parsed.search !== "" || parsed.hash !== "") {
      ctx.addIssue({ code: "custom", message: "must name only the proxy's host and port, no path or query", path });
      return z.NEVER;
    }
    const fromUrl =
      parsed.username !== ""
        ? { username: decodeURIComponent(parsed.username), password: decodeURIComponent(parsed.password) }
        : undefined;
    const fromKeys =
      typeof value === "object" && value.username !== undefined
        ? { username: value.username, password: value.password ?? "" }
        : undefined;
    if (typeof value === "object" && value.password !== undefined && value.username === undefined) {
      ctx.addIssue({ code: "custom", message: "needs username", path: ["password"] });
      return z.NEVER;
    }
    if (fromUrl && fromKeys) {
      ctx.addIssue({
        code: "custom",
        message: "give the credentials in the URL or as username/password, not both",
        path,
      });
      return z.NEVER;
    }
    const credentials = fromUrl ?? fromKeys;
    if (credentials?.username.includes(":")) {
      ctx.addIssue({ code: "custom", message: "the proxy user name must not hold a colon", path: ["username"] });
      return z.NEVER;
    }
    return {
      url: `http://${parsed.host}`,
      ...(credentials
        ? {
            username: credentials.username,
            authorization: `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`, "utf8").toString("base64")}`,
          }
        : {}),
      noProxy: given.no_proxy.map((entry) => entry.trim().toLowerCase()),
    };
  })
  .describe(
    "forward proxy for this part's outbound calls (`CONNECT` for https); the environment's HTTP(S)_PROXY is never used",
  )
  .meta({
    examples: [
      "http://proxy.internal:3128",
      {
        url: "http://proxy.internal:3128",
        username: "${PROXY_USER}",
        password: "${PROXY_PASSWORD}",
        no_proxy: [".corp.local", "10.0.0.0/8"],
      },
    ],
  });

/**
 * Whether a call to `url` goes directly rather than through the proxy, by `no_proxy`:
 * - `*` matches every host;
 * - `erp.internal` matches that host and its subdomains (`api.erp.internal`), as curl reads it;
 *   `.erp.internal` and `*.erp.internal` match the same;
 * - `host:8080` matches that host (and subdomains) on that port only;
 * - `10.0.0.0/8` matches IPv4 addresses in that network; `10.1.2.3` and `::1` match that address.
 * Host names compare case-insensitively, without a trailing dot.
 *
 * @example
 * bypassesProxy(new URL("http://api.erp.internal/x"), ["erp.internal"]); // true
 * bypassesProxy(new URL("https://login.example.com/t"), ["erp.internal"]); // false
 */
export function bypassesProxy(url: URL, noProxy: readonly string[]): boolean {
  if (noProxy.length === 0) return false;
  const host = url.hostname
    .toLowerCase()
    .replace(/\.$/, "")
    .replace(/^\[|\]$/g, "");
  const port = url.port !== "" ? Number(url.port) : url.protocol === "https:" ? 443 : 80;
  return noProxy.some((entry) => entryMatches(entry, host, port));
}

function entryMatches(entry: string, host: string, port: number): boolean {
  if (entry === "*") return true;
  const cidr = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})$/.exec(entry);
  if (cidr) return inIpv4Network(host, cidr[1]!, Number(cidr[2]));
  let name = entry;
  let entryPort: number | undefined;
  const withPort = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(entry);
  if (withPort) {
    name = withPort[1]!;
    entryPort = Number(withPort[2]);
  }
  if (entryPort !== undefined && entryPort !== port) return false;
  name = name
    .replace(/^\[|\]$/g, "")
    .replace(/^\*?\./, "")
    .replace(/\.$/, "");
  if (name.includes(":") || /^\d{1,3}(\.\d{1,3}){3}$/.test(name)) return normalizeIp(name) === normalizeIp(host);
  return host === name || host.endsWith(`.${name}`);
}

function inIpv4Network(host: string, network: string, bits: number): boolean {
  const address = ipv4ToNumber(host);
  const base = ipv4ToNumber(network);
  if (address === undefined || base === undefined || bits > 32) return false;
  if (bits === 0) return true;
  const mask = (0xffffffff << (32 - bits)) >>> 0;
  return (address & mask) >>> 0 === (base & mask) >>> 0;
}

function ipv4ToNumber(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255) return undefined;
    value = value * 256 + Number(part);
  }
  return value;
}

/** The URL parser's spelling of an address (`0:0::1` and `::1` alike), so that both sides compare. */
function normalizeIp(address: string): string {
  try {
    return new URL(`http://${address.includes(":") ? `[${address}]` : address}`).hostname.replace(/^\[|\]$/g, "");
  } catch {
    return address;
  }
}
