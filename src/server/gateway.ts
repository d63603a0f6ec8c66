import type { CompiledConfig } from "../config/compile.ts";
import type { Logger } from "../log/logger.ts";
import { serve } from "../runtime/serve.ts";
import { MemoryReplayGuard, type ReplayGuard } from "../verify/replay-guard.ts";
import { createGatewayApp } from "./app.ts";

export interface RunningGateway {
  readonly port: number;
  readonly hostname: string;
  /** Stops accepting, lets calls in flight finish within `server.shutdown_timeout`, closes targets. */
  stop(): Promise<void>;
}

/** Room the runtime's own body cap leaves above ours, so that our JSON 413 is what callers see. */
const RUNTIME_BODY_MARGIN = 64 * 1024;

/**
 * Starts the public listener for a compiled config, and the key refresh when the key is remote.
 *
 * @example
 * const gateway = await startGateway(compiled, logger);
 * await gateway.stop();
 */
export async function startGateway(config: CompiledConfig, logger: Logger, replayGuard?: ReplayGuard): Promise<RunningGateway> {
  const guard =
    replayGuard ??
    new MemoryReplayGuard({
      // A timestamp may be up to `tolerance` in the future, so an id stays replayable for twice that.
      windowMs: 2 * config.verification.toleranceMs,
      onEvict: () => logger.warn("replay guard full: forgetting the oldest webhook-id early"),
    });
  const app = createGatewayApp({ config, replayGuard: guard, logger });
  config.verification.remoteKeySource?.start();
  const server = config.source.server;
  const running = await serve({
    hostname: server.host,
    port: server.port,
    fetch: app.fetch,
    maxRequestBodySize: server.max_body_size + RUNTIME_BODY_MARGIN,
  });
  return {
    port: running.port,
    hostname: running.hostname,
    async stop() {
      const deadline = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), server.shutdown_timeout).unref?.());
      const result = await Promise.race([running.stop().then(() => "stopped" as const), deadline]);
      if (result === "timeout") logger.warn("shutdown deadline reached with calls still in flight", { shutdown_timeout_ms: server.shutdown_timeout });
      await config.close();
    },
  };
}
