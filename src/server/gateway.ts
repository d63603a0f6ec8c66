import type { CompiledConfig } from "../config/compile.ts";
import { DeliveryEngine } from "../delivery/engine.ts";
import { createEpilotCallbacks } from "../epilot/callbacks.ts";
import type { Logger } from "../log/logger.ts";
import { serve } from "../runtime/serve.ts";
import { openStore } from "../store/open.ts";
import type { Store } from "../store/types.ts";
import { createGatewayApp } from "./app.ts";

export interface RunningGateway {
  readonly port: number;
  readonly hostname: string;
  readonly store: Store;
  /**
   * Stops accepting, lets sync calls in flight finish within `server.shutdown_timeout`, lets the
   * delivery workers finish their current attempt, then closes targets and the store.
   */
  stop(): Promise<void>;
}

/** Room the runtime's own body cap leaves above ours, so that our JSON 413 is what callers see. */
const RUNTIME_BODY_MARGIN = 64 * 1024;

export interface StartGatewayOptions {
  readonly userAgent: string;
  /** Replaces the store the config names (tests). */
  readonly store?: Store;
}

/**
 * Starts the public listener for a compiled config, the delivery engine over the store, and the key
 * refresh when the key is remote.
 *
 * @example
 * const gateway = await startGateway(compiled, logger, { userAgent: USER_AGENT });
 * await gateway.stop();
 */
export async function startGateway(config: CompiledConfig, logger: Logger, options: StartGatewayOptions): Promise<RunningGateway> {
  const store = options.store ?? openStore(config.source, config.configDir, logger);
  const engine = new DeliveryEngine({
    outbox: store.outbox,
    routes: () => config.routes,
    epilot: createEpilotCallbacks(config.source.epilot, options.userAgent),
    logger,
  });
  const app = createGatewayApp({ config, replayGuard: store.replayGuard, outbox: store.outbox, onEnqueued: () => engine.wake(), logger });
  config.verification.remoteKeySource?.start();
  const server = config.source.server;
  let running;
  try {
    running = await serve({
      hostname: server.host,
      port: server.port,
      fetch: app.fetch,
      maxRequestBodySize: server.max_body_size + RUNTIME_BODY_MARGIN,
    });
  } catch (error) {
    config.verification.remoteKeySource?.stop();
    await store.close();
    throw error;
  }
  engine.start();
  const listener = running;
  return {
    port: listener.port,
    hostname: listener.hostname,
    store,
    async stop() {
      const deadline = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), server.shutdown_timeout).unref?.());
      const result = await Promise.race([listener.stop().then(() => "stopped" as const), deadline]);
      if (result === "timeout") logger.warn("shutdown deadline reached with calls still in flight", { shutdown_timeout_ms: server.shutdown_timeout });
      await engine.stop();
      await config.close();
      await store.close();
    },
  };
}
