/** One thing wrong with a config file, located as precisely as the YAML allows. */
export interface ConfigProblem {
  readonly path: readonly PropertyKey[];
  readonly message: string;
  readonly line?: number;
  readonly column?: number;
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

/** `routes[1].target.url` */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const segment of path) {
    if (typeof segment === "number") out += `[${segment}]`;
    else out += out ? `.${String(segment)}` : String(segment);
  }
  return out || "(top level)";
}

/** `config.yaml:14:9 routes[1].target.url: must be an absolute http(s) URL` */
export function formatProblem(file: string, problem: ConfigProblem): string {
  const location = problem.line !== undefined ? `${file}:${problem.line}:${problem.column ?? 1}` : file;
  return `${location} ${formatPath(problem.path)}: ${problem.message}`;
}
