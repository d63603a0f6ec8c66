import { ConfigError } from "../kit/config-errors.ts";

/**
 * Runs a config step for a command; a {@link ConfigError} is printed to stderr, one problem a
 * line, and comes back as `undefined` so the command exits 1. Any other error is a bug and is rethrown.
 *
 * @example
 * const loaded = reportConfigError(() => loadConfigFile(file, env));
 * if (!loaded) return 1;
 */
export function reportConfigError<T>(step: () => T): T | undefined {
  try {
    return step();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    return undefined;
  }
}
