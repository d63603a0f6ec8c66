import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { CompiledConfig } from "../config/compile.ts";
import { failure, type CallAnswer } from "../delivery/answer.ts";
import type { Logger } from "../log/logger.ts";
import { createRouter } from "../routing/router.ts";
import type { OutboxStore } from "../store/types.ts";
import type { ReplayGuard } from "../verify/replay-guard.ts";
import { handleAction } from "./handle-action.ts";

export interface GatewayAppOptions {
  readonly config: CompiledConfig;
  readonly replayGuard: ReplayGuard;
  readonly outbox: OutboxStore;
  readonly onEnqueued: () => void;
  readonly logger: Logger;
}

/**
 * The public HTTP app: `POST /actions/<route>` and `POST /actions`, everything else 404, every
 * answer JSON, one log line per call.
 *
 * @example
 * const app = createGatewayApp({ config, replayGuard, logger });
 * runtime.serve({ port: 8080, fetch: app.fetch });
 */
export function createGatewayApp(options: GatewayAppOptions): Hono {
  const { config, logger } = options;
  const router = createRouter(config.routes);
  const maxBodySize = config.source.server.max_body_size;
  const deps = { ...options, router };
  const app = new Hono();

  const limit = bodyLimit({
    maxSize: maxBodySize,
    onError: (c) => {
      const answer = failure(413, "too_large", `The body is larger than the limit of ${maxBodySize} bytes`);
      logCall(logger, answer, { route: c.req.param("route") }, 0);
      return c.json(answer.body as object, 413, { connection: "close" });
    },
  });

  const serveAction = async (request: Request, routeName: string | undefined): Promise<Response> => {
    const started = performance.now();
    const body = new Uint8Array(await request.arrayBuffer());
    const answer = await handleAction(request.headers, body, routeName, deps);
    logCall(logger, answer, { route: answer.route ?? routeName, webhook_id: answer.webhookId }, performance.now() - started);
    return Response.json(answer.body, { status: answer.status });
  };

  app.post("/actions/:route", limit, (c) => serveAction(c.req.raw, c.req.param("route")));
  app.post("/actions", limit, (c) => serveAction(c.req.raw, undefined));
  app.notFound((c) => {
    const answer = failure(404, "unknown_route", `No endpoint ${c.req.method} ${c.req.path.slice(0, 200)}; epilot calls POST /actions/<route>`);
    return c.json(answer.body as object, 404);
  });
  app.onError((error, c) => {
    logger.error("unexpected error", { error: error instanceof Error ? error.message : String(error), path: c.req.path });
    const answer = failure(500, "internal_error", "actiongate failed to process the call; see its log");
    return c.json(answer.body as object, 500);
  });
  return app;
}

function logCall(logger: Logger, answer: CallAnswer, fields: Record<string, unknown>, durationMs: number): void {
  const level = answer.status >= 500 ? "warn" : "info";
  logger[level]("call", {
    ...fields,
    outcome: answer.outcome,
    status: answer.status,
    duration_ms: Math.round(durationMs * 10) / 10,
    ...answer.log,
  });
}
