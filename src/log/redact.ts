/**
 * Key names whose values never appear in a log line, whatever object they sit in.
 * Matching is by key name (case-insensitive, ignoring `-` and `_`) so that a field added later
 * under a telling name (`erpApiKey`, `X-Api-Key`) is covered without touching this list.
 */
const SECRET_KEY_PATTERN =
  /(token|secret|password|passwd|authorization|apikey|api_key|signature|cookie|credential|privatekey)/i;

/** Objects whose whole content is personal or secret data in an epilot payload. */
const REDACTED_SUBTREES = new Set(["caller", "app_options", "trigger_event"]);

export const REDACTED = "[redacted]";

/** Key names already judged; they repeat on every line (route, status, ...). Bounded, since a key may come from data. */
const judgedKeys = new Map<string, boolean>();
const MAX_JUDGED_KEYS = 2_048;

function isSecretKey(key: string): boolean {
  let secret = judgedKeys.get(key);
  if (secret === undefined) {
    secret = SECRET_KEY_PATTERN.test(key.replace(/[-_]/g, "")) || REDACTED_SUBTREES.has(key);
    if (judgedKeys.size < MAX_JUDGED_KEYS) judgedKeys.set(key, secret);
  }
  return secret;
}

/**
 * Returns `value` with secrets replaced by `[redacted]`. Objects and arrays are copied only where
 * something is replaced (one log line per call goes through here): the caller's objects are never
 * changed either way.
 *
 * @example
 * redact({ route: "erp", headers: { authorization: "Bearer x" } })
 * // { route: "erp", headers: { authorization: "[redacted]" } }
 */
export function redact(value: unknown, depth = 0): unknown {
  if (depth > 8) return REDACTED;
  if (value === null || typeof value !== "object") return value;
  if (value instanceof Error) return { name: value.name, message: value.message };
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      const redacted = redact(item, depth + 1);
      if (redacted !== item) {
        copy ??= value.slice();
        copy[i] = redacted;
      }
    }
    return copy ?? value;
  }
  // Anything but a plain object (a URL, a class instance) becomes a plain copy of its own fields, so
  // that no toJSON() of its own (a URL's href with its password) reaches the line.
  const proto: unknown = Object.getPrototypeOf(value);
  let copy: Record<string, unknown> | undefined = proto === Object.prototype || proto === null ? undefined : {};
  for (const key of Object.keys(value)) {
    const inner = (value as Record<string, unknown>)[key];
    const redacted = isSecretKey(key) ? REDACTED : redact(inner, depth + 1);
    if (copy) copy[key] = redacted;
    else if (redacted !== inner) {
      copy = { ...(value as Record<string, unknown>) };
      copy[key] = redacted;
    }
  }
  return copy ?? value;
}

/** A name that holds a secret by its look, inside free text (`api_key=`, `"password":`, `<wsse:Password>`). */
const SECRET_NAME =
  "[\\w.-]*(?:token|secret|password|passwd|authorization|api[_-]?key|signature|cookie|credential|private[_-]?key)[\\w.-]*";
const TEXT_RULES: readonly (readonly [RegExp, string])[] = [
  // `Authorization: Bearer abc`, `Basic dXNlcjpwdw==` wherever they stand.
  [/\b(Bearer|Basic|Digest)\s+[A-Za-z0-9._~+/=-]{6,}/gi, `$1 ${REDACTED}`],
  // A JWT (three base64url parts, the first a JSON header).
  [/\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g, REDACTED],
  // `<Password>x</Password>`, with or without a namespace prefix or attributes.
  [new RegExp(`(<(?:[\\w.-]+:)?${SECRET_NAME}(?:\\s[^>]*)?>)[^<]*(</)`, "gi"), `$1${REDACTED}$2`],
  // `"token": "x"`, `api_key=x`, `password: x`.
  [new RegExp(`((["']?)${SECRET_NAME}\\2\\s*[:=]\\s*)(["']?)[^"'\\s&,;<>]+\\3`, "gi"), `$1$3${REDACTED}$3`],
];

/**
 * Free text (a legacy system's answer that is not JSON, an error page) with what looks like a secret
 * replaced by `[redacted]`: values under secret-looking names (`api_key=`, `"password":`,
 * `<Password>`), Bearer/Basic credentials and JWTs. A best effort over text whose shape is unknown;
 * structured data goes through {@link redact} instead.
 *
 * @example
 * redactText("denied for api_key=abc123, token: xyz"); // "denied for api_key=[redacted], token: [redacted]"
 */
export function redactText(text: string): string {
  let out = text;
  for (const [pattern, replacement] of TEXT_RULES) out = out.replace(pattern, replacement);
  return out;
}
