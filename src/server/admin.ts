import { Hono } from "hono";
import type { CompiledConfig } from "../config/compile.ts";
import type { AdminConfig } from "../config/schema.ts";
import type { Logger } from "../log/logger.ts";
import type { GatewayMetrics } from "../metrics/metrics.ts";
import { startDeadline } from "../runtime/deadline.ts";
import { type RunningServer, serve } from "../runtime/serve.ts";
import type { Store, StoreStatus } from "../store/types.ts";

export interface ReadinessSources {
  /** The config in force, when it began to serve and when its key was loaded (ms since epoch). */
  readonly active: {
    readonly config: CompiledConfig;
    readonly adoptedAt: number;
    readonly verificationKey: { readonly source: "url" | "config"; readonly loadedAt: number | undefined };
  };
  readonly store: Pick<Store, "status">;
  /** True once shutdown began: the load balancer should stop sending calls. */
  draining(): boolean;
}

export interface ReadinessReport {
  readonly ready: boolean;
  readonly checks: {
    readonly config: { readonly ok: boolean; readonly routes: number; readonly loaded_at: string };
    readonly verification_key: { readonly ok: boolean; readonly source: "url" | "config"; readonly age_s?: number };
    /** The store's own status; `kind` is missing when the store did not answer at all. */
    readonly store: StoreReport;
    readonly draining: { readonly ok: boolean };
  };
}

type StoreCheck = Omit<StoreStatus, "kind"> & { readonly kind?: StoreStatus["kind"] };

/** The store check as /readyz shows it, snake_case like the rest of the report. */
interface StoreReport {
  readonly ok: boolean;
  readonly kind?: StoreStatus["kind"];
  readonly writable: boolean;
  readonly schema_version?: number;
  readonly error?: string;
}

/** A store that has not answered by then counts as not writable: /readyz must answer in time for the probe. */
const STORE_CHECK_TIMEOUT_MS = 2_000;

/**
 * Whether the gateway can serve calls now: a config is loaded, the Ed25519 key is available, the
 * store accepts writes, and shutdown has not begun.
 *
 * @example
 * const report = await checkReadiness({ active, store, draining: () => false });
 * report.ready; // true
 */
export async function checkReadiness(sources: ReadinessSources): Promise<ReadinessReport> {
  const { config, adoptedAt: loadedAt, verificationKey } = sources.active;
  const hasKey = config.verification.keySource.current() !== undefined;
  const store = await storeStatus(sources.store);
  const draining = sources.draining();
  const checks: ReadinessReport["checks"] = {
    config: { ok: true, routes: config.routes.length, loaded_at: new Date(loadedAt).toISOString() },
    verification_key: {
      ok: hasKey,
      source: verificationKey.source,
      ...(hasKey && verificationKey.loadedAt !== undefined
        ? { age_s: Math.round((Date.now() - verificationKey.loadedAt) / 1000) }
        : {}),
    },
    store: {
      ok: store.writable,
      ...(store.kind ? { kind: store.kind } : {}),
      writable: store.writable,
      ...(store.schemaVersion !== undefined ? { schema_version: store.schemaVersion } : {}),
      ...(store.error !== undefined ? { error: store.error } : {}),
    },
    draining: { ok: !draining },
  };
  return { ready: Object.values(checks).every((check) => check.ok), checks };
}

async function storeStatus(store: Pick<Store, "status">): Promise<StoreCheck> {
  const deadline = startDeadline(STORE_CHECK_TIMEOUT_MS);
  try {
    const status = await Promise.race([
      store.status().catch((error: unknown): StoreCheck => ({ writable: false, error: (error as Error).message })),
      deadline.expired,
    ]);
    return status === "timeout" ? { writable: false, error: `no answer within ${STORE_CHECK_TIMEOUT_MS}ms` } : status;
  } finally {
    deadline.clear();
  }
}

export interface AdminAppOptions {
  readonly metrics: GatewayMetrics;
  readonly readiness: () => Promise<ReadinessReport>;
  readonly logger: Logger;
}

/**
 * The admin listener's app, on its own port away from epilot's: `GET /healthz` (the process
 * answers), `GET /readyz` (200 or 503 with every check), `GET /metrics` (Prometheus text format).
 *
 * @example
 * const admin = createAdminApp({ metrics, readiness: () => checkReadiness(sources), logger });
 * runtime.serve({ hostname: "127.0.0.1", port: 9090, fetch: admin.fetch, maxRequestBodySize: 1024 });
 */
export function createAdminApp(options: AdminAppOptions): Hono {
  const app = new Hono();
  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/readyz", async (c) => {
    const report = await options.readiness();
    return c.json(report, report.ready ? 200 : 503);
  });
  app.get("/metrics", async (c) => {
    const text = await options.metrics.render();
    return c.body(text, 200, { "content-type": options.metrics.contentType });
  });
  app.notFound((c) =>
    c.json(
      {
        error: `No endpoint ${c.req.method} ${c.req.path.slice(0, 200)}; the admin listener serves GET /healthz, /readyz and /metrics`,
      },
      404,
    ),
  );
  app.onError((error, c) => {
    options.logger.error("admin endpoint failed", {
      path: c.req.path,
      error: error instanceof Error ? error.message : String(error),
    });
    return c.json({ error: "internal error; see the log" }, 500);
  });
  return app;
}

/**
 * Starts the admin listener (`admin.host`, `admin.port` + `portOffset`: worker N of `server.workers`
 * listens on port + N, so that every worker can be scraped).
 *
 * @example
 * const admin = await startAdminListener({ admin: { host: "127.0.0.1", port: 9090 }, portOffset: 0, app });
 */
export function startAdminListener(options: {
  admin: AdminConfig;
  portOffset: number;
  app: Hono;
}): Promise<RunningServer> {
  const port = options.admin.port === 0 ? 0 : options.admin.port + options.portOffset;
  // The admin endpoints take no body: a small cap keeps the port cheap to protect.
  return serve({ hostname: options.admin.host, port, fetch: options.app.fetch, maxRequestBodySize: 64 * 1024 });
}
