import { parseArgs } from "node:util";

export type Command = "serve" | "validate" | "help" | "version";
const COMMANDS: readonly Command[] = ["serve", "validate"];

export interface CliArguments {
  readonly command: Command;
  readonly configFile: string;
}

/** Wrong arguments; `main` prints the message with a pointer to --help and exits 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/**
 * Reads argv (without the executable): `[serve|validate] [--config <file>]`, `--help`, `--version`.
 * The config file defaults to `ACTIONGATE_CONFIG`, then `./config.yaml`.
 *
 * @example
 * parseCliArguments(["validate", "--config", "prod.yaml"], {}); // { command: "validate", configFile: "prod.yaml" }
 */
export function parseCliArguments(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): CliArguments {
  let parsed: ReturnType<typeof parseOptions>;
  try {
    parsed = parseOptions(argv);
  } catch (error) {
    throw new UsageError((error as Error).message.replace(/\. To specify a positional argument.*$/s, ""));
  }
  const { values, positionals } = parsed;
  const configFile = values.config ?? env.ACTIONGATE_CONFIG ?? "config.yaml";
  if (values.help) return { command: "help", configFile };
  if (values.version) return { command: "version", configFile };
  if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}"`);
  const command = positionals[0] ?? "serve";
  if (!COMMANDS.includes(command as Command)) throw new UsageError(`unknown command "${command}"`);
  if (values.config === "") throw new UsageError("--config needs a file name");
  return { command: command as Command, configFile };
}

function parseOptions(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      config: { type: "string", short: "c" },
      help: { type: "boolean", short: "h" },
      version: { type: "boolean", short: "v" },
    },
  });
}

export const HELP_TEXT = `actiongate: verifies epilot custom actions and delivers them to legacy HTTP systems

Usage:
  actiongate [serve] [--config <file>]   start the gateway (the default command)
  actiongate validate [--config <file>]  check a config file: exit 0 if valid, 1 with every problem otherwise
  actiongate --help | --version

Options:
  -c, --config <file>   config file (default: $ACTIONGATE_CONFIG, then ./config.yaml)
  -h, --help            show this help
  -v, --version         print the version

Exit codes: 0 ok, 1 invalid config or failure to start, 2 wrong arguments.
Docs: docs/configuration.md (every config key), docs/operations.md`;
