import { parseArgs } from "node:util";

export type Command =
  | "serve"
  | "validate"
  | "dlq"
  | "outbox"
  | "keygen"
  | "send"
  | "routes"
  | "explain"
  | "test"
  | "init"
  | "help"
  | "version";
const COMMANDS: readonly Command[] = ["serve", "validate", "dlq"];

export interface CliArguments {
  readonly command: Command;
  readonly configFile: string;
  /** For `dlq` and `outbox`: what follows the command (`replay --all`), checked by that command itself. */
  readonly commandArguments?: readonly string[];
  /** For `serve`: reload when the config file changes (`--watch`). */
  readonly watch?: boolean;
  /** For `keygen`: print JSON instead of text (`--json`). */
  readonly json?: boolean;
  /** For `send`: what to sign and where to send it. */
  readonly send?: SendArguments;
  /** For `explain`: the payload file, the route, the output form. */
  readonly explain?: ExplainArguments;
  /** For `test`: the test files and folders given (none: every *.test.yaml beside the config). */
  readonly testPaths?: readonly string[];
  /** For `init`: the folder to write the starter files into (`.` when not given). */
  readonly initFolder?: string;
  /** For `validate`: also run the route tests beside the config (`--with-tests`). */
  readonly withTests?: boolean;
}

/** `actiongate explain --payload <file.json> [--route <name>] [--json]` */
export interface ExplainArguments {
  readonly payloadFile: string;
  readonly route?: string;
  readonly json: boolean;
}

/** `actiongate send --route <name> --payload <file> --key <whsk_|file> | --secret <whsec_> [--url <base>]` */
export interface SendArguments {
  readonly route: string;
  readonly payloadFile: string;
  /** whsk_... or a file holding it (or a PEM private key): signs v1a. */
  readonly key?: string;
  /** whsec_...: signs v1. */
  readonly secret?: string;
  /** The gateway's base URL; from the config's server.host/port when absent. */
  readonly url?: string;
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
export function parseCliArguments(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): CliArguments {
  const tool = toolCommand(argv);
  if (tool) return parseToolArguments(tool, argv, env);
  // Only `dlq` and `outbox` know --all, --older-than, --json and --route; every other command keeps refusing them.
  const storeCommand = storeCommandOf(argv);
  const dlq = storeCommand !== undefined;
  const { values, positionals } = asUsageError(() => parseOptions(argv, dlq));
  const configFile = values.config ?? env.ACTIONGATE_CONFIG ?? "config.yaml";
  if (values.help) return { command: "help", configFile };
  if (values.version) return { command: "version", configFile };
  if (values.watch && (dlq || (positionals[0] ?? "serve") !== "serve"))
    throw new UsageError("--watch works only with serve");
  if (values["with-tests"] && (dlq || positionals[0] !== "validate"))
    throw new UsageError("--with-tests works only with validate");
  if (dlq) {
    if (values.config === "") throw new UsageError("--config needs a file name");
    const commandArguments = [
      ...positionals.slice(1),
      ...(values.all ? ["--all"] : []),
      ...(values["older-than"] !== undefined ? ["--older-than", values["older-than"]] : []),
      ...(values.json ? ["--json"] : []),
      ...(values.route !== undefined ? ["--route", values.route] : []),
    ];
    return { command: storeCommand, configFile, commandArguments };
  }
  if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}"`);
  const command = positionals[0] ?? "serve";
  if (!COMMANDS.includes(command as Command)) throw new UsageError(`unknown command "${command}"`);
  if (values.config === "") throw new UsageError("--config needs a file name");
  return {
    command: command as Command,
    configFile,
    ...(values.watch ? { watch: true } : {}),
    ...(values["with-tests"] ? { withTests: true } : {}),
  };
}

const GLOBAL_OPTIONS = {
  config: { type: "string", short: "c" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "v" },
  watch: { type: "boolean" },
  "with-tests": { type: "boolean" },
} as const;

const DLQ_OPTIONS = {
  all: { type: "boolean" },
  "older-than": { type: "string" },
  json: { type: "boolean" },
  route: { type: "string" },
} as const;

