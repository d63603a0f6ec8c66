/** A `${VAR}` without a default whose variable is not set. */
export class MissingVariableError extends Error {
  override name = "MissingVariableError";
  constructor(readonly variable: string) {
    super(`environment variable ${variable} is not set (use \${${variable}:-default} for a fallback)`);
  }
}

const REFERENCE = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * Replaces `${VAR}` and `${VAR:-default}` with values from `env`; `$${` stands for a literal `${`.
 * A missing variable without a default is an error, never an empty string: an empty token in a
 * header would fail at 3 a.m. with a confusing 401 from the legacy system.
 *
 * @example
 * interpolateEnv("Bearer ${ERP_TOKEN}", { ERP_TOKEN: "t0k" }); // "Bearer t0k"
 */
export function interpolateEnv(text: string, env: Readonly<Record<string, string | undefined>>): string {
  if (!text.includes("${")) return text;
  return text.replace(REFERENCE, (whole, name: string | undefined, fallback: string | undefined) => {
    if (whole === "$${") return "${";
    const value = env[name!];
    if (value !== undefined && value !== "") return value;
    if (fallback !== undefined) return fallback;
    if (value === "") return value;
    throw new MissingVariableError(name!);
  });
}
