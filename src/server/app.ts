import { type CallAnswer, failure } from "../delivery/answer.ts";
import type { Logger } from "../log/logger.ts";
import { type GatewayMetrics, NO_ROUTE_LABEL } from "../metrics/metrics.ts";
import type { ActionAnswer } from "../pipeline/handle-action.ts";
import type { ConnectionInfo } from "../runtime/serve.ts";
import { BodyBudget } from "./body-budget.ts";
import type { CallRecord } from "./call-ring.ts";
import { readBodyWithin } from "./read-body.ts";
import { createRequestGuard } from "./request-guard.ts";
import type { ServerConfig } from "./schema.ts";

export interface GatewayAppOptions {
  /** `server.*`: body size and time, header limits, allowed client addresses. */
  readonly server: Pick<
    ServerConfig,
    "max_body_size" | "body_timeout" | "body_memory_limit" | "allowed_ips" | "max_header_count" | "max_header_size"
  >;
  /** The request path of one call, once its body is read (pipeline/handle-action.ts). */
  readonly handleAction: (headers: Headers, body: Uint8Array, routeName: string | undefined) => Promise<ActionAnswer>;
  /** The configured route names: only these become metric labels. */
  readonly routeNames: ReadonlySet<string>;
  readonly logger: Logger;
  /** Counts each call by route and outcome. */
  readonly metrics?: GatewayMetrics | undefined;
  /** Told of each answered call (the admin API's ring of recent calls). */
  readonly onCall?: ((call: CallRecord) => void) | undefined;
}

/** The public listener's handler; `info` is the runtime's connection info (absent when a test calls it directly). */
export interface GatewayApp {
  fetch(request: Request, info?: ConnectionInfo): Promise<Response>;
}

/**
 * The public HTTP app: `POST /actions/<route>` and `POST /actions`, everything else 404, every
 * answer JSON, one log line per call. Before anything is read, a client outside `server.allowed_ips`
 * gets 403 and too many or too large headers 431; the body is then read as a stream within
 * `max_body_size` (413) and `body_timeout` (408), and both close the connection.
 *
 * Two paths and one method need no router: the handler reads the path from the URL itself, which
 * costs a few microseconds less per call than a framework's context, router and middleware chain
 * (measured with `npm run bench`; the admin listener, with its many routes, keeps Hono).
 *
 * @example
 * const app = createGatewayApp({ server, handleAction: (h, b, r) => handleAction(h, b, r, pipeline), routeNames, logger });
 * runtime.serve({ port: 8080, fetch: app.fetch });
 */
