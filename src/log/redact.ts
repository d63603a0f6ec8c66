/**
 * Key names whose values never appear in a log line, whatever object they sit in.
 * Matching is by key name (case-insensitive, ignoring `-` and `_`) so that a field added later
 * under a telling name (`erpApiKey`, `X-Api-Key`) is covered without touching this list.
 */
const SECRET_KEY_PATTERN = /(token|secret|password|passwd|authorization|apikey|api_key|signature|cookie|credential|privatekey)/i;

/** Objects whose whole content is personal or secret data in an epilot payload. */
const REDACTED_SUBTREES = new Set(["caller", "app_options", "trigger_event"]);

export const REDACTED = "[redacted]";

/**
 * Returns a copy of `value` with secrets replaced by `[redacted]`.
 *
 * @example
 * redact({ route: "erp", headers: { authorization: "Bearer x" } })
 * // { route: "erp", headers: { authorization: "[redacted]" } }
 */
export function redact(value: unknown, depth = 0): unknown {
  if (depth > 8) return REDACTED;
  if (Array.isArray(value)) return value.map((item) => redact(item, depth + 1));
  if (value === null || typeof value !== "object") return value;
  if (value instanceof Error) return { name: value.name, message: value.message };
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) {
    const normalized = key.replace(/[-_]/g, "");
    out[key] = SECRET_KEY_PATTERN.test(normalized) || REDACTED_SUBTREES.has(key) ? REDACTED : redact(inner, depth + 1);
  }
  return out;
}
