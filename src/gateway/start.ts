import { DeliveryEngine, type DeliveryResultListener } from "../delivery/engine.ts";
import { spanOfAttempt, spanOfCall, spanOfStoredMessage } from "../delivery/outcome-spans.ts";
import type { Route } from "../delivery/route.ts";
import { createEpilotHttpClient } from "../epilot/http-client.ts";
import { MonitoringReporter } from "../epilot/monitoring.ts";
import { VERSION } from "../kit/version.ts";
import type { Logger } from "../log/logger.ts";
import { GatewayMetrics } from "../metrics/metrics.ts";
import { PollMetrics } from "../metrics/poll-metrics.ts";
import { type ActionPipeline, handleAction } from "../pipeline/handle-action.ts";
import { PollSource } from "../poll/source.ts";
import { createRouter, inputOf } from "../routing/router.ts";
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
  /** The public listener's port and host; undefined when there is none (routes of polled messages only). */
  readonly port?: number;
  readonly hostname?: string;
  readonly store: Store;
  /** The port of the admin listener (`admin`), when it is on. */
  readonly adminPort?: number;
  readonly metrics: GatewayMetrics;
  /** False when no public listener was opened (routes of polled messages only). */
  readonly listensForCalls: boolean;
  /** The `poll:` entries, polling in this process (only the first worker polls). */
  readonly pollSources: readonly PollSource[];
  /** The config in force (a reload replaces it). */
  readonly config: CompiledConfig;
  /** Serves `next` from now on; calls in flight finish on the config they started with (see ActiveConfig). */
  replaceConfig(next: CompiledConfig): void;
  /** Makes the delivery loop look at the outbox now (another worker added to it); nothing where it does not deliver. */
  wakeDelivery(): void;
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
  readonly worker?: {
    readonly index: number;
    readonly port: number;
    /** In a worker other than 0: tells the delivering worker that the outbox has something new. */
    readonly wakeDeliveringWorker?: () => void;
  };
}