interface ParsedOptions {
  readonly values: {
    config?: string;
    help?: boolean;
    version?: boolean;
    watch?: boolean;
    "with-tests"?: boolean;
    all?: boolean;
    "older-than"?: string;
    json?: boolean;
    route?: string;
  };
  readonly positionals: string[];
}

function parseOptions(argv: readonly string[], dlq: boolean): ParsedOptions {
  const args = [...argv];
  if (dlq)
    return parseArgs({ args, allowPositionals: true, strict: true, options: { ...GLOBAL_OPTIONS, ...DLQ_OPTIONS } });
  return parseArgs({ args, allowPositionals: true, strict: true, options: GLOBAL_OPTIONS });
}

/** `dlq` or `outbox` when the first positional names one (a lenient pass, so that `--config x` is not taken for the command). */
function storeCommandOf(argv: readonly string[]): "dlq" | "outbox" | undefined {
  const { positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: false,
    options: { ...GLOBAL_OPTIONS, ...DLQ_OPTIONS },
  });
  const first = positionals[0];
  return first === "dlq" || first === "outbox" ? first : undefined;
}

export const HELP_TEXT = `actiongate: verifies epilot custom actions and delivers them to legacy HTTP and SOAP systems

Usage:
  actiongate [serve] [--config <file>] [--watch]
                                         start the gateway (the default command); SIGHUP reloads the config,
                                         --watch also reloads it when the file changes
  actiongate validate [--config <file>] [--with-tests]
                                         check a config file: exit 0 if valid, 1 with every problem otherwise;
                                         --with-tests also runs the route tests beside it
  actiongate dlq list [--route <r>] [--json]
                                         dead letters of the store: webhook-id, route, stage, reason
  actiongate dlq show <webhook-id>       one dead letter as JSON with its attempt history: the target's status,
                                         URL and answer (first KB, redacted); never the token or the payload
  actiongate dlq replay <webhook-id>     put it back in the outbox with fresh attempts (works while serving)
  actiongate dlq replay --all [--route <r>]
                                         put every dead letter (of a route) back, routes still configured only
  actiongate dlq purge <webhook-id>      delete one dead letter
  actiongate dlq purge --older-than <d>  delete dead letters that died more than <d> ago (30d, 12h)
  actiongate outbox list [--route <r>] [--json]
                                         events waiting for delivery: webhook-id, route, stage, attempts, next
                                         attempt, last error; says whether a gateway delivers from the store now
  actiongate outbox dead-letter --route <r>
                                         move the waiting events of a route that is no longer configured to the
                                         dead letters
  actiongate routes [--config <file>]    list the routes: match, target (credentials hidden), delivery mode
  actiongate init [folder]               write a starter gateway into folder (default: here): config.yaml with
                                         one route, a new key pair (secret half in signing-key, mode 0600), the
                                         example payload and a route test; never over existing files (exit 2)
  actiongate keygen [--json]             print a new Ed25519 pair: whsk_ (for send --key), whpk_ and PEM (for
                                         verification.public_key)
  actiongate send --route <name> --payload <file.json> (--key <whsk_...|file> | --secret <whsec_...>)
                  [--url <http://host:port>] [--config <file>]
                                         sign the payload as epilot does and call the running gateway; prints the
                                         status and the answer; exit 0 on 2xx, 1 otherwise. The URL defaults to
                                         the config's server.host and server.port
  actiongate explain --payload <file.json> [--route <name>] [--json] [--config <file>]
                                         what the route for a payload would send, without sending it (credentials
                                         as ***); exit 0 when a route handles it, 1 when none does or a stage fails
  actiongate test [--config <file>] [<test file or folder>...]
                                         run route tests (*.test.yaml; by default those in the config's folder
                                         and below) in process, each target answering as the test says; exit 0
                                         when all pass, 1 when any fails
  actiongate --help | --version

Options:
  -c, --config <file>   config file (default: $ACTIONGATE_CONFIG, then ./config.yaml)
  -h, --help            show this help
  -v, --version         print the version
      --watch           serve: reload the config when its file changes
      --with-tests      validate: also run the route tests beside the config

Exit codes: 0 ok, 1 invalid config, failure to start, unknown webhook-id or a non-2xx answer to send,
2 wrong arguments or files init would overwrite.
Docs: docs/configuration.md (every config key), docs/writing-a-route.md, docs/operations.md`;

