#!/usr/bin/env bun
import { type CliArguments, HELP_TEXT, parseCliArguments, UsageError } from "./cli/args.ts";
import { dlqCommand } from "./cli/dlq.ts";
import { explainCommand } from "./cli/explain.ts";
import { initCommand } from "./cli/init.ts";
import { keygenCommand } from "./cli/keygen.ts";
import { outboxCommand } from "./cli/outbox.ts";
import { routesCommand } from "./cli/routes.ts";
import { sendCommand } from "./cli/send.ts";
import { serveCommand } from "./cli/serve.ts";
import { testCommand } from "./cli/test.ts";
import { validateCommand } from "./cli/validate.ts";
import { VERSION } from "./kit/version.ts";

async function main(argv: readonly string[]): Promise<number> {
  let args: CliArguments;
  try {
    args = parseCliArguments(argv, process.env);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`actiongate: ${error.message}\nRun "actiongate --help" for usage.\n`);
    return 2;
  }
  switch (args.command) {
    case "help":
      process.stdout.write(`${HELP_TEXT}\n`);
      return 0;
    case "version":
      process.stdout.write(`actiongate ${VERSION}\n`);
      return 0;
    case "validate":
      return validateCommand(args.configFile, process.env, { withTests: args.withTests ?? false });
    case "serve":
      return serveCommand(args.configFile, process.env, { watch: args.watch ?? false });
    case "dlq":
      return dlqCommand(args.commandArguments ?? [], args.configFile, process.env);
    case "outbox":
      return outboxCommand(args.commandArguments ?? [], args.configFile, process.env);
    case "keygen":
      return keygenCommand({ json: args.json ?? false });
    case "routes":
      return routesCommand(args.configFile, process.env);
    case "send":
      return sendCommand(args.send!, args.configFile, process.env);
    case "explain":
      return explainCommand(args.explain!, args.configFile, process.env);
    case "test":
      return testCommand(args.testPaths ?? [], args.configFile);
    case "init":
      // Run through `npx actiongate` (npm sets npm_command), the commands it prints are typed the same way.
      return initCommand({
        folder: args.initFolder ?? ".",
        command: process.env.npm_command === "exec" ? "npx actiongate" : "actiongate",
      });
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`actiongate: unexpected failure: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
