import { loadConfigFile } from "../config/load.ts";
import { compileConfig, describeTrustedKeys } from "../gateway/compile.ts";
import { startReloadTriggers } from "../gateway/reload.ts";
import { type RunningGateway, startGateway } from "../gateway/start.ts";
import { exitWhenOrphaned, superviseWorkers, wakeDeliveringWorker, workerRoleFromEnv } from "../gateway/workers.ts";
import { USER_AGENT, VERSION } from "../kit/version.ts";
import { createLogger } from "../log/logger.ts";
import { onShutdownSignal, onWakeSignal } from "../runtime/process.ts";
import { runtimeName } from "../runtime/serve.ts";
import { storeKind } from "../store/open.ts";
import { StoreOpenError } from "../store/sqlite-store.ts";
import { reportConfigError } from "./report-config-error.ts";

/**
 * `actiongate serve`: loads the config (refusing a broken one with every problem, exit 1), starts
 * listening, and on SIGTERM/SIGINT stops gracefully. Resolves with the exit code.
 */
export async function serveCommand(
  configFile: string,
  env: Readonly<Record<string, string | undefined>>,
  options: { watch?: boolean } = {},
): Promise<number> {
  const loaded = reportConfigError(() => loadConfigFile(configFile, env));
  if (!loaded) return 1;
  const worker = workerRoleFromEnv(env);
  const logger = createLogger({
    level: loaded.config.log.level,
    ...(worker ? { base: { worker: worker.index } } : {}),
  });
  const compiled = reportConfigError(() => compileConfig(loaded, { logger, userAgent: USER_AGENT }));
  if (!compiled) return 1;
  if (loaded.config.server.workers > 1 && !worker) {
    // The supervisor checked the config (so that a broken one fails once, here) and serves nothing itself.
    await compiled.close();
    const { host, port, workers, shutdown_timeout } = loaded.config.server;
    return superviseWorkers({ workers, host, port, shutdownTimeoutMs: shutdown_timeout, logger, env });
  }

  let gateway: RunningGateway;
  try {
    gateway = await startGateway(compiled, logger, {
      userAgent: USER_AGENT,
      ...(worker
        ? { worker: { ...worker, ...(worker.index > 0 ? { wakeDeliveringWorker: wakeDeliveringWorker() } : {}) } }
        : {}),
    });
  } catch (error) {
    const code = (error as { code?: string }).code;
    const message = (error as Error).message;
    if (error instanceof StoreOpenError) {
      logger.error("cannot open the store", { error: message });
      process.stderr.write(`cannot open the store: ${message}\n`);
    } else {
      logger.error("cannot listen", {
        host: loaded.config.server.host,
        port: loaded.config.server.port,
        error: message,
        code,
      });
      process.stderr.write(`cannot listen on ${loaded.config.server.host}:${loaded.config.server.port}: ${message}\n`);
    }
    await compiled.close();
    return 1;
  }
  const started = {
    version: VERSION,
    runtime: runtimeName,
    config: configFile,
    routes: compiled.routes.map((route) => route.name),
    store: storeKind(loaded.config),
    verification: describeTrustedKeys(compiled.verification.trusted),
    ...(gateway.pollSources.length > 0 ? { poll: gateway.pollSources.map((source) => source.name) } : {}),
    ...(gateway.adminPort !== undefined ? { admin_port: gateway.adminPort } : {}),
  };
  if (gateway.port === undefined) {
    // Only routes of polled messages: nothing needs to reach this box, so no public port is open.
    logger.info("running without a public listener", started);
  } else {
    logger.info("listening", {
      ...started,
      host: gateway.hostname,
      port: gateway.port,
      tls: compiled.serverTls !== undefined,
    });
  }
  // SIGHUP (and with --watch, a change of the file) reloads the config; see gateway/reload.ts.
  const stopReloading = startReloadTriggers({
    file: configFile,
    env,
    gateway,
    logger,
    userAgent: USER_AGENT,
    watch: options.watch ?? false,
  });

  if (worker) exitWhenOrphaned(() => process.kill(process.pid, "SIGTERM"));
  // Worker 0 delivers what the other workers accept, as soon as their signal arrives through the supervisor.
  const stopWaking = worker?.index === 0 ? onWakeSignal(() => gateway.wakeDelivery()) : () => {};
  return new Promise<number>((resolve) => {
    onShutdownSignal(async (signal) => {
      logger.info("shutting down", { signal });
      stopReloading();
      stopWaking();
      await gateway.stop();
      logger.info("stopped");
      resolve(0);
    });
  });
}
