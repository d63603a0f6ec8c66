import { Buffer } from "node:buffer";
import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { loadConfigFile } from "../config/load.ts";
import { parseDuration } from "../kit/units.ts";
import { createLogger } from "../log/logger.ts";
import { openStore } from "../store/open.ts";
import { storeFiles } from "../store/sqlite-files.ts";
import { StoreOpenError } from "../store/store-open-error.ts";
import type { DeadLetter, Store } from "../store/types.ts";
import { reportConfigError } from "./report-config-error.ts";

const USAGE = `Usage:
  actiongate dlq list
  actiongate dlq show <webhook-id>
  actiongate dlq replay <webhook-id> | --all
  actiongate dlq purge <webhook-id> | --older-than <duration>`;

type DlqAction =
  | { readonly kind: "list" }
  | { readonly kind: "show"; readonly id: string }
  | { readonly kind: "replay"; readonly id: string }
  | { readonly kind: "replay-all" }
  | { readonly kind: "purge"; readonly id: string }
  | { readonly kind: "purge-older"; readonly olderThanMs: number; readonly olderThan: string };

class DlqUsageError extends Error {
  override name = "DlqUsageError";
}

/**
 * `actiongate dlq ...`: looks at and acts on the dead letters of the store named in the config
 * (SQLite at store.path or PostgreSQL at store.url). Safe beside running gateways: SQLite's WAL lets
 * both open the file, PostgreSQL is shared anyway, and the gateways' workers pick replayed events up
 * from the outbox. Resolves with the exit code (0 ok, 1 failure or unknown
 * webhook-id, 2 wrong arguments).
 *
 * @example
 * await dlqCommand(["replay", "--all"], "config.yaml", process.env); // prints "replayed 3 events"
 */
export async function dlqCommand(
  args: readonly string[],
  configFile: string,
  env: Readonly<Record<string, string | undefined>>,
): Promise<number> {
  let action: DlqAction;
  try {
    action = parseDlqArguments(args);
  } catch (error) {
    if (!(error instanceof DlqUsageError)) throw error;
    process.stderr.write(`actiongate dlq: ${error.message}\n${USAGE}\n`);
    return 2;
  }

  const loaded = reportConfigError(() => loadConfigFile(configFile, env));
  if (!loaded) return 1;
  const storeConfig = loaded.config.store;
  if (!storeConfig) {
    process.stderr.write(
      `actiongate dlq: ${configFile} has no store (store.path or store.url); dead letters exist only with a store\n`,
    );
    return 1;
  }
  const configDir = dirname(resolve(configFile));
  if (storeConfig.path) {
    // Relative to the config file, like every other file the config names.
    const path = resolve(configDir, storeConfig.path);
    // Opening would create an empty store; one that was created and is now lost is refused by the store itself.
    if (!existsSync(path) && !existsSync(storeFiles(path).marker)) {
      process.stderr.write(`actiongate dlq: no store at ${path} (store.path); the gateway creates it when it starts\n`);
      return 1;
    }
  }

  let store: Store;
  try {
    // The gateway may be running: its leases are its events in flight and must stay. The store's own
    // warnings (database not reachable) surface as the error of the command below.
    store = await openStore(loaded.config, configDir, createLogger({ level: "error", sink: () => {} }), {
      releaseLeases: false,
    });
  } catch (error) {
    if (!(error instanceof StoreOpenError)) throw error;
    process.stderr.write(`actiongate dlq: ${error.message}\n`);
    return 1;
  }
  try {
    return await run(action, store);
  } catch (error) {
    // The store failed during the command (PostgreSQL unreachable, a newer schema): say so, exit 1.
    process.stderr.write(`actiongate dlq: the store failed: ${(error as Error).message}\n`);
    return 1;
  } finally {
    await store.close();
  }
}

async function run(action: DlqAction, store: Store): Promise<number> {
  const out = (text: string) => process.stdout.write(`${text}\n`);
  const unknown = (id: string) => {
    process.stderr.write(`actiongate dlq: no dead letter with webhook-id "${id}"\n`);
    return 1;
  };
  switch (action.kind) {
    case "list": {
      const letters = await store.deadLetters.list();
      out(letters.length === 0 ? "no dead letters" : formatTable(letters));
      return 0;
    }
    case "show": {
      const letter = await store.deadLetters.get(action.id);
      if (!letter) return unknown(action.id);
      out(JSON.stringify(describeDeadLetter(letter), null, 2));
      return 0;
    }
    case "replay": {
      if (!(await store.deadLetters.replay(action.id, Date.now()))) return unknown(action.id);
      out(`replayed 1 event: ${action.id}`);
      return 0;
    }
    case "replay-all": {
      out(`replayed ${events(await store.deadLetters.replayAll(Date.now()))}`);
      return 0;
    }
    case "purge": {
      if (!(await store.deadLetters.purge(action.id))) return unknown(action.id);
      out(`purged 1 event: ${action.id}`);
      return 0;
    }
    case "purge-older": {
      const purged = await store.deadLetters.purgeOlderThan(Date.now() - action.olderThanMs);
      out(`purged ${events(purged)} older than ${action.olderThan}`);
      return 0;
    }
  }
}

