import { compileConfig } from "../config/compile.ts";
import { loadConfigFile } from "../config/load.ts";
import { createLogger } from "../log/logger.ts";
import { onShutdownSignal } from "../runtime/process.ts";
import { runtimeName } from "../runtime/serve.ts";
import { startGateway } from "../server/gateway.ts";
import { reportConfigError } from "./report-config-error.ts";
import { StoreOpenError } from "../store/sqlite-store.ts";
import { USER_AGENT, VERSION } from "../version.ts";

/**
 * `actiongate serve`: loads the config (refusing a broken one with every problem, exit 1), starts
 * listening, and on SIGTERM/SIGINT stops gracefully. Resolves with the exit code.
 */
export async function serveCommand(configFile: string, env: Readonly<Record<string, string | undefined>>): Promise<number> {
  const loaded = reportConfigError(() => loadConfigFile(configFile, env));
  if (!loaded) return 1;
  const logger = createLogger({ level: loaded.config.log.level });
  const compiled = reportConfigError(() => compileConfig(loaded, { logger, userAgent: USER_AGENT }));
  if (!compiled) return 1;

  let gateway;
  try {
    gateway = await startGateway(compiled, logger, { userAgent: USER_AGENT });
  } catch (error) {
    const code = (error as { code?: string }).code;
    const message = (error as Error).message;
    if (error instanceof StoreOpenError) {
      logger.error("cannot open the store", { error: message });
      process.stderr.write(`cannot open the store: ${message}\n`);
    } else {
      logger.error("cannot listen", { host: loaded.config.server.host, port: loaded.config.server.port, error: message, code });
      process.stderr.write(`cannot listen on ${loaded.config.server.host}:${loaded.config.server.port}: ${message}\n`);
    }
    await compiled.close();
    return 1;
  }
  logger.info("listening", {
    version: VERSION,
    runtime: runtimeName,
    host: gateway.hostname,
    port: gateway.port,
    config: configFile,
    routes: compiled.routes.map((route) => route.name),
    store: loaded.config.store ? "sqlite" : "memory",
  });

  return new Promise<number>((resolve) => {
    onShutdownSignal(async (signal) => {
      logger.info("shutting down", { signal });
      await gateway.stop();
      logger.info("stopped");
      resolve(0);
    });
  });
}