/**
 * Starts the public listener for a compiled config (when it has routes for custom actions: a gateway
 * of polled messages only opens no public port), the delivery engine over the store, the poll sources,
 * the monitoring reporter, and the key refresh when the key is remote.
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
  // What was added to the outbox goes out now: here, or in the worker that delivers (workers.ts).
  const wakeDelivery = (): void => {
    if (deliversFromOutbox) engine.wake();
    else options.worker?.wakeDeliveringWorker?.();
  };
  const ignoredProxies = ignoreProxyEnvironment();
  if (ignoredProxies.length > 0) {
    logger.warn("proxy variables ignored: legacy systems and epilot are called directly", {
      variables: ignoredProxies,
    });
  }
  const store =
    options.store ?? (await openStore(config.source, config.configDir, logger, { releaseLeases: deliversFromOutbox }));
  const metrics = new GatewayMetrics();
  const pollMetrics = new PollMetrics(metrics.registry);
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
  // Polling goes to epilot through epilot.proxy like every other call to epilot; closed at stop.
  const pollClient = config.source.poll?.length ? createEpilotHttpClient(config.source.epilot.proxy) : undefined;
  // The use case a route's spans go under: the route's own, or epilot.monitoring's (read at each span: a reload may change it).
  const slugOf = (routeName: string): string | undefined => {
    const monitoring = active.config.source.epilot.monitoring;
    if (!monitoring) return undefined;
    return active.config.routes.find((route) => route.name === routeName)?.useCaseSlug ?? monitoring.use_case_slug;
  };
  const reporter = new MonitoringReporter({
    endpoint: () => {
      const monitoring = active.config.source.epilot.monitoring;
      return (
        monitoring && {
          apiUrl: monitoring.api_url,
          integrationId: monitoring.integration_id,
          token: monitoring.token,
          timeoutMs: monitoring.timeout,
        }
      );
    },
    logger,
    userAgent: options.userAgent,
    client: createEpilotHttpClient(config.source.epilot.proxy),
    onSpans: (result, count) => pollMetrics.recordSpans(result, count),
  });
  const reportAttempt: DeliveryResultListener = (route, result, deadLettered, event) => {
    const slug = slugOf(route);
    const span = slug === undefined ? undefined : spanOfAttempt(route, result, deadLettered, event, slug);
    if (span) reporter.report(span);
  };
  // Built once per config (at start and at each reload); the engine and the listener read the one in force.
  const active: ActiveConfig = new ActiveConfig(config, {
    buildHandler: (current) => {
      const pipeline: ActionPipeline = {
        verification: current.verification,
        router: createRouter(current.routes),
        replayGuard: store.replayGuard,
        maxJsonDepth: current.source.server.max_json_depth,
        outbox: store.outbox,
        onEnqueued: wakeDelivery,
        logger,
        metrics,
        observer,
        tracer,
      };
      return createGatewayApp({
        server: current.source.server,
        handleAction: async (headers, body, routeName) => {
          const answer = await handleAction(headers, body, routeName, pipeline);
          if (answer.route !== undefined && answer.webhookId !== undefined) {
            const slug = slugOf(answer.route);
            const span =
              slug === undefined
                ? undefined
                : spanOfCall(
                    {
                      route: answer.route,
                      webhookId: answer.webhookId,
                      outcome: answer.outcome,
                      status: answer.status,
                      at: Date.now(),
                    },
                    slug,
                  );
            if (span) reporter.report(span);
          }
          return answer;
        },
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
    onResult: [
      (route, result, deadLettered) => {
        const counted = deliveryResult(result, deadLettered);
        if (counted === undefined || result.kind === "postpone") return;
        metrics.recordDelivery(route, result.attempt.stage, counted);
        deliveries.record(route, counted);
      },
      reportAttempt,
    ],
    // store.lease: how long this replica holds a claimed event before another may take it over.
    ...(config.source.store ? { leaseMs: config.source.store.lease } : {}),
  });
  // poll is read once at start (a restart-only section); sources poll in the delivering process only.
  const pollSources = (config.source.poll ?? []).map(
    (source) =>
      new PollSource({
        config: source,
        inbox: store.inbox,
        acquireConfig: () => active.acquire(),
        logger,
        userAgent: options.userAgent,
        ...(pollClient ? { client: pollClient } : {}),
        tracer,
        onStored: () => engine.wake(),
        observer: {
          messages: (name, result, count) => pollMetrics.recordMessages(name, result, count),
          acks: (name, result, count) => pollMetrics.recordAcks(name, result, count),
          lag: (name, seconds) => pollMetrics.recordLag(name, seconds),
          stored: (_name, route: Route, message, at) => {
            const slug = slugOf(route.name);
            if (slug !== undefined) reporter.report(spanOfStoredMessage(route.name, message, at, slug));
          },
        },
      }),
  );
  pollMetrics.attach({
    pollSources: () => pollSources.map((source) => ({ name: source.name, lastSuccessAt: source.lastSuccessTime() })),
    monitoringQueued: () => reporter.queued,
  });
  config.verification.remoteKeySource?.start();
  const server = config.source.server;
  // Without routes for custom actions nothing can reach the public listener: none is opened.
  const listensForCalls = config.routes.some((route) => inputOf(route) === "call");
  let running: RunningServer | undefined;
  try {
    running = listensForCalls
      ? await serve({
          hostname: server.host,
          port: options.worker?.port ?? server.port,
          fetch: active.fetch,
          // Our reader enforces max_body_size and answers every 413 in epilot's shape; the runtime's
          // own cap would answer a large Content-Length with a bare 413 before we see the call.
          maxRequestBodySize: Number.MAX_SAFE_INTEGER,
          ...(config.serverTls ? { tls: config.serverTls } : {}),
          reusePort: options.worker !== undefined,
        })
      : undefined;
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
          pollSources: () => Object.fromEntries(pollSources.map((source) => [source.name, source.status()])),
        }),
      logger,
      api: {
        token: adminConfig.token,
        routes: () => adminRouteViews(active.config),
        store,
        calls: recentCalls,
        deliveries,
        wake: wakeDelivery,
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
      await running?.stop();
      config.verification.remoteKeySource?.stop();
      await store.close();
      await telemetry.shutdown();
      throw error;
    }
  }
  const adminListener = admin;
  reporter.start();
  if (deliversFromOutbox) {
    engine.start();
    for (const source of pollSources) source.start();
  }
  const listener = running;
  return {
    ...(listener ? { port: listener.port, hostname: listener.hostname } : {}),
    store,
    ...(adminListener ? { adminPort: adminListener.port } : {}),
    metrics,
    listensForCalls,
    pollSources,
    get config() {
      return active.config;
    },
    replaceConfig: (next) => active.replace(next),
    wakeDelivery: () => {
      if (deliversFromOutbox) engine.wake();
    },
    async stop() {
      // /readyz answers 503 from now on, so that a load balancer stops sending calls.
      draining = true;
      const deadline = startDeadline(server.shutdown_timeout);
      const result = await Promise.race([
        Promise.all([
          listener?.stop(),
          // A poll in flight is abandoned (its lease lapses); a batch in hand is committed and acknowledged.
          ...pollSources.map((source) => source.stop()),
        ]).then(() => "stopped" as const),
        deadline.expired,
      ]);
      deadline.clear();
      if (result === "timeout")
        logger.warn("shutdown deadline reached with calls still in flight", {
          shutdown_timeout_ms: server.shutdown_timeout,
        });
      await engine.stop();
      // The outcomes of the last attempts go out too, within a short deadline.
      await reporter.stop(2_000);
      await pollClient?.close();
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
