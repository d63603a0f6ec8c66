import { parseArgs } from "node:util";

export type Command = "serve" | "validate" | "dlq" | "help" | "version";
const COMMANDS: readonly Command[] = ["serve", "validate", "dlq"];

export interface CliArguments {
  readonly command: Command;
  readonly configFile: string;
  /** For `dlq`: what follows the command (`replay --all`), checked by the dlq command itself. */
  readonly commandArguments?: readonly string[];
}

/** Wrong arguments; `main` prints the message with a pointer to --help and exits 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/**
 * Reads argv (without the executable): `[serve|validate] [--config <file>]`, `dlq <action> [...]`,
 * `--help`, `--version`. The config file defaults to `ACTIONGATE_CONFIG`, then `./config.yaml`.
 *
 * @example
 * parseCliArguments(["validate", "--config", "prod.yaml"], {}); // { command: "validate", configFile: "prod.yaml" }
 * parseCliArguments(["dlq", "replay", "--all"], {}); // { command: "dlq", configFile: "config.yaml", commandArguments: ["replay", "--all"] }
 */
export function parseCliArguments(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): CliArguments {
  // Only `dlq` knows --all and --older-than; every other command keeps refusing them as unknown options.
  const dlq = isDlq(argv);
  let parsed: ParsedOptions;
  try {
    parsed = parseOptions(argv, dlq);
  } catch (error) {
    throw new UsageError((error as Error).message.replace(/\. To specify a positional argument.*$/s, ""));
  }
  const { values, positionals } = parsed;
  const configFile = values.config ?? env.ACTIONGATE_CONFIG ?? "config.yaml";
  if (values.help) return { command: "help", configFile };
  if (values.version) return { command: "version", configFile };
  if (dlq) {
    if (values.config === "") throw new UsageError("--config needs a file name");
    const commandArguments = [
      ...positionals.slice(1),
      ...(values.all ? ["--all"] : []),
      ...(values["older-than"] !== undefined ? ["--older-than", values["older-than"]] : []),
    ];
    return { command: "dlq", configFile, commandArguments };
  }
  if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}"`);
  const command = positionals[0] ?? "serve";
  if (!COMMANDS.includes(command as Command)) throw new UsageError(`unknown command "${command}"`);
  if (values.config === "") throw new UsageError("--config needs a file name");
  return { command: command as Command, configFile };
}

const GLOBAL_OPTIONS = {
  config: { type: "string", short: "c" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "v" },
} as const;

const DLQ_OPTIONS = {
  all: { type: "boolean" },
  "older-than": { type: "string" },
} as const;

interface ParsedOptions {
  readonly values: { config?: string; help?: boolean; version?: boolean; all?: boolean; "older-than"?: string };
  readonly positionals: string[];
}

function parseOptions(argv: readonly string[], dlq: boolean): ParsedOptions {
  const args = [...argv];
  if (dlq) return parseArgs({ args, allowPositionals: true, strict: true, options: { ...GLOBAL_OPTIONS, ...DLQ_OPTIONS } });
  return parseArgs({ args, allowPositionals: true, strict: true, options: GLOBAL_OPTIONS });
}

/** Whether the first positional is `dlq` (a lenient pass, so that `--config x` is not taken for the command). */
function isDlq(argv: readonly string[]): boolean {
  const { positionals } = parseArgs({ args: [...argv], allowPositionals: true, strict: false, options: { ...GLOBAL_OPTIONS, ...DLQ_OPTIONS } });
  return positionals[0] === "dlq";
}

export const HELP_TEXT = `actiongate: verifies epilot custom actions and delivers them to legacy HTTP and SOAP systems

Usage:
  actiongate [serve] [--config <file>]   start the gateway (the default command)
  actiongate validate [--config <file>]  check a config file: exit 0 if valid, 1 with every problem otherwise
  actiongate dlq list                    dead letters of the store (store.path): webhook-id, route, stage, reason
  actiongate dlq show <webhook-id>       one dead letter as JSON with its attempt history (never the token)
  actiongate dlq replay <webhook-id>     put it back in the outbox with fresh attempts (works while serving)
  actiongate dlq replay --all            put every dead letter back
  actiongate dlq purge <webhook-id>      delete one dead letter
  actiongate dlq purge --older-than <d>  delete dead letters that died more than <d> ago (30d, 12h)
  actiongate --help | --version

Options:
  -c, --config <file>   config file (default: $ACTIONGATE_CONFIG, then ./config.yaml)
  -h, --help            show this help
  -v, --version         print the version

Exit codes: 0 ok, 1 invalid config, failure to start or unknown webhook-id, 2 wrong arguments.
Docs: docs/configuration.md (every config key), docs/operations.md`;
