import { parseArgs } from "node:util";
import type { GatewayConfig } from "../config/schema.ts";
import { BULK_BATCH, deliveryStatus, pendingView } from "../server/admin-api.ts";
import type { PendingEventSummary, Store } from "../store/types.ts";
import { allPages, events, formatColumns, withConfiguredStore } from "./store-command.ts";

const USAGE = `Usage:
  actiongate outbox list [--route <route>] [--json]
  actiongate outbox dead-letter --route <route>`;

type OutboxAction =
  | { readonly kind: "list"; readonly route?: string; readonly json: boolean }
  | { readonly kind: "dead-letter"; readonly route: string };

class OutboxUsageError extends Error {
  override name = "OutboxUsageError";
}

/**
 * `actiongate outbox ...`: the events waiting for delivery in the store the config names, and a way
 * out for the events of a route the config no longer has (they wait for it otherwise): `dead-letter`
 * moves them to the dead letters, from where they can be replayed once the route is back. `list` says
 * whether a gateway delivers from this store now. Safe beside running gateways (events in flight
 * keep their lease). Resolves with the exit code (0 ok, 1 failure or a configured route given to
 * `dead-letter`, 2 wrong arguments).
 *
 * @example
 * await outboxCommand(["list", "--route", "erp"], "config.yaml", process.env);
 */
export async function outboxCommand(
  args: readonly string[],
  configFile: string,
  env: Readonly<Record<string, string | undefined>>,
): Promise<number> {
  let action: OutboxAction;
  try {
    action = parseOutboxArguments(args);
  } catch (error) {
    if (!(error instanceof OutboxUsageError)) throw error;
    process.stderr.write(`actiongate outbox: ${error.message}\n${USAGE}\n`);
    return 2;
  }
  return withConfiguredStore("outbox", configFile, env, (store, config) => run(action, store, config));
}

async function run(action: OutboxAction, store: Store, config: GatewayConfig): Promise<number> {
  const out = (text: string) => process.stdout.write(`${text}\n`);
  const configured = new Set(config.routes.map((route) => route.name));
  switch (action.kind) {
    case "list": {
      const now = Date.now();
      const route = action.route;
      const waiting = await allPages((after) =>
        store.outbox.list({ limit: 1_000, ...(route ? { route } : {}), ...(after ? { after } : {}) }, now),
      );
      const delivery = deliveryStatus(await store.outbox.lastDelivering(), now);
      if (action.json) {
        out(JSON.stringify({ events: waiting.map((event) => pendingView(event, configured)), delivery }, null, 2));
        return 0;
      }
      out(waiting.length === 0 ? "the outbox is empty" : formatTable(waiting, configured));
      out(
        delivery.running
          ? `a gateway delivers from this store (last poll ${delivery.last_poll_at})`
          : `no gateway is delivering from this store right now${delivery.last_poll_at ? ` (last poll ${delivery.last_poll_at})` : ""}: these events wait until one starts`,
      );
      const orphans = [...new Set(waiting.map((event) => event.route))].filter((name) => !configured.has(name));
      if (orphans.length > 0) {
        out(
          `routes not in the config: ${orphans.join(", ")}; their events wait until the route is back, or: actiongate outbox dead-letter --route <route>`,
        );
      }
      return 0;
    }
    case "dead-letter": {
      if (configured.has(action.route)) {
        process.stderr.write(
          `actiongate outbox: route "${action.route}" is in the config: its events are being delivered. Only the events of a route that is no longer configured are moved\n`,
        );
        return 1;
      }
      const reason = `route "${action.route}" is no longer configured; moved from the outbox to the dead letters by an operator`;
      let moved = 0;
      for (;;) {
        const count = await store.outbox.moveToDeadLetters(action.route, reason, Date.now(), BULK_BATCH);
        moved += count;
        if (count < BULK_BATCH) break;
      }
      out(`moved ${events(moved)} of route ${action.route} to the dead letters`);
      return 0;
    }
  }
}

function formatTable(waiting: readonly PendingEventSummary[], configured: ReadonlySet<string>): string {
  return formatColumns(
    ["WEBHOOK-ID", "ROUTE", "STAGE", "ATTEMPTS", "NEXT ATTEMPT", "LAST ERROR"],
    waiting.map((event) => [
      event.id,
      configured.has(event.route) ? event.route : `${event.route} (not configured)`,
      event.stage,
      String(event.attempts),
      event.leased ? "in flight" : new Date(event.nextAttemptAt).toISOString(),
      (event.lastAttempt?.error ?? event.lastAttempt?.outcome ?? "").replace(/\s+/g, " "),
    ]),
  );
}

function parseOutboxArguments(args: readonly string[]): OutboxAction {
  let parsed: ReturnType<typeof readOptions>;
  try {
    parsed = readOptions(args);
  } catch (error) {
    throw new OutboxUsageError((error as Error).message.replace(/\. To specify a positional argument.*$/s, ""));
  }
  const { values, positionals } = parsed;
  const [verb, extra] = positionals;
  if (verb === undefined) throw new OutboxUsageError("which action? list or dead-letter");
  if (extra !== undefined) throw new OutboxUsageError(`unexpected argument "${extra}"`);
  if (values.route === "") throw new OutboxUsageError("--route needs a route name");
  switch (verb) {
    case "list":
      return {
        kind: "list",
        json: values.json ?? false,
        ...(values.route !== undefined ? { route: values.route } : {}),
      };
    case "dead-letter":
      if (values.json) throw new OutboxUsageError("--json is for list");
      if (values.route === undefined) throw new OutboxUsageError("dead-letter needs --route <route>");
      return { kind: "dead-letter", route: values.route };
    default:
      throw new OutboxUsageError(`unknown action "${verb}"`);
  }
}

function readOptions(args: readonly string[]) {
  return parseArgs({
    args: [...args],
    allowPositionals: true,
    strict: true,
    options: { json: { type: "boolean" }, route: { type: "string" } },
  });
}
