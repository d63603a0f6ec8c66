import { DeliveryEngine } from "../delivery/engine.ts";
import { VERSION } from "../kit/version.ts";
import type { Logger } from "../log/logger.ts";
import { GatewayMetrics } from "../metrics/metrics.ts";
import { type ActionPipeline, handleAction } from "../pipeline/handle-action.ts";
import { createRouter } from "../routing/router.ts";
import { startDeadline } from "../runtime/deadline.ts";
import { ignoreProxyEnvironment } from "../runtime/http-client.ts";
import { type RunningServer, serve } from "../runtime/serve.ts";
import { createAdminApp, startAdminListener } from "../server/admin.ts";
import { createGatewayApp } from "../server/app.ts";
import { CallRing, DeliveryTally } from "../server/call-ring.ts";
import { adminReachableFromNetwork } from "../server/schema.ts";
import { openStore } from "../store/open.ts";
import type { Store } from "../store/types.ts";
import { startTelemetry, type Telemetry } from "../telemetry/setup.ts";
import { closeSharedExpressionPool } from "../transform/expression-pool.ts";
import { ActiveConfig } from "./active-config.ts";
import { adminRouteViews, deliveryResult } from "./admin-sources.ts";
import type { CompiledConfig } from "./compile.ts";
import { adminExposedWarning, checkReadiness } from "./readiness.ts";

export interface RunningGateway {
  readonly port: number;
  readonly hostname: string;
  readonly store: Store;
  /** The port of the admin listener (`admin`), when it is on. */
  readonly adminPort?: number;
  readonly metrics: GatewayMetrics;
  /** The config in force (a reload replaces it). */
  readonly config: CompiledConfig;
  /** Serves `next` from now on; calls in flight finish on the config they started with (see ActiveConfig). */
  replaceConfig(next: CompiledConfig): void;
  /**
   * Stops accepting, lets sync calls in flight finish within `server.shutdown_timeout`, lets the
   * delivery workers finish their current attempt, then closes targets and the store.
   */
  stop(): Promise<void>;
}

export interface StartGatewayOptions {
  readonly userAgent: string;
  /** Replaces the store the config names (tests). */
  readonly store?: Store;
  /**
   * Set in a worker process of `server.workers` (see gateway/workers.ts): the port is shared, and
   * only worker 0 delivers from the outbox and takes over leases at start; the others only accept.
   */
  readonly worker?: { readonly index: number; readonly port: number };
}

/**
 * Starts the public listener for a compiled config, the delivery engine over the store, and the key
 * refresh when the key is remote.
 *
 * @example
 * const gateway = await startGateway(compiled, logger, { userAgent: USER_AGENT });
 * await gateway.stop();
 */
