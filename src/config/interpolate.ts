/** A `${VAR}` without a default whose variable is not set. */
export class MissingVariableError extends Error {
  override name = "MissingVariableError";
  constructor(
    readonly variable: string,
    readonly isEmpty = false,
  ) {
    super(
      `environment variable ${variable} is ${isEmpty ? "empty" : "not set"} (use \${${variable}:-default} for a fallback)`,
    );
  }
}

const REFERENCE = /\$\$\{|\$\{([^}]*)\}/g;
const VARIABLE = /^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$/s;

/** A `${...}` that is not `${NAME}` or `${NAME:-default}`: a typo that would otherwise be sent on as text. */
export class InvalidReferenceError extends Error {
  override name = "InvalidReferenceError";
  constructor(readonly reference: string) {
    super(
      `"\${${reference}}" is not a valid reference: use \${NAME} or \${NAME:-default} (letters, digits, _), or $\${ for a literal`,
    );
  }
}

/**
 * Whether `text` holds a `${...}` reference (`$${`, a literal `${`, is none).
 *
 * @example
 * holdsReference("Bearer ${ERP_TOKEN}"); // true
 * holdsReference("costs $${PRICE}"); // false
 */
export function holdsReference(text: string): boolean {
  if (!text.includes("${")) return false;
  for (const match of text.matchAll(REFERENCE)) if (match[0] !== "$${") return true;
  return false;
}

/**
 * Replaces `${VAR}` and `${VAR:-default}` with values from `env`; `$${` stands for a literal `${`.
 * A missing or empty variable without a default is an error, never an empty string: an empty token
 * in a header would fail at 3 a.m. with a confusing 401 from the legacy system.
 *
 * @example
 * interpolateEnv("Bearer ${ERP_TOKEN}", { ERP_TOKEN: "t0k" }); // "Bearer t0k"
 */
export function interpolateEnv(text: string, env: Readonly<Record<string, string | undefined>>): string {
  if (!text.includes("${")) return text;
  return text.replace(REFERENCE, (whole, inner: string | undefined) => {
    if (whole === "$${") return "${";
    const parts = VARIABLE.exec(inner ?? "");
    if (!parts) throw new InvalidReferenceError(inner ?? "");
    const [, name, fallback] = parts;
    const value = env[name!];
    if (value !== undefined && value !== "") return value;
    if (fallback !== undefined) return fallback;
    throw new MissingVariableError(name!, value === "");
  });
}
