import type { z } from "zod";
import type { Logger } from "../log/logger.ts";
import type { OutboundMessage } from "./message.ts";

export type { OutboundMessage } from "./message.ts";

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
  | { kind: "invalid_message"; reason: string };

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
}

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
  /** Builds the request for `message` without sending it (accept-time checks, `explain`). */
  render(message: OutboundMessage): Promise<RenderResult>;
  deliver(message: OutboundMessage): Promise<TargetOutcome>;
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
