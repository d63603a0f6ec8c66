import { loadConfigFile } from "../config/load.ts";
import { compileConfig, describeTrustedKeys } from "../gateway/compile.ts";
import { USER_AGENT } from "../kit/version.ts";
import { silentLogger } from "../log/logger.ts";
import { type CommandOutput, processOutput } from "./explain.ts";
import { reportConfigError } from "./report-config-error.ts";
import { runRouteTests } from "./test.ts";

/**
 * `actiongate validate`: loads and compiles the config exactly as `serve` would (JSONata, key files,
 * targets) without listening. Prints a summary (exit 0): the routes, and which signatures and keys are
 * trusted; or one line per problem (exit 1). With `withTests`, a valid config's route tests (every
 * `*.test.yaml` beside it and below) run too, as `actiongate test` runs them: exit 0 only when all
 * pass, so one command checks a deployment.
 *
 * @example
 * await validateCommand("config.yaml", process.env, { withTests: true });
 * // config.yaml: valid, 1 route: erp-contract (http)
 * // config.yaml: trusts v1a (Ed25519) with verification.public_key; not epilot's key (...)
 */
export async function validateCommand(
  configFile: string,
  env: Readonly<Record<string, string | undefined>>,
  options: { readonly withTests?: boolean } = {},
  output: CommandOutput = processOutput,
): Promise<number> {
  const compiled = reportConfigError(() =>
    compileConfig(loadConfigFile(configFile, env), { logger: silentLogger, userAgent: USER_AGENT }),
  );
  if (!compiled) return 1;
  const routes = compiled.routes.map((route) => `${route.name} (${route.targetType})`).join(", ");
  await compiled.close();
  output.stdout(
    `${configFile}: valid, ${compiled.routes.length} route${compiled.routes.length === 1 ? "" : "s"}: ${routes}\n` +
      `${configFile}: ${describeTrustedKeys(compiled.verification.trusted)}\n`,
  );
  if (!options.withTests) return 0;
  // A test file that cannot be used, or none at all, fails the check like a failing test does.
  const tests = await runRouteTests(configFile, [], output);
  return tests.exitCode === 0 ? 0 : 1;
}