export function createGatewayApp(options: GatewayAppOptions): GatewayApp {
  const { server, logger } = options;
  const maxBodySize = server.max_body_size;
  const calls: CallSink = { logger, metrics: options.metrics, routeNames: options.routeNames, onCall: options.onCall };
  const guard = createRequestGuard({
    allowedIps: server.allowed_ips,
    maxHeaderCount: server.max_header_count,
    maxHeaderSize: server.max_header_size,
  });

  const budget = new BodyBudget(server.body_memory_limit);
  const serveAction = async (request: Request, routeName: string | undefined): Promise<Response> => {
    const started = performance.now();
    // Only a configured name is logged as the route; anything else from an unsigned caller is cut short.
    const routeField =
      routeName === undefined || options.routeNames.has(routeName)
        ? { route: routeName }
        : { requested_route: capped(routeName) };
    const read = await readBodyWithin(request, { maxBytes: maxBodySize, timeoutMs: server.body_timeout, budget });
    if (!read.ok) {
      const answer =
        read.reason === "too_large"
          ? failure(413, "too_large", `The body is larger than the limit of ${maxBodySize} bytes`)
          : read.reason === "overloaded"
            ? failure(503, "overloaded", "actiongate is receiving too many call bodies at once; please retry")
            : failure(408, "body_timeout", `The body did not arrive within ${server.body_timeout} ms`);
      const detail =
        read.reason === "too_large"
          ? { declared_length: read.declared }
          : read.reason === "overloaded"
            ? { body_memory_limit: server.body_memory_limit }
            : { received_bytes: read.receivedBytes, expected_bytes: read.expectedBytes };
      logCall(calls, answer, { ...routeField, ...detail }, performance.now() - started);
      return Response.json(answer.body, { status: answer.status, headers: { connection: "close" } });
    }
    try {
      const answer = await options.handleAction(request.headers, read.body, routeName);
      logCall(
        calls,
        answer,
        answer.route !== undefined
          ? { route: answer.route, webhook_id: answer.webhookId }
          : { ...routeField, webhook_id: answer.webhookId },
        performance.now() - started,
      );
      return Response.json(answer.body, { status: answer.status });
    } finally {
      budget.release(read.heldBytes);
    }
  };

  const notFound = (method: string, path: string): Response => {
    const answer = failure(
      404,
      "unknown_route",
      `No endpoint ${capped(method)} ${capped(path)}; epilot calls POST /actions/<route>`,
    );
    return Response.json(answer.body, { status: 404 });
  };

  return {
    async fetch(request, info) {
      const path = pathOf(request.url);
      try {
        const refusal = guard(request.headers, info?.remoteAddress);
        if (refusal) {
          logCall(calls, refusal, { path: capped(path), ...refusal.log }, 0);
          // The body is never read; closing the connection keeps an unread body from being taken as the next request.
          return Response.json(refusal.body, { status: refusal.status, headers: { connection: "close" } });
        }
        if (request.method !== "POST") return notFound(request.method, path);
        if (path === "/actions") return await serveAction(request, undefined);
        if (path.startsWith("/actions/")) {
          const name = path.slice("/actions/".length);
          if (name.length > 0 && !name.includes("/")) return await serveAction(request, decodedSegment(name));
        }
        return notFound(request.method, path);
      } catch (error) {
        logger.error("unexpected error", {
          error: error instanceof Error ? error.message : String(error),
          path: capped(path),
        });
        const answer = failure(500, "internal_error", "actiongate failed to process the call; see its log");
        return Response.json(answer.body, { status: 500 });
      }
    },
  };
}

/** The path of an absolute request URL, without its query: what the runtime hands the handler. */
function pathOf(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return "/";
  const query = url.indexOf("?", start);
  const hash = url.indexOf("#", start);
  const end = query >= 0 ? query : hash >= 0 ? hash : url.length;
  return url.slice(start, end);
}

/** A path segment percent-decoded (`erp%2Dcontract` is the route erp-contract); as sent when it does not decode. */
function decodedSegment(segment: string): string {
  if (!segment.includes("%")) return segment;
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** Where a call's outcome goes: the log line, and the metrics labelled only by configured route names. */
interface CallSink {
  readonly logger: Logger;
  readonly metrics: GatewayMetrics | undefined;
  readonly routeNames: ReadonlySet<string>;
  readonly onCall: ((call: CallRecord) => void) | undefined;
}

function logCall(
  { logger, metrics, routeNames, onCall }: CallSink,
  answer: CallAnswer,
  fields: Record<string, unknown>,
  durationMs: number,
): void {
  // A name from the URL is a label only when it is a configured route: unknown names must not grow the metric.
  const route = typeof fields.route === "string" && routeNames.has(fields.route) ? fields.route : undefined;
  metrics?.recordCall(route ?? NO_ROUTE_LABEL, answer.outcome);
  if (onCall) {
    const targetStatus = answer.log?.target_status;
    onCall({
      at: Date.now(),
      ...(route !== undefined ? { route } : {}),
      ...(typeof fields.webhook_id === "string" ? { webhookId: fields.webhook_id } : {}),
      outcome: answer.outcome,
      status: answer.status,
      durationMs: Math.round(durationMs * 10) / 10,
      ...(typeof targetStatus === "number" ? { targetStatus } : {}),
    });
  }
  const level = answer.status >= 500 ? "warn" : "info";
  logger[level]("call", {
    ...fields,
    outcome: answer.outcome,
    status: answer.status,
    duration_ms: Math.round(durationMs * 10) / 10,
    ...answer.log,
  });
}

/** Text an unsigned caller chose (a path, a route name), at most 128 characters in a log line or answer. */
const MAX_CALLER_TEXT = 128;
function capped(text: string): string {
  return text.length <= MAX_CALLER_TEXT ? text : `${text.slice(0, MAX_CALLER_TEXT)}…(${text.length} characters)`;
}
