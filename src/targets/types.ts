import type { z } from "zod";
import type { Logger } from "../log/logger.ts";
import type { TraceSpan } from "../telemetry/tracer.ts";
import type { TargetDescription } from "./describe.ts";
import type { ExchangeResult } from "./exchange.ts";
import type { OutboundMessage } from "./message.ts";
import type { RateLimitState } from "./rate-limit.ts";

export type { TargetDescription } from "./describe.ts";
export type { OutboundMessage } from "./message.ts";
export type { RateLimitState } from "./rate-limit.ts";

/** The legacy system's answer, in the shape `response.*` expressions read. */
export interface TargetResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  /** Parsed JSON when the answer is JSON, SOAP body content for SOAP, text otherwise. */
  readonly body: unknown;
}

/**
 * Where a request that was sent went: the URL with its placeholders filled, for the operator (logs,
 * attempt records), never for epilot's answer. Absent when nothing was sent.
 */
interface SentTo {
  url?: URL;
}

export type TargetOutcome =
  /** The target accepted the call (2xx, no SOAP fault). */
  | ({ kind: "delivered"; response: TargetResponse } & SentTo)
  /** The target answered but refused (non-2xx, SOAP fault); `reason` is safe to show epilot. */
  | ({
      kind: "rejected";
      response: TargetResponse;
      reason: string;
      info: Record<string, unknown>;
      /** Whether a later attempt may succeed; when unset, decided by the status (408, 429, 5xx retry). */
      retryable?: boolean;
    } & SentTo)
  /** No answer: refused, reset, DNS, TLS. `reason` names the kind of failure, never the host. */
  | ({ kind: "unreachable"; reason: string; code?: string } & SentTo)
  | ({ kind: "timeout"; timeoutMs: number } & SentTo)
  /** This payload cannot be sent (a placeholder without a value); the payload's fault, not the target's. */
  | { kind: "invalid_message"; reason: string }
  /**
   * Not sent: the target's `rate_limit` had no turn free within `max_wait`. Says nothing about the
   * target's health; a sync call gets 503, an async event is postponed to `retryAt` (ms since epoch).
   */
  | { kind: "held_back"; retryAt: number };

/** The request a target would send for one message: what `explain` shows and `deliver` sends. */
export interface TargetRequest {
  readonly method: string;
  readonly url: URL;
  /** Lower-case names, after the one merge rule (targets/transport.ts). */
  readonly headers: Readonly<Record<string, string>>;
  /** The body as sent: JSON text for http, the whole envelope for soap; none for GET. */
  readonly body?: string;
  /** Names of headers whose values are credentials (auth, forwarded tokens): shown as `***`, never logged. */
  readonly secretHeaders: ReadonlySet<string>;
  /** Credentials inside `body`, exactly as written there (a WS-Security password or digest): shown as `***`. */
  readonly secretTexts?: readonly string[];
}

/** A legacy system's answer as it arrived (any status), before the target type reads it. */
export type TargetAnswer = Extract<ExchangeResult, { kind: "answered" }>;

/** A rendered request, or why this payload cannot be sent (the payload's fault, never the target's). */
export type RenderResult = { ok: true; request: TargetRequest } | { ok: false; reason: string };

export interface Target {
  readonly type: string;
  /**
   * Lower-case names of the headers this target sets itself (its configured headers, credentials,
   * content type, action, idempotency key): a route may not forward an incoming header of one of
   * these names, so a caller can never replace them. Checked when the config is loaded.
   */
  readonly ownHeaders: readonly string[];
  /**
   * Builds the request for `message` without sending it (accept-time checks, `explain`). Nothing is
   * fetched: credentials that come from a token endpoint or a CSRF fetch appear as placeholders,
   * named in `secretHeaders` like every credential.
   */
  render(message: OutboundMessage): Promise<RenderResult>;
  /**
   * Sends `message`: waits for a turn of the rate limit (at most its `max_wait`, else `held_back`),
   * gets the credentials (token, CSRF session), sends, retries once when they had expired, and reads
   * the answer. Each request sent is a client span inside `trace` (the call's or the attempt's
   * span), whose `traceparent` the request carries; without tracing, no such header is sent.
   */
  deliver(message: OutboundMessage, trace?: TraceSpan): Promise<TargetOutcome>;
  /** Safe facts (auth, CSRF, rate limit, proxy; secrets as `***`) for `routes`, `explain` and the admin API. */
  describe(): TargetDescription;
  /** What the target's rate limit is doing now; undefined when it has none. For `/metrics` and `/api/routes`. */
  rateLimitState?(): RateLimitState | undefined;
  /**
   * Reads an answer to `message` exactly as `deliver` reads the one it receives (status, SOAP
   * faults, the body for `response.*`): route tests answer in the legacy system's stead with it.
   */
  interpret(answer: TargetAnswer, message: OutboundMessage): TargetOutcome;
  /** Closes pooled connections; called on shutdown and when a reload replaces the target. */
  close(): Promise<void>;
}

export interface TargetContext {
  /** Folder of the config file, against which relative paths (WSDL, templates) resolve. */
  readonly configDir: string;
  readonly logger: Logger;
  /** Sent as User-Agent, so legacy logs show who called. */
  readonly userAgent: string;
}

/**
 * A target type: its config schema (with `type` as the discriminator) and how to build it.
 * Each one registers in `registry.ts`; the config schema and docs are generated from there.
 */
export interface TargetDefinition<Schema extends z.ZodType = z.ZodType> {
  readonly type: string;
  readonly schema: Schema;
  /** Throws `InvalidConfigValue` (with a path inside the target) for what the schema cannot check. */
  create(config: z.output<Schema>, context: TargetContext): Target;
}
