import { Buffer } from "node:buffer";
import { parseArgs } from "node:util";
import type { GatewayConfig } from "../config/schema.ts";
import { parseDuration } from "../kit/units.ts";
import { BULK_BATCH, deadLetterView, deliveryStatus } from "../server/admin-api.ts";
import type { DeadLetter, DeadLetterSummary, Store } from "../store/types.ts";
import { allPages, deliveryNote, events, formatColumns, withConfiguredStore } from "./store-command.ts";

const USAGE = `Usage:
  actiongate dlq list [--route <route>] [--json]
  actiongate dlq show <webhook-id>
  actiongate dlq replay <webhook-id> | --all [--route <route>]
  actiongate dlq purge <webhook-id> | --older-than <duration>`;

type DlqAction =
  | { readonly kind: "list"; readonly route?: string; readonly json: boolean }
  | { readonly kind: "show"; readonly id: string }
  | { readonly kind: "replay"; readonly id: string }
  | { readonly kind: "replay-all"; readonly route?: string }
  | { readonly kind: "purge"; readonly id: string }
  | { readonly kind: "purge-older"; readonly olderThanMs: number; readonly olderThan: string };

class DlqUsageError extends Error {
  override name = "DlqUsageError";
}

/**
 * `actiongate dlq ...`: looks at and acts on the dead letters of the store named in the config
 * (SQLite at store.path or PostgreSQL at store.url). Safe beside running gateways: SQLite's WAL lets
 * both open the file, PostgreSQL is shared anyway, and the gateways' workers pick replayed events up
 * from the outbox. A replay names what happens next: delivered by the running gateway, or waiting in
 * the outbox while none delivers from this store. Resolves with the exit code (0 ok, 1 failure,
 * unknown webhook-id or a route no longer configured, 2 wrong arguments).
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

  return withConfiguredStore("dlq", configFile, env, (store, config) => run(action, store, config));
}

async function run(action: DlqAction, store: Store, config: GatewayConfig): Promise<number> {
  const out = (text: string) => process.stdout.write(`${text}\n`);
  const fail = (text: string) => {
    process.stderr.write(`actiongate dlq: ${text}\n`);
    return 1;
  };
  const unknown = (id: string) => fail(`no dead letter with webhook-id "${id}"`);
  const configured = new Set(config.routes.map((route) => route.name));
  const notConfigured = (route: string) =>
    fail(
      `route "${route}" is not in the config: a replay would wait in the outbox for it. Add the route back, or purge the dead letter`,
    );
  const delivering = async () => deliveryStatus(await store.outbox.lastDelivering(), Date.now()).running;
  switch (action.kind) {
    case "list": {
      const route = action.route;
      const letters = await allPages((after) =>
        store.deadLetters.query({ limit: 1_000, ...(route ? { route } : {}), ...(after ? { after } : {}) }),
      );
      if (action.json)
        out(
          JSON.stringify(
            letters.map((letter) => deadLetterView(letter, configured)),
            null,
            2,
          ),
        );
      else out(letters.length === 0 ? "no dead letters" : formatTable(letters));
      return 0;
    }
    case "show": {
      const letter = await store.deadLetters.get(action.id);
      if (!letter) return unknown(action.id);
      out(JSON.stringify(describeDeadLetter(letter), null, 2));
      return 0;
    }
    case "replay": {
      const letter = await store.deadLetters.get(action.id);
      if (!letter) return unknown(action.id);
      if (!configured.has(letter.route)) return notConfigured(letter.route);
      if (!(await store.deadLetters.replay(action.id, Date.now()))) return unknown(action.id);
      out(`replayed 1 event: ${action.id}; ${deliveryNote(await delivering(), 1)}`);
      return 0;
    }
    case "replay-all": {
      const route = action.route;
      if (route !== undefined && !configured.has(route)) return notConfigured(route);
      const started = Date.now();
      // Only what was dead when the command began, of the routes the config has, one batch per transaction.
      const filter = { routes: [...configured], diedBefore: started, ...(route ? { route } : {}) };
      const skipped = Object.entries(await store.deadLetters.countByRoute({ diedBefore: started }))
        .filter(([name]) => !configured.has(name) && (route === undefined || name === route))
        .map(([name, count]) => `${name}: ${count}`);
      let replayed = 0;
      for (;;) {
        const count = await store.deadLetters.replayBatch(filter, Date.now(), BULK_BATCH);
        replayed += count;
        if (count < BULK_BATCH) break;
      }
      const note = replayed > 0 ? `; ${deliveryNote(await delivering(), replayed)}` : "";
      out(`replayed ${events(replayed)}${note}`);
      if (skipped.length > 0) {
        out(`left as dead letters, their routes are not in the config: ${skipped.join(", ")}`);
      }
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
      options: {
        all: { type: "boolean" },
        "older-than": { type: "string" },
        json: { type: "boolean" },
        route: { type: "string" },
      },
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
  if (values.json && verb !== "list") throw new DlqUsageError("--json is for list");
  const route = values.route;
  if (route !== undefined && verb !== "list" && !(verb === "replay" && values.all)) {
    throw new DlqUsageError("--route is for list and replay --all");
  }
  if (route === "") throw new DlqUsageError("--route needs a route name");

  switch (verb) {
    case "list":
      if (id !== undefined) throw new DlqUsageError(`unexpected argument "${id}"`);
      return { kind: "list", json: values.json ?? false, ...(route !== undefined ? { route } : {}) };
    case "show":
      if (id === undefined) throw new DlqUsageError("show needs a webhook-id");
      return { kind: "show", id };
    case "replay":
      if (values.all && id !== undefined) throw new DlqUsageError("give a webhook-id or --all, not both");
      if (values.all) return { kind: "replay-all", ...(route !== undefined ? { route } : {}) };
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

function formatTable(letters: readonly DeadLetterSummary[]): string {
  return formatColumns(
    ["WEBHOOK-ID", "ROUTE", "STAGE", "ATTEMPTS", "DIED AT", "REASON"],
    letters.map((letter) => [
      letter.id,
      letter.route,
      letter.stage,
      String(letter.attempts),
      new Date(letter.deadAt).toISOString(),
      oneLine(letter.reason),
    ]),
  );
}

/**
 * What `show` prints: what an operator needs to judge a replay (where it died, why, every attempt
 * with the target's status, URL and answer), and only the size of what is stored. Never a token, a
 * forwarded header or anything of the payload: the store keeps those encrypted, and a terminal, a
 * ticket or a shell history must not show them.
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
      // Where the request went (credentials hidden) and what the target answered (first KB, redacted).
      ...(attempt.url !== undefined ? { url: attempt.url } : {}),
      ...(attempt.answer !== undefined ? { answer: attempt.answer } : {}),
      ...(attempt.answerBytes !== undefined ? { answerBytes: attempt.answerBytes } : {}),
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
