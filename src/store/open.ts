import { resolve } from "node:path";
import type { StoreConfig } from "./schema.ts";

/** The parts of the config a store is opened from. */
export interface StoreSettings {
  readonly store?: StoreConfig | undefined;
  readonly verification: { readonly tolerance: number };
}

import type { Logger } from "../log/logger.ts";
import { openMemoryStore } from "./memory-store.ts";
import { openSqliteStore } from "./sqlite-store.ts";
import { StoreOpenError } from "./store-open-error.ts";
import type { Store } from "./types.ts";

export interface OpenStoreOptions {
  /**
   * SQLite: whether opening releases every lease (default true, the gateway owns the file). False for
   * what opens the store beside a running gateway (`actiongate dlq`, worker processes other than the
   * first), which must keep the leases of events in flight. PostgreSQL never releases leases at open
   * (other replicas are alive); a dead replica's leases run out by themselves.
   */
  readonly releaseLeases?: boolean;
}

/**
 * Opens the store the config asks for: SQLite at `store.path`, PostgreSQL at `store.url`, or memory
 * without `store` (sync routes only; follow-ups and the replay guard do not survive a restart). The
 * one place that knows which store is behind the interfaces. The PostgreSQL client is loaded only
 * when `store.url` asks for it (it costs about 10 MB of memory otherwise).
 *
 * @example
 * const store = await openStore(config, dirname(configFile), logger);
 */
export async function openStore(
  config: StoreSettings,
  configDir: string,
  logger: Logger,
  options: OpenStoreOptions = {},
): Promise<Store> {
  // A timestamp may be up to `tolerance` in the future, so an id stays replayable for twice that.
  const replayWindowMs = 2 * config.verification.tolerance;
  if (!config.store) {
    return openMemoryStore({
      replayWindowMs,
      onEvict: () => logger.warn("replay guard full: forgetting the oldest webhook-id early"),
    });
  }
  const store = config.store;
  if (store.url) {
    const { openPostgresStore } = await import("./postgres-store.ts");
    return openPostgresStore({
      url: store.url,
      encryptionKey: store.encryption_key,
      replayWindowMs,
      maxConnections: store.max_connections,
      onWarning: (message, fields) => logger.warn(message, fields),
    });
  }
  if (!store.path) throw new StoreOpenError("set store.path (SQLite) or store.url (PostgreSQL)");
  const path = resolve(configDir, store.path);
  try {
    return openSqliteStore({
      // Relative to the config file's folder, like every other file the config names (and as `dlq` reads it).
      path,
      ...(store.encryption_key ? { encryptionKey: store.encryption_key } : {}),
      synchronous: store.synchronous,
      commitWaitMs: store.commit_wait,
      replayWindowMs,
      releaseLeases: options.releaseLeases ?? true,
      onWarning: (message, fields) => logger.warn(message, fields),
    });
  } catch (error) {
    if (error instanceof StoreOpenError) throw error;
    throw new StoreOpenError(`${path}: ${(error as Error).message}`);
  }
}

/** Which kind of store the config names, for the start-up log line. */
export function storeKind(config: StoreSettings): "memory" | "sqlite" | "postgres" {
  return !config.store ? "memory" : config.store.url ? "postgres" : "sqlite";
}
