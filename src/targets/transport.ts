import { z } from "zod";
import { InvalidConfigValue } from "../kit/config-errors.ts";
import { duration, envNumber, formatDuration, size } from "../kit/units.ts";
import { redactUrl } from "../kit/urls.ts";
import { type ProxySettings, proxySchema } from "../runtime/proxy.ts";
import {
  noopSpan,
  type SpanAttributes,
  serverAttributes,
  type TraceContextHeaders,
  type TraceSpan,
} from "../telemetry/tracer.ts";
import { type AuthConfig, authSchema, createAuthenticator } from "./auth/registry.ts";
import type { Authenticator } from "./auth/types.ts";
import { type CsrfConfig, CsrfSession, csrfSchema } from "./csrf.ts";
import type { TargetDescription } from "./describe.ts";
import { createTargetClient, type ExchangeResult, exchange } from "./exchange.ts";
import type { OutboundMessage } from "./message.ts";
import { type RateLimitConfig, RateLimiter, rateLimitSchema } from "./rate-limit.ts";
import {
  type CompiledRequestLine,
  compileRequestLine,
  HEADER_NAME,
  type RenderedRequestLine,
} from "./request-templates.ts";
import { loadTargetTls, targetTlsSchema } from "./tls.ts";
import type { Target, TargetContext, TargetOutcome, TargetRequest } from "./types.ts";

export const headerNameSchema = z.string().regex(HEADER_NAME, "must be a valid HTTP header name");

/**
 * The keys every target type that talks HTTP shares (http and soap): where the headers come from,
 * the deadline, the connection pool, the answer's size, TLS, auth, CSRF, rate limit and proxy. A target's schema spreads these into
 * its own `strictObject`, so the keys mean the same and are documented once.
 */
export const transportKeys = {
  headers: z
    .record(headerNameSchema, z.string())
    .default({})
    .describe(
      "HTTP headers sent with every call; values may hold `${ENV}` and `{{ <JSONata> }}` over the stripped payload",
    ),
  timeout: duration
    .prefault("10s")
    .describe("deadline for the whole exchange (connect, send, answer); on expiry epilot gets 504"),
  idempotency_header: headerNameSchema
    .default("Idempotency-Key")
    .describe(
      "HTTP header that carries the webhook-id (the event_id of a polled message), so the legacy system can drop duplicates",
    ),
  connections: envNumber(z.number().int().min(1).max(1024))
    .prefault(32)
    .describe("keep-alive connections kept open per target host"),
  max_response_size: size.prefault("10mb").describe("larger answers are cut off and treated as a failure"),
  tls: targetTlsSchema.optional(),
  auth: authSchema.optional(),
  csrf: csrfSchema.optional(),
  rate_limit: rateLimitSchema.optional(),
  proxy: proxySchema
    .optional()
    .describe(
      "forward proxy for the target's calls and its token and CSRF fetches (`CONNECT` for https): `http://proxy:3128`, or a mapping with credentials and `no_proxy`; the environment's HTTP(S)_PROXY is never used",
    ),
};

/** The shared keys as a target's config holds them once parsed. */
export interface TransportConfig {
  readonly headers: Readonly<Record<string, string>>;
  readonly timeout: number;
  readonly idempotency_header: string;
  readonly connections: number;
  readonly max_response_size: number;
  readonly tls?: z.output<typeof targetTlsSchema> | undefined;
  readonly auth?: AuthConfig | undefined;
  readonly csrf?: CsrfConfig | undefined;
  readonly rate_limit?: RateLimitConfig | undefined;
  readonly proxy?: ProxySettings | undefined;
}