/** Commands for trying routes by hand; each takes its own options besides --config/--help. */
type ToolCommand = "keygen" | "send" | "routes" | "explain" | "test" | "init";

const TOOL_OPTIONS = {
  keygen: { json: { type: "boolean" } },
  send: {
    route: { type: "string" },
    payload: { type: "string" },
    key: { type: "string" },
    secret: { type: "string" },
    url: { type: "string" },
  },
  routes: {},
  explain: { payload: { type: "string" }, route: { type: "string" }, json: { type: "boolean" } },
  test: {},
  init: {},
} as const;

/** The tool command named by the first positional argument, if any. */
function toolCommand(argv: readonly string[]): ToolCommand | undefined {
  const { positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: false,
    options: { config: { type: "string", short: "c" } },
  });
  const first = positionals[0];
  const tools: readonly string[] = Object.keys(TOOL_OPTIONS);
  return first !== undefined && tools.includes(first) ? (first as ToolCommand) : undefined;
}

function parseToolArguments(
  tool: ToolCommand,
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): CliArguments {
  const parsed = asUsageError(() =>
    parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: { config: GLOBAL_OPTIONS.config, help: GLOBAL_OPTIONS.help, ...TOOL_OPTIONS[tool] },
    }),
  );
  const values = parsed.values as Record<string, string | boolean | undefined>;
  const configFile = (values.config as string | undefined) ?? env.ACTIONGATE_CONFIG ?? "config.yaml";
  if (values.help) return { command: "help", configFile };
  if (tool === "init") {
    if (values.config !== undefined)
      throw new UsageError("init writes config.yaml into the folder it is given: actiongate init [folder]");
    if (parsed.positionals.length > 2) throw new UsageError(`unexpected argument "${parsed.positionals[2]}"`);
    const folder = parsed.positionals[1];
    if (folder === "") throw new UsageError("init needs a folder name (or none, for the current folder)");
    return { command: tool, configFile, ...(folder !== undefined ? { initFolder: folder } : {}) };
  }
  if (values.config === "") throw new UsageError("--config needs a file name");
  if (tool === "test") return { command: tool, configFile, testPaths: parsed.positionals.slice(1) };
  if (parsed.positionals.length > 1) throw new UsageError(`unexpected argument "${parsed.positionals[1]}"`);
  if (tool === "explain") return { command: tool, configFile, explain: explainArguments(values) };
  if (tool === "keygen") return { command: tool, configFile, ...(values.json ? { json: true } : {}) };
  if (tool === "routes") return { command: tool, configFile };
  const text = (name: string): string | undefined => {
    const value = values[name] as string | undefined;
    if (value === "") throw new UsageError(`--${name} needs a value`);
    return value;
  };
  const route = text("route");
  const payloadFile = text("payload");
  if (!route) throw new UsageError("send needs --route <name>");
  if (!payloadFile) throw new UsageError("send needs --payload <file.json>");
  const key = text("key");
  const secret = text("secret");
  if (!key && !secret)
    throw new UsageError("send needs --key <whsk_...|file> (Ed25519, as epilot signs) or --secret <whsec_...> (HMAC)");
  const url = text("url");
  if (url !== undefined && !/^https?:\/\/[^/]/.test(url))
    throw new UsageError("--url must be an http(s) URL such as http://127.0.0.1:8080");
  const send: SendArguments = {
    route,
    payloadFile,
    ...(key ? { key } : {}),
    ...(secret ? { secret } : {}),
    ...(url ? { url } : {}),
  };
  return { command: tool, configFile, send };
}

function explainArguments(values: Record<string, string | boolean | undefined>): ExplainArguments {
  const payloadFile = values.payload as string | undefined;
  const route = values.route as string | undefined;
  if (!payloadFile) throw new UsageError("explain needs --payload <file.json>");
  if (route === "") throw new UsageError("--route needs a route name");
  return { payloadFile, ...(route !== undefined ? { route } : {}), json: values.json === true };
}

/** Runs `node:util`'s parseArgs; its errors become a {@link UsageError} without its hint about `--`. */
function asUsageError<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    throw new UsageError((error as Error).message.replace(/\. To specify a positional argument.*$/s, ""));
  }
}
