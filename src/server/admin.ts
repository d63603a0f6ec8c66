import { Hono } from "hono";
import type { Logger } from "../log/logger.ts";
import type { GatewayMetrics } from "../metrics/metrics.ts";
import { type RunningServer, serve } from "../runtime/serve.ts";
import { type AdminApiSources, createAdminApi } from "./admin-api.ts";
import { serveConsole } from "./console/console-page.ts";
import type { AdminConfig } from "./schema.ts";

export interface AdminAppOptions {
  readonly metrics: GatewayMetrics;
  /** The readiness report (gateway/readiness.ts); `ready` decides between 200 and 503. */
  readonly readiness: () => Promise<{ readonly ready: boolean }>;
  readonly logger: Logger;
  /** What the admin API (`/api/*`) and the console (`GET /`) read; without it neither is served. */
  readonly api?: AdminApiSources | undefined;
}

/**
 * The admin listener's app, on its own port away from epilot's: `GET /healthz` (the process
 * answers), `GET /readyz` (200 or 503 with every check), `GET /metrics` (Prometheus text format),
 * and with `api`, the admin API under `/api` (Bearer `admin.token`) and the console at `GET /`.
 *
 * @example
 * const admin = createAdminApp({ metrics, readiness: () => checkReadiness(sources), logger, api });
 * runtime.serve({ hostname: "127.0.0.1", port: 9090, fetch: admin.fetch, maxRequestBodySize: 1024 });
 */
export function createAdminApp(options: AdminAppOptions): Hono {
  const app = new Hono();
  if (options.api) {
    app.route("/api", createAdminApi(options.api));
    serveConsole(app);
  }
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
        error: `No endpoint ${c.req.method} ${c.req.path.slice(0, 200)}; the admin listener serves GET /healthz, /readyz and /metrics${options.api ? ", the console at / and the admin API under /api" : ""}`,
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
  // The admin endpoints take small JSON bodies at most: a small cap keeps the port cheap to protect.
  return serve({ hostname: options.admin.host, port, fetch: options.app.fetch, maxRequestBodySize: 64 * 1024 });
}
