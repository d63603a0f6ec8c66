import { z } from "zod";
import { InvalidConfigValue } from "../kit/config-errors.ts";
import { duration, envNumber, size } from "../kit/units.ts";
import { createTargetClient, type ExchangeResult, exchange } from "./exchange.ts";
import type { OutboundMessage } from "./message.ts";
import { type CompiledRequestLine, compileRequestLine, HEADER_NAME } from "./request-templates.ts";
import { loadTargetTls, targetTlsSchema } from "./tls.ts";
import type { RenderResult, Target, TargetContext, TargetOutcome, TargetRequest } from "./types.ts";

export const headerNameSchema = z.string().regex(HEADER_NAME, "must be a valid HTTP header name");

/**
 * The keys every target type that talks HTTP shares (http and soap): where the headers come from,
 * the deadline, the connection pool, the answer's size, TLS. A target's schema spreads these into
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
};

/** The shared keys as a target's config holds them once parsed. */
export interface TransportConfig {
  readonly headers: Readonly<Record<string, string>>;
  readonly timeout: number;
  readonly idempotency_header: string;
  readonly connections: number;
  readonly max_response_size: number;
  readonly tls?: z.output<typeof targetTlsSchema> | undefined;
}

/**
 * What one call's request is made of, before the one merge rule puts it together:
 * 1. `user-agent`: actiongate's, unless the configured headers set one;
 * 2. the configured `headers` (placeholders filled);
 * 3. `auth`: the credentials the target's auth settings produce (basic auth, ...);
 * 4. `owned`: what the target type sets itself (content-type, SOAPAction) and the idempotency key.
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
  /** Credentials from the target's auth settings; secret, so never shown by explain or logs. */
  readonly authHeaders?: Readonly<Record<string, string>> | undefined;
  /** Names in `headers` the target type refuses, with the reason (`content-type` for SOAP). */
  readonly reservedConfigHeaders?: Readonly<Record<string, string>> | undefined;
  /** The body for one message, or why this payload cannot be sent (the payload's fault). */
  body(message: OutboundMessage): Promise<{ ok: true; body: string | undefined } | { ok: false; reason: string }>;
  /** Reads an answer (any status) into the outcome. */
  interpret(answer: Extract<ExchangeResult, { kind: "answered" }>, message: OutboundMessage): TargetOutcome;
  /** Compiles the URL and headers; a target may map a problem to the key the operator should change. */
  compileRequestLine?: (url: string, headers: Readonly<Record<string, string>>) => CompiledRequestLine;
}

/**
 * A target over HTTP: renders the request (URL and header placeholders, the body, the one header
 * merge rule), sends it through a pooled client with one deadline and a capped answer, and lets the
 * target type read the answer. HTTP and SOAP differ only in `body` and `interpret`.
 *
 * @example
 * return createTransportTarget({ type: "http", config, context, method: "POST", url: config.url, ownedHeaders: {}, body, interpret });
 */
export function createTransportTarget(spec: TransportTargetSpec): Target {
  const { config, context } = spec;
  const idempotencyHeader = config.idempotency_header.toLowerCase();
  const owned = lowerKeys(spec.ownedHeaders);
  const auth = lowerKeys(spec.authHeaders ?? {});
  for (const name of Object.keys(config.headers)) {
    const lower = name.toLowerCase();
    const reserved = Object.entries(spec.reservedConfigHeaders ?? {}).find(([other]) => other.toLowerCase() === lower);
    if (reserved) throw new InvalidConfigValue(reserved[1], ["headers", name]);
    if (lower === idempotencyHeader)
      throw new InvalidConfigValue(`carries the webhook-id (idempotency_header); choose another name`, [
        "headers",
        name,
      ]);
  }
  const requestLine = (spec.compileRequestLine ?? compileRequestLine)(spec.url, config.headers);
  const tls = config.tls && loadTargetTls(config.tls, context.configDir);
  const client = createTargetClient({
    connections: config.connections,
    timeoutMs: config.timeout,
    ...(tls ? { tls } : {}),
  });
  const ownHeaders = [
    ...new Set([
      "user-agent",
      idempotencyHeader,
      ...Object.keys(config.headers).map((name) => name.toLowerCase()),
      ...Object.keys(auth),
      ...Object.keys(owned),
      "content-length",
      "host",
    ]),
  ];

  const render = async (message: OutboundMessage): Promise<RenderResult> => {
    const line = await requestLine.render(message.payload);
    if (!line.ok) return line;
    const body = await spec.body(message);
    if (!body.ok) return body;
    const headers = mergeHeaders({
      userAgent: context.userAgent,
      configured: line.value.headers,
      auth,
      owned: { ...owned, [idempotencyHeader]: message.idempotencyKey },
      forwarded: message.forwardedHeaders,
    });
    const request: TargetRequest = {
      method: spec.method,
      url: line.value.url,
      headers,
      ...(body.body !== undefined ? { body: body.body } : {}),
      secretHeaders: new Set([...Object.keys(auth), ...Object.keys(message.forwardedHeaders)]),
    };
    return { ok: true, request };
  };

  return {
    type: spec.type,
    ownHeaders,
    render,
    async deliver(message) {
      const rendered = await render(message);
      if (!rendered.ok) return { kind: "invalid_message", reason: rendered.reason };
      const { request } = rendered;
      const result = await exchange(client, {
        url: request.url,
        method: request.method,
        headers: request.headers,
        ...(request.body !== undefined ? { body: request.body } : {}),
        timeoutMs: config.timeout,
        maxResponseSize: config.max_response_size,
      });
      if (result.kind !== "answered") return result;
      return spec.interpret(result, message);
    },
    close: () => client.close(),
  };
}

function lowerKeys(record: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(record).map(([name, value]) => [name.toLowerCase(), value]));
}
