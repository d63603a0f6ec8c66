/** A `${VAR}` without a default whose variable is not set. */
export class MissingVariableError extends Error {
  override name = "MissingVariableError";
  constructor(
    readonly variable: string,
    readonly isEmpty = false,
  ) {
    super(
      `environment variable ${variable} is ${isEmpty ? "empty" : "not set"} (set it, or write \${${variable}:-default} where a default is safe)`,
    );
  }
}

const REFERENCE = /\$\$\{|\$\{([^}]*)\}/g;
/** The same, and `$$NAME` for a literal `$NAME` (in values that are not JSONata, see {@link findBareVariable}). */
const REFERENCE_OR_LITERAL_DOLLAR = /\$\$\{|\$\$(?=[A-Z])|\$\{([^}]*)\}/g;
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
export function interpolateEnv(
  text: string,
  env: Readonly<Record<string, string | undefined>>,
  options: { literalDollar?: boolean } = {},
): string {
  if (!text.includes("${") && !(options.literalDollar && text.includes("$$"))) return text;
  return text.replace(
    options.literalDollar ? REFERENCE_OR_LITERAL_DOLLAR : REFERENCE,
    (whole, inner: string | undefined) => {
      if (whole === "$${") return "${";
      if (whole === "$$") return "$";
      const parts = VARIABLE.exec(inner ?? "");
      if (!parts) throw new InvalidReferenceError(inner ?? "");
      const [, name, fallback] = parts;
      const value = env[name!];
      if (value !== undefined && value !== "") return value;
      if (fallback !== undefined) return fallback;
      throw new MissingVariableError(name!, value === "");
    },
  );
}

/** `$NAME` in a value where `${NAME}` was meant: sent on as the literal text, it would fail far from here. */
export class BareVariableError extends Error {
  override name = "BareVariableError";
  constructor(readonly variable: string) {
    super(
      `"$${variable}" is not read from the environment: write \${${variable}} (or $$${variable} for the text "$${variable}")`,
    );
  }
}

const BARE_VARIABLE = /(\$+)([A-Z][A-Z0-9_]*)(?![A-Za-z0-9_])/g;
const PLACEHOLDER = /\{\{[\s\S]*?\}\}/g;

/**
 * The first `$NAME` (a `$` and a name in capitals) in a config value that is not JSONata, outside
 * its `{{ }}` placeholders (whose content is JSONata, where `$name` is a function or variable).
 * `$$NAME` is the way to write the text `$NAME`. Lower-case and mixed names (`$string`, `$Total`)
 * are never taken for variables.
 *
 * @example
 * findBareVariable("Bearer $ERP_TOKEN"); // "ERP_TOKEN"
 * findBareVariable("Bearer ${ERP_TOKEN}"); // undefined
 * findBareVariable("/api/{{ $uppercase(data.id) }}"); // undefined
 */
export function findBareVariable(text: string): string | undefined {
  if (!text.includes("$")) return undefined;
  const outside = text.replace(PLACEHOLDER, (placeholder) => " ".repeat(placeholder.length));
  for (const match of outside.matchAll(BARE_VARIABLE)) {
    // An even run of `$` is that many halves of literal dollars: `$$NAME` is the text `$NAME`.
    if (match[1]!.length % 2 === 1) return match[2];
  }
  return undefined;
}