/**
 * What one call's request is made of, before the one merge rule puts it together:
 * 1. `user-agent`: actiongate's, unless the configured headers set one;
 * 2. the configured `headers` (placeholders filled);
 * 3. `auth`: the credentials the target's `auth` produces (basic, a Bearer token) and its CSRF session
 *    (token and cookies);
 * 4. `owned`: what the target type sets itself (content-type, SOAPAction), the idempotency key, and
 *    with tracing on the W3C `traceparent` (and `tracestate`) of the request's client span.
 * The incoming headers a route forwards (`forward_headers`) come last but may not replace any of the
 * above: a name in both is refused when the config is loaded (see {@link Target.ownHeaders}), so
 * a caller can never override the target's credentials, content type or action.
 */
export interface RequestHeaderParts {
  readonly userAgent: string;
  readonly configured: Readonly<Record<string, string>>;
  readonly auth?: Readonly<Record<string, string>> | undefined;
  readonly owned: Readonly<Record<string, string>>;
  readonly forwarded: Readonly<Record<string, string>>;
}

/**
 * The one header merge rule of every target (see {@link RequestHeaderParts}); all names lower-case.
 *
 * @example
 * mergeHeaders({ userAgent: "actiongate/1", configured: { "x-org": "1" }, owned: { "content-type": "text/xml" }, forwarded: {} });
 * // { "user-agent": "actiongate/1", "x-org": "1", "content-type": "text/xml" }
 */
export function mergeHeaders(parts: RequestHeaderParts): Record<string, string> {
  const merged: Record<string, string> = { "user-agent": parts.userAgent };
  for (const source of [parts.configured, parts.auth ?? {}, parts.owned]) {
    for (const [name, value] of Object.entries(source)) merged[name.toLowerCase()] = value;
  }
  for (const [name, value] of Object.entries(parts.forwarded)) {
    const lower = name.toLowerCase();
    // Refused at load already; kept here so that no path can let a caller's header win.
    if (!(lower in merged)) merged[lower] = value;
  }
  return merged;
}

/**
 * The W3C trace context headers: set by the target itself with tracing on (the request's client
 * span), sent by nobody with tracing off. Never forwarded and never configured, so that the trace a
 * legacy system sees is always actiongate's own, whatever the route or the caller says.
 */
export const TRACE_CONTEXT_HEADERS = ["traceparent", "tracestate"] as const;

/** How a target type turns a message into its request body and reads the answer. */
export interface TransportTargetSpec {
  readonly type: string;
  readonly config: TransportConfig;
  readonly context: TargetContext;
  /** Method of every call (`GET` sends no body). */
  readonly method: string;
  /** The target's `url`: its placeholders are filled per call. */
  readonly url: string;
  /** Headers the target type sets itself, beside the idempotency key (content-type, SOAPAction). */
  readonly ownedHeaders: Readonly<Record<string, string>>;
  /** The target's auth, when the target type reads it from another key too (soap's `basic_auth`); else `config.auth`. */
  readonly auth?: AuthConfig | undefined;
  /** Names in `headers` the target type refuses, with the reason (`content-type` for SOAP). */
  readonly reservedConfigHeaders?: Readonly<Record<string, string>> | undefined;
  /** What `describe()` adds for this target type (`operation` for soap). */
  readonly details?: Readonly<Record<string, string>> | undefined;
  /** The body for one message (with the credentials written into it), or why this payload cannot be sent (the payload's fault). */
  body(
    message: OutboundMessage,
  ): Promise<{ ok: true; body: string | undefined; secretTexts?: readonly string[] } | { ok: false; reason: string }>;
  /** Reads an answer (any status) into the outcome. */
  interpret(answer: Extract<ExchangeResult, { kind: "answered" }>, message: OutboundMessage): TargetOutcome;
  /** Compiles the URL and headers; a target may map a problem to the key the operator should change. */
  compileRequestLine?: (url: string, headers: Readonly<Record<string, string>>) => CompiledRequestLine;
}

/** The parts of one call that do not change between its attempts (a retry after a 401). */
interface PreparedCall {
  readonly line: RenderedRequestLine;
  readonly body: string | undefined;
  /** Texts in the body that are credentials (a WS-Security password): masked by explain and test. */
  readonly secretTexts?: readonly string[];
}