function readDlqOptions(args: readonly string[]) {
  try {
    return parseArgs({
      args: [...args],
      allowPositionals: true,
      strict: true,
      options: { all: { type: "boolean" }, "older-than": { type: "string" } },
    });
  } catch (error) {
    throw new DlqUsageError((error as Error).message.replace(/\. To specify a positional argument.*$/s, ""));
  }
}

function parseDlqArguments(args: readonly string[]): DlqAction {
  const { values, positionals } = readDlqOptions(args);
  const [verb, id, extra] = positionals;
  if (verb === undefined) throw new DlqUsageError("which action? list, show, replay or purge");
  if (extra !== undefined) throw new DlqUsageError(`unexpected argument "${extra}"`);
  if (values.all && verb !== "replay") throw new DlqUsageError("--all is for replay");
  if (values["older-than"] !== undefined && verb !== "purge") throw new DlqUsageError("--older-than is for purge");

  switch (verb) {
    case "list":
      if (id !== undefined) throw new DlqUsageError(`unexpected argument "${id}"`);
      return { kind: "list" };
    case "show":
      if (id === undefined) throw new DlqUsageError("show needs a webhook-id");
      return { kind: "show", id };
    case "replay":
      if (values.all && id !== undefined) throw new DlqUsageError("give a webhook-id or --all, not both");
      if (values.all) return { kind: "replay-all" };
      if (id === undefined) throw new DlqUsageError("replay needs a webhook-id or --all");
      return { kind: "replay", id };
    case "purge": {
      const olderThan = values["older-than"];
      if (olderThan !== undefined && id !== undefined)
        throw new DlqUsageError("give a webhook-id or --older-than, not both");
      if (olderThan !== undefined) {
        const ms = parseDuration(olderThan);
        if (ms === undefined)
          throw new DlqUsageError(`--older-than must be a duration such as 30d, 12h or 90m (got "${olderThan}")`);
        return { kind: "purge-older", olderThanMs: ms, olderThan: olderThan.trim() };
      }
      if (id === undefined) throw new DlqUsageError("purge needs a webhook-id or --older-than <duration>");
      return { kind: "purge", id };
    }
    default:
      throw new DlqUsageError(`unknown action "${verb}"`);
  }
}

function events(count: number): string {
  return `${count} event${count === 1 ? "" : "s"}`;
}

function formatTable(letters: readonly DeadLetter[]): string {
  const header = ["WEBHOOK-ID", "ROUTE", "STAGE", "ATTEMPTS", "DIED AT", "REASON"];
  const rows = letters.map((letter) => [
    letter.id,
    letter.route,
    letter.stage,
    String(letter.attempts),
    new Date(letter.deadAt).toISOString(),
    oneLine(letter.reason),
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  return [header, ...rows]
    .map((cells) =>
      cells
        .map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column]!)))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/**
 * What `show` prints: what an operator needs to judge a replay (where it died, why, every attempt),
 * and only the size of what is stored. Never a token, a forwarded header or anything of the payload:
 * the store keeps those encrypted, and a terminal, a ticket or a shell history must not show them.
 */
function describeDeadLetter(letter: DeadLetter) {
  return {
    webhookId: letter.id,
    route: letter.route,
    stage: letter.stage,
    attempts: letter.attempts,
    createdAt: new Date(letter.createdAt).toISOString(),
    diedAt: new Date(letter.deadAt).toISOString(),
    reason: letter.reason,
    history: letter.history.map((attempt) => ({
      at: new Date(attempt.at).toISOString(),
      stage: attempt.stage,
      outcome: attempt.outcome,
      ...(attempt.status !== undefined ? { status: attempt.status } : {}),
      ...(attempt.error !== undefined ? { error: attempt.error } : {}),
    })),
    stored: {
      dataBytes: Buffer.byteLength(letter.data, "utf8"),
      secrets: letter.secret !== undefined,
      stageData: letter.stageData !== undefined,
    },
  };
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}
