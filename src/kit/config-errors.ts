/** One thing wrong with a config file, located as precisely as the YAML allows. */
export interface ConfigProblem {
  readonly path: readonly PropertyKey[];
  readonly message: string;
  readonly line?: number;
  readonly column?: number;
  /** The path as shown, when it says more than {@link formatPath}: `routes[4] (mapped).transform`. */
  readonly pathText?: string;
  /** Set when the problem is an environment variable that is not set: its name. */
  readonly variable?: string;
}

/** A config that cannot be used; carries every problem found, not only the first. */
export class ConfigError extends Error {
  override name = "ConfigError";
  constructor(
    readonly file: string,
    readonly problems: readonly ConfigProblem[],
  ) {
    super(problems.map((problem) => formatProblem(file, problem)).join("\n"));
  }
}

/**
 * Thrown while compiling a config (JSONata, templates, key files, target set-up) for what the
 * schema cannot check; `path` is relative to the part being compiled and is prefixed by the caller.
 */
export class InvalidConfigValue extends Error {
  override name = "InvalidConfigValue";
  constructor(
    message: string,
    readonly path: readonly PropertyKey[] = [],
  ) {
    super(message);
  }
}

/** `routes[1].target.url`; empty for the whole file. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const segment of path) {
    if (typeof segment === "number") out += `[${segment}]`;
    else {
      // A key with a line break (a broken file's) must not break the one-line message.
      // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is what it is for.
      const text = String(segment).replace(/[\x00-\x1f\x7f]/g, (char) => JSON.stringify(char).slice(1, -1));
      out += out ? `.${text}` : text;
    }
  }
  return out;
}

/**
 * `config.yaml:14:9 routes[1] (erp).target.url: must be an absolute http(s) URL`; a problem of the
 * whole file (a YAML syntax error, a missing file) has no key path: `config.yaml:3:5: ...`.
 */
export function formatProblem(file: string, problem: ConfigProblem): string {
  const location = problem.line !== undefined ? `${file}:${problem.line}:${problem.column ?? 1}` : file;
  const path = problem.pathText ?? formatPath(problem.path);
  return path ? `${location} ${path}: ${problem.message}` : `${location}: ${problem.message}`;
}

/**
 * Names the route of every problem under `routes[i]`, so that a long file's message says which
 * route it is about: `routes[4] (mapped).transform`. `names[i]` is route i's name, when it has one.
 *
 * @example
 * withRouteNames([{ path: ["routes", 0, "transform"], message: "..." }], ["erp"]); // pathText "routes[0] (erp).transform"
 */
export function withRouteNames(
  problems: readonly ConfigProblem[],
  names: readonly (string | undefined)[],
): ConfigProblem[] {
  return problems.map((problem) => {
    const [section, index, ...rest] = problem.path;
    const name = section === "routes" && typeof index === "number" ? names[index] : undefined;
    if (name === undefined || problem.pathText !== undefined) return problem;
    const tail = formatPath(rest);
    const pathText = `routes[${String(index)}] (${name})${tail === "" ? "" : tail.startsWith("[") ? tail : `.${tail}`}`;
    return { ...problem, pathText };
  });
}