/** The live credentials of one attempt, as sent, and the CSRF token among them. */
type Credentials =
  | { ok: true; auth: Readonly<Record<string, string>>; headers: Record<string, string>; csrfToken?: string }
  | { ok: false; outcome: TargetOutcome; auth?: Readonly<Record<string, string>> };

/**
 * A target over HTTP: renders the request (URL and header placeholders, the body, the one header
 * merge rule), waits for its turn under `rate_limit`, gets the credentials (`auth`, `csrf`), sends
 * it through a pooled client (through `proxy` when set) with one deadline for the whole call and a
 * capped answer, retries once when the credentials had expired (401 with a token, 403 `Required`
 * from a CSRF-protected service), and lets the target type read the answer. HTTP and SOAP differ
 * only in `body` and `interpret`.
 *
 * @example
 * return createTransportTarget({ type: "http", config, context, method: "POST", url: config.url, ownedHeaders: {}, body, interpret });
 */
export function createTransportTarget(spec: TransportTargetSpec): Target {
  const { config, context } = spec;
  const idempotencyHeader = config.idempotency_header.toLowerCase();
  const owned = lowerKeys(spec.ownedHeaders);
  const authConfig = spec.auth ?? config.auth;
  const tls = config.tls && loadTargetTls(config.tls, context.configDir);
  const authenticator: Authenticator | undefined =
    authConfig &&
    createAuthenticator(authConfig, {
      configDir: context.configDir,
      logger: context.logger,
      userAgent: context.userAgent,
      timeoutMs: config.timeout,
      proxy: config.proxy,
    });
  const client = createTargetClient({
    connections: config.connections,
    timeoutMs: config.timeout,
    ...(tls ? { tls } : {}),
    ...(config.proxy ? { proxy: config.proxy } : {}),
  });
  const csrf = config.csrf && new CsrfSession(config.csrf, client);
  const limiter =
    config.rate_limit && new RateLimiter({ requests: config.rate_limit.requests, perMs: config.rate_limit.per });
  const credentialNames = [...(authenticator?.headerNames ?? []), ...(csrf?.headerNames ?? [])];

  for (const name of Object.keys(config.headers)) {
    const lower = name.toLowerCase();
    const reserved = Object.entries(spec.reservedConfigHeaders ?? {}).find(([other]) => other.toLowerCase() === lower);
    if (reserved) throw new InvalidConfigValue(reserved[1], ["headers", name]);
    if (lower === idempotencyHeader)
      throw new InvalidConfigValue(`carries the webhook-id (idempotency_header); choose another name`, [
        "headers",
        name,
      ]);
    if (authenticator?.headerNames.includes(lower))
      throw new InvalidConfigValue(`is set by auth (${authConfig!.type}); set auth or this header, not both`, [
        "headers",
        name,
      ]);
    if (csrf?.headerNames.includes(lower))
      throw new InvalidConfigValue("is set by the CSRF session (csrf); remove it from headers", ["headers", name]);
    if ((TRACE_CONTEXT_HEADERS as readonly string[]).includes(lower))
      throw new InvalidConfigValue(
        "is set by actiongate (the trace context of each request when telemetry is on); remove it from headers",
        ["headers", name],
      );
  }
  const requestLine = (spec.compileRequestLine ?? compileRequestLine)(spec.url, config.headers);
  const ownHeaders = [
    ...new Set([
      "user-agent",
      idempotencyHeader,
      ...Object.keys(config.headers).map((name) => name.toLowerCase()),
      ...credentialNames,
      ...Object.keys(owned),
      ...TRACE_CONTEXT_HEADERS,
      "content-length",
      "host",
    ]),
  ];
  /** What every client span of this target says about it (the SOAP operation), built once. */
  const spanAttributes: SpanAttributes = {
    "http.request.method": spec.method,
    "actiongate.target.type": spec.type,
    ...(spec.details?.operation !== undefined ? { "actiongate.soap.operation": spec.details.operation } : {}),
    ...(spec.details?.soap_action !== undefined ? { "actiongate.soap.action": spec.details.soap_action } : {}),
  };
  /** What render() shows in place of credentials that are fetched at call time (secret either way). */
  const credentialPreview: Record<string, string> = {
    ...authenticator?.preview(),
    ...(csrf ? { [csrf.header]: "<token fetched from the target>", cookie: "<the CSRF session's cookies>" } : {}),
  };

  const prepare = async (
    message: OutboundMessage,
  ): Promise<{ ok: true; call: PreparedCall } | { ok: false; reason: string }> => {
    const line = await requestLine.render(message.payload);
    if (!line.ok) return line;
    const body = await spec.body(message);
    if (!body.ok) return body;
    return {
      ok: true,
      call: {
        line: line.value,
        body: body.body,
        ...(body.secretTexts?.length ? { secretTexts: body.secretTexts } : {}),
      },
    };
  };

  const assemble = (
    call: PreparedCall,
    message: OutboundMessage,
    auth: Readonly<Record<string, string>>,
    traceContext?: TraceContextHeaders,
  ): TargetRequest => ({
    method: spec.method,
    url: call.line.url,
    headers: mergeHeaders({
      userAgent: context.userAgent,
      configured: call.line.headers,
      auth,
      owned: { ...owned, [idempotencyHeader]: message.idempotencyKey, ...traceContext },
      forwarded: message.forwardedHeaders,
    }),
    ...(call.body !== undefined ? { body: call.body } : {}),
    secretHeaders: new Set([...Object.keys(auth), ...Object.keys(message.forwardedHeaders)]),
    ...(call.secretTexts ? { secretTexts: call.secretTexts } : {}),
  });

  const credentials = async (call: PreparedCall, deadline: AbortSignal): Promise<Credentials> => {
    let auth: Readonly<Record<string, string>> = {};
    if (authenticator) {
      const result = await authenticator.headers(deadline);
      if (!result.ok) return result;
      auth = result.headers;
    }
    if (!csrf) return { ok: true, auth, headers: { ...auth } };
    const session = await csrf.headers({
      callUrl: call.line.url,
      headers: { ...call.line.headers, "user-agent": context.userAgent, ...auth },
      timeoutMs: config.timeout,
      signal: deadline,
    });
    if (!session.ok) return { ...session, auth };
    return { ok: true, auth, headers: { ...auth, ...session.headers }, csrfToken: session.headers[csrf.header] ?? "" };
  };

  /** One more call after expired credentials takes a turn of the rate limit too, within the call's deadline. */
  const turnForRetry = async (startedAt: number): Promise<boolean> => {
    if (!limiter) return true;
    const remaining = config.timeout - (performance.now() - startedAt);
    return (await limiter.take(Math.max(0, Math.min(remaining, config.rate_limit!.max_wait)))).ok;
  };

  return {
    type: spec.type,
    ownHeaders,
    async render(message) {
      const prepared = await prepare(message);
      if (!prepared.ok) return prepared;
      return { ok: true, request: assemble(prepared.call, message, credentialPreview) };
    },
    async deliver(message, trace: TraceSpan = noopSpan) {
      const prepared = await prepare(message);
      if (!prepared.ok) return { kind: "invalid_message", reason: prepared.reason };
      const { call } = prepared;
      if (limiter) {
        const turn = await limiter.take(config.rate_limit!.max_wait);
        if (!turn.ok) return { kind: "held_back", retryAt: turn.retryAt };
      }
      // One deadline for the whole call: token and CSRF fetches, the call, its one retry.
      const startedAt = performance.now();
      const deadline = AbortSignal.timeout(config.timeout);
      let authRetried = false;
      let csrfRetried = false;
      for (;;) {
        // Most legacy targets need neither a token nor a CSRF session: no await for them.
        const live = authenticator || csrf ? await credentials(call, deadline) : NO_CREDENTIALS;
        if (!live.ok) {
          // A CSRF fetch refused with 401: the token may have been revoked; the same one retry applies.
          const refusedFetch = live.outcome.kind === "rejected" && live.outcome.response.status === 401;
          if (refusedFetch && authenticator && !authRetried && authenticator.refused(live.auth ?? {})) {
            authRetried = true;
            if (await turnForRetry(startedAt)) continue;
          }
          return live.outcome;
        }
        // Each request sent is a client span; the target receives its traceparent.
        const span = trace.child(spec.method, "client", spanAttributes);
        const request = assemble(call, message, live.headers, span.traceHeaders());
        if (span.recording) {
          span.setAttributes({
            ...serverAttributes(request.url),
            "http.request.resend_count": authRetried || csrfRetried ? 1 : undefined,
          });
        }
        const result = await exchange(
          client,
          {
            url: request.url,
            method: request.method,
            headers: request.headers,
            ...(request.body !== undefined ? { body: request.body } : {}),
            timeoutMs: config.timeout,
            maxResponseSize: config.max_response_size,
          },
          deadline,
        );
        endClientSpan(span, result);
        // The URL goes along for the operator's records; epilot's answers never show it.
        if (result.kind !== "answered") return { ...result, url: request.url };
        csrf?.record(request.url, result.setCookies);
        let again = false;
        if (result.status === 401 && authenticator && !authRetried && authenticator.refused(live.auth)) {
          authRetried = true;
          again = true;
        } else if (csrf && !csrfRetried && csrf.rejectedAsRequired(result.status, result.headers, live.csrfToken)) {
          csrfRetried = true;
          again = true;
        }
        if (!again || !(await turnForRetry(startedAt))) {
          const outcome = spec.interpret(result, message);
          return outcome.kind === "delivered" || outcome.kind === "rejected"
            ? { ...outcome, url: request.url }
            : outcome;
        }
      }
    },
    describe(): TargetDescription {
      const proxy = config.proxy;
      const limit = config.rate_limit;
      return {
        type: spec.type,
        method: spec.method,
        url: redactUrl(spec.url),
        ...(spec.details ? { details: spec.details } : {}),
        ...(authenticator ? { auth: authenticator.describe() } : {}),
        ...(csrf ? { csrf: csrf.describe() } : {}),
        ...(limit
          ? {
              rate_limit: {
                requests: limit.requests,
                per: formatDuration(limit.per),
                max_wait: formatDuration(limit.max_wait),
              },
            }
          : {}),
        ...(proxy
          ? {
              proxy: {
                url: proxy.url,
                ...(proxy.username !== undefined ? { username: proxy.username, password: "***" as const } : {}),
                no_proxy: proxy.noProxy,
              },
            }
          : {}),
      };
    },
    rateLimitState: () => limiter?.state(),
    close: async () => {
      await Promise.all([client.close(), authenticator?.close()]);
    },
    interpret: (answer, message) => spec.interpret(answer, message),
  };
}

/** The credentials of a target without `auth` and `csrf`. */
const NO_CREDENTIALS: Credentials = Object.freeze({
  ok: true as const,
  auth: Object.freeze({}),
  headers: Object.freeze({}),
});

/** What the request's answer was, on its client span: the status (4xx and 5xx fail a client span), or why there was none. */
function endClientSpan(span: TraceSpan, result: ExchangeResult): void {
  if (span.recording) {
    if (result.kind === "answered") {
      span.setAttributes({
        "http.response.status_code": result.status,
        "error.type": result.status >= 400 ? String(result.status) : undefined,
      });
      if (result.status >= 400) span.fail(`target answered HTTP ${result.status}`);
    } else if (result.kind === "timeout") {
      span.setAttributes({ "error.type": "timeout" });
      span.fail(`no answer within ${result.timeoutMs} ms`);
    } else {
      span.setAttributes({ "error.type": result.code ?? "unreachable" });
      span.fail(result.reason);
    }
  }
  span.end();
}

function lowerKeys(record: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(record).map(([name, value]) => [name.toLowerCase(), value]));
}
