import { resolve } from "node:path";
import type { GatewayConfig } from "../config/schema.ts";
import type { Logger } from "../log/logger.ts";
import { openMemoryStore } from "./memory-store.ts";
import { openSqliteStore, StoreOpenError } from "./sqlite-store.ts";
import type { Store } from "./types.ts";

/**
 * Opens the store the config asks for: SQLite at `store.path`, or memory without `store` (sync
 * routes only; follow-ups and the replay guard do not survive a restart). The one place that knows
 * which store is behind the interfaces.
 */
export function openStore(config: GatewayConfig, configDir: string, logger: Logger): Store {
  // A timestamp may be up to `tolerance` in the future, so an id stays replayable for twice that.
  const replayWindowMs = 2 * config.verification.tolerance;
  if (!config.store) {
    return openMemoryStore({ replayWindowMs, onEvict: () => logger.warn("replay guard full: forgetting the oldest webhook-id early") });
  }
  if (!config.store.path) throw new StoreOpenError("store.url (PostgreSQL) is not supported by this build");
  const path = resolve(configDir, config.store.path);
  try {
    return openSqliteStore({
      // Relative to the config file's folder, like every other file the config names (and as `dlq` reads it).
      path,
      ...(config.store.encryption_key ? { encryptionKey: config.store.encryption_key } : {}),
      synchronous: config.store.synchronous,
      replayWindowMs,
    });
  } catch (error) {
    if (error instanceof StoreOpenError) throw error;
    throw new StoreOpenError(`${path}: ${(error as Error).message}`);
  }
}
