/**
 * What of a SOAP fault's text may leave the gateway. A fault string is written by the service for
 * its own operators: it may name an internal host (`cannot reach db01.corp.local:5432`), quote a
 * connection string with a password, or carry a stack trace. epilot, by default, gets the first
 * line with addresses and credentials taken out, cut short; the log gets the whole text with
 * credentials taken out (hosts are no secret inside the operator's own logs).
 */

/** About what epilot shows in one line of a workflow's error. */
export const MAX_SAFE_FAULT_TEXT = 200;
/** A fault text in a log line: whole for any real fault, bounded for a hostile one. */
export const MAX_LOGGED_FAULT_TEXT = 4_000;

/** `https://...`, and nested schemes such as `jdbc:sqlserver://...`. */
const URL = /\b(?:[a-z][a-z0-9+.-]*:)+\/\/[^\s"'<>()[\]{}]+/gi;
/** `password=...`, `pwd: ...`, `api_key="..."`, `User Id=sa;` (connection strings), ... */
const CREDENTIAL =
  /\b(pass(?:word|wd)?|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|key|auth(?:orization)?|credentials?|session(?:[_-]?id)?|sid|user(?:[ _-]?(?:name|id))?|uid|login)(\s*[=:]\s*)(?!\[redacted\])("[^"]*"|'[^']*'|[^\s,;&)\]}]+)/gi;
/** `Server=sqlprod01;`, `host: sap-prd`: a single-label host is recognised by the key that names it. */
const HOST_KEY = /\b(server|host(?:name)?|data source|address|endpoint)(\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s,;&)\]}]+)/gi;
/** `//user:password@host` */
const USERINFO = /(\/\/[^\s/:@]+:)[^\s/@]+@/g;
const BEARER = /\b(Bearer|Basic|Negotiate|Digest)\s+[A-Za-z0-9._~+/=-]{6,}/g;
const IPV4 = /\b\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?\b/g;
/** Two or more groups with at least one `::`, or eight full groups; `10:14:03` is a time, not an address. */
const IPV6 =
  /\[?\b(?:[0-9a-f]{1,4}(?::[0-9a-f]{1,4})*)?::(?:[0-9a-f]{1,4}(?::[0-9a-f]{1,4})*)?\b\]?(?::\d{1,5})?|\b(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}\b/gi;
const DOMAIN = /\b(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]\b(:\d{1,5}\b)?/gi;
/** Last labels that make a dotted word a host name: public TLDs in common use and the usual internal ones. */
const HOST_SUFFIXES = new Set(
  (
    "com net org edu gov mil int info biz io co de at ch li lu uk eu fr nl be it es pt se no dk fi is pl cz sk hu " +
    "ro bg gr ie us ca mx br ar au nz jp cn kr in ru ua tr za cloud app dev online site tech " +
    "local localdomain localhost internal intranet intra corp lan home arpa example invalid test svc cluster"
  ).split(" "),
);

/**
 * The fault text as epilot may see it: first line, URLs, IP addresses, host names and
 * `key=value` credentials replaced, at most {@link MAX_SAFE_FAULT_TEXT} characters.
 *
 * @example
 * safeFaultText("Login failed for user=sa password=hunter2 at db01.corp.local:1433\n\tat com.acme.Dao");
 * // "Login failed for user=[redacted] password=[redacted] at [host]"
 */
export function safeFaultText(text: string): string {
  const line = text.trim().split(/\r?\n/, 1)[0]!.trim();
  // Cut before the patterns run (a hostile text is bounded work), then after (what epilot sees).
  const redacted = redactAddresses(redactCredentials(line.slice(0, MAX_SAFE_FAULT_TEXT * 4).replace(URL, "[url]")));
  return redacted.length > MAX_SAFE_FAULT_TEXT ? `${redacted.slice(0, MAX_SAFE_FAULT_TEXT)}…` : redacted;
}

/**
 * The fault text for the log: every line, credentials replaced, hosts kept, at most
 * {@link MAX_LOGGED_FAULT_TEXT} characters.
 */
export function loggableFaultText(text: string): string {
  const redacted = redactCredentials(text.trim().slice(0, MAX_LOGGED_FAULT_TEXT));
  return redacted.length >= MAX_LOGGED_FAULT_TEXT ? `${redacted}…` : redacted;
}

function redactCredentials(text: string): string {
  return text.replace(USERINFO, "$1[redacted]@").replace(BEARER, "$1 [redacted]").replace(CREDENTIAL, "$1$2[redacted]");
}

function redactAddresses(text: string): string {
  return text
    .replace(HOST_KEY, "$1$2[host]")
    .replace(IPV4, "[ip]")
    .replace(IPV6, (match) => (match.replace(/[[\]]/g, "").length >= 3 && /\d/.test(match) ? "[ip]" : match))
    .replace(DOMAIN, (match, port: string | undefined) => {
      const host = port ? match.slice(0, -port.length) : match;
      const suffix = host.slice(host.lastIndexOf(".") + 1).toLowerCase();
      const labels = host.split(".");
      const allLowercase = host === host.toLowerCase();
      return port || HOST_SUFFIXES.has(suffix) || (labels.length >= 3 && allLowercase) ? "[host]" : match;
    })
    .replace(/\blocalhost(?::\d{1,5})?\b/gi, "[host]");
}