export async function startGateway(
  config: CompiledConfig,
  logger: Logger,
  options: StartGatewayOptions,
): Promise<RunningGateway> {
  const deliversFromOutbox = (options.worker?.index ?? 0) === 0;
  const ignoredProxies = ignoreProxyEnvironment();
  if (ignoredProxies.length > 0) {
    logger.warn("proxy variables ignored: legacy systems and epilot are called directly", {
      variables: ignoredProxies,
    });
  }
  const store =
    options.store ?? (await openStore(config.source, config.configDir, logger, { releaseLeases: deliversFromOutbox }));
  const metrics = new GatewayMetrics();
  // Read at start only (a reload keeps it); without `telemetry`, nothing of OpenTelemetry is loaded.
  const telemetry: Telemetry = await startTelemetry(config.source.telemetry, {
    logger,
    onDropped: (reason, count) => metrics.recordDroppedSpans(reason, count),
    serviceVersion: VERSION,
  });
  if (config.source.telemetry) metrics.initDroppedSpans();
  const tracer = telemetry.tracer;
  let draining = false;
  const observer = { targetAttempt: (route: string, seconds: number) => metrics.observeTarget(route, seconds) };
  // The admin API's view of this process: its recent calls and what its delivery loop did per route.
  const adminConfig = config.source.admin;
  const recentCalls = adminConfig ? new CallRing(adminConfig.recent_calls) : undefined;
  const deliveries = new DeliveryTally();
  // Built once per config (at start and at each reload); the engine and the listener read the one in force.
  const active: ActiveConfig = new ActiveConfig(config, {
    buildHandler: (current) => {
      const pipeline: ActionPipeline = {
        verification: current.verification,
        router: createRouter(current.routes),
        replayGuard: store.replayGuard,
        maxJsonDepth: current.source.server.max_json_depth,
        outbox: store.outbox,
        onEnqueued: () => engine.wake(),
        logger,
        metrics,
        observer,
        tracer,
      };
      return createGatewayApp({
        server: current.source.server,
        handleAction: (headers, body, routeName) => handleAction(headers, body, routeName, pipeline),
        routeNames: new Set(current.routes.map((route) => route.name)),
        logger,
        metrics,
        onCall: recentCalls ? (call) => recentCalls.record(call) : undefined,
      }).fetch;
    },
    logger,
  });
  metrics.attach({ routes: () => active.config.routes, store, verificationKey: () => active.verificationKey });
  const engine = new DeliveryEngine({
    outbox: store.outbox,
    acquireConfig: () => active.acquire(),
    logger,
    observer,
    tracer,
    onResult: (route, result, deadLettered) => {
      const counted = deliveryResult(result, deadLettered);
      if (counted === undefined || result.kind === "postpone") return;
      metrics.recordDelivery(route, result.attempt.stage, counted);
      deliveries.record(route, counted);
    },
    // store.lease: how long this replica holds a claimed event before another may take it over.
    ...(config.source.store ? { leaseMs: config.source.store.lease } : {}),
  });
  config.verification.remoteKeySource?.start();
  const server = config.source.server;
  let running: RunningServer;
  try {
    running = await serve({
      hostname: server.host,
      port: options.worker?.port ?? server.port,
      fetch: active.fetch,
      // Our reader enforces max_body_size and answers every 413 in epilot's shape; the runtime's
      // own cap would answer a large Content-Length with a bare 413 before we see the call.
      maxRequestBodySize: Number.MAX_SAFE_INTEGER,
      ...(config.serverTls ? { tls: config.serverTls } : {}),
      reusePort: options.worker !== undefined,
    });
  } catch (error) {
    config.verification.remoteKeySource?.stop();
    await store.close();
    await telemetry.shutdown();
    throw error;
  }
  let admin: RunningServer | undefined;
  if (adminConfig && recentCalls) {
    const exposed = adminConfig.token === undefined && adminReachableFromNetwork(adminConfig.host);
    if (exposed) logger.warn(adminExposedWarning(adminConfig.host), { host: adminConfig.host });
    const adminApp = createAdminApp({
      metrics,
      readiness: () =>
        checkReadiness({
          active,
          store,
          draining: () => draining,
          orphanedEvents: () => engine.orphanedEvents(),
          ...(exposed ? { adminExposed: { host: adminConfig.host } } : {}),
        }),
      logger,
      api: {
        token: adminConfig.token,
        routes: () => adminRouteViews(active.config),
        store,
        calls: recentCalls,
        deliveries,
        wake: () => engine.wake(),
        logger,
      },
    });
    try {
      admin = await startAdminListener({
        admin: adminConfig,
        portOffset: options.worker?.index ?? 0,
        app: adminApp,
      });
    } catch (error) {
      await running.stop();
      config.verification.remoteKeySource?.stop();
      await store.close();
      await telemetry.shutdown();
      throw error;
    }
  }
  const adminListener = admin;
  if (deliversFromOutbox) engine.start();
  const listener = running;
  return {
    port: listener.port,
    hostname: listener.hostname,
    store,
    ...(adminListener ? { adminPort: adminListener.port } : {}),
    metrics,
    get config() {
      return active.config;
    },
    replaceConfig: (next) => active.replace(next),
    async stop() {
      // /readyz answers 503 from now on, so that a load balancer stops sending calls.
      draining = true;
      const deadline = startDeadline(server.shutdown_timeout);
      const result = await Promise.race([listener.stop().then(() => "stopped" as const), deadline.expired]);
      deadline.clear();
      if (result === "timeout")
        logger.warn("shutdown deadline reached with calls still in flight", {
          shutdown_timeout_ms: server.shutdown_timeout,
        });
      await engine.stop();
      await active.closeAll();
      await adminListener?.stop();
      await store.close();
      // Last: the delivery workers above may still have evaluated expressions while finishing.
      await closeSharedExpressionPool();
      // The spans of the last calls and attempts go out (bounded: a collector that is down delays this 5 s at most).
      await telemetry.shutdown();
    },
  };
}
