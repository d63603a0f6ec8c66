import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { loadConfigFile } from "../config/load.ts";
import type { GatewayConfig } from "../config/schema.ts";
import { createLogger } from "../log/logger.ts";
import { openStore } from "../store/open.ts";
import { storeFiles } from "../store/sqlite-files.ts";
import { StoreOpenError } from "../store/store-open-error.ts";
import type { Store } from "../store/types.ts";
import { reportConfigError } from "./report-config-error.ts";

/**
 * Opens the store a config names, beside a gateway that may be running, runs `work` on it and closes
 * it: what `actiongate dlq` and `actiongate outbox` share. Resolves with the exit code (1 when the
 * config is broken, has no store, the store file is missing or the store fails).
 *
 * @example
 * return withConfiguredStore("outbox", "config.yaml", process.env, (store, config) => list(store, config));
 */
export async function withConfiguredStore(
  command: string,
  configFile: string,
  env: Readonly<Record<string, string | undefined>>,
  work: (store: Store, config: GatewayConfig) => Promise<number>,
): Promise<number> {
  const loaded = reportConfigError(() => loadConfigFile(configFile, env));
  if (!loaded) return 1;
  const storeConfig = loaded.config.store;
  if (!storeConfig) {
    process.stderr.write(
      `actiongate ${command}: ${configFile} has no store (store.path or store.url); the outbox and dead letters exist only with a store\n`,
    );
    return 1;
  }
  const configDir = dirname(resolve(configFile));
  if (storeConfig.path) {
    // Relative to the config file, like every other file the config names.
    const path = resolve(configDir, storeConfig.path);
    // Opening would create an empty store; one that was created and is now lost is refused by the store itself.
    if (!existsSync(path) && !existsSync(storeFiles(path).marker)) {
      process.stderr.write(
        `actiongate ${command}: no store at ${path} (store.path); the gateway creates it when it starts\n`,
      );
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
    process.stderr.write(`actiongate ${command}: ${error.message}\n`);
    return 1;
  }
  try {
    return await work(store, loaded.config);
  } catch (error) {
    // The store failed during the command (PostgreSQL unreachable, a newer schema): say so, exit 1.
    process.stderr.write(`actiongate ${command}: the store failed: ${(error as Error).message}\n`);
    return 1;
  } finally {
    await store.close();
  }
}

/** Reads every page of a listing (a CLI prints all of it; pages keep each query small). */
export async function allPages<T>(
  page: (after: string | undefined) => Promise<{ readonly items: readonly T[]; readonly next?: string }>,
): Promise<T[]> {
  const out: T[] = [];
  let after: string | undefined;
  do {
    const next = await page(after);
    out.push(...next.items);
    after = next.next;
  } while (after !== undefined);
  return out;
}

/** A table with a header row, columns padded to line up, the last column as is. */
export function formatColumns(header: readonly string[], rows: readonly (readonly string[])[]): string {
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

/** `n event(s)`. */
export function events(count: number): string {
  return `${count} event${count === 1 ? "" : "s"}`;
}

/** What a CLI says about delivery after it put `count` events in the outbox. */
export function deliveryNote(running: boolean, count: number): string {
  if (running) return "a running gateway delivers from the outbox within its poll interval";
  const waits = count === 1 ? "it waits" : "they wait";
  return `no gateway is delivering from this store right now (none polled the outbox in the last 15 s): ${waits} in the outbox until one starts (actiongate outbox list)`;
}
