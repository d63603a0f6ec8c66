import type { ParsedInput } from "../payload/parse.ts";

/** What a message is made of, once a route has shaped a call (strip, transform, forwarded headers). */
export interface MessageParts {
  /** The transform's result (or the stripped payload when the route has no transform). */
  readonly body: unknown;
  /** The stripped payload, which `{{ }}` placeholders in URLs and headers read. */
  readonly payload: unknown;
  /** Incoming headers the route names in `forward_headers`, nothing else (lower-case names). */
  readonly forwardedHeaders: Readonly<Record<string, string>>;
}

/** A message as the outbox keeps it for a later attempt: its parts and the id it was accepted under. */
export interface StoredMessageParts extends MessageParts {
  readonly id: string;
  /** The idempotency key it was accepted with, when it is not `id` (polled messages: the event id). */
  readonly idempotencyKey?: string | undefined;
}

/**
 * What a target is handed for one delivery. Nominal (private constructor and field): it is made
 * only from a ParsedCall or a ParsedMessage (`OutboundMessage.fromCall`, which delivery/prepare.ts calls after
 * the route shaped the call) or, for a later attempt, from the outbox row that such a message was
 * stored as (`OutboundMessage.fromStored`, called only by the delivery engine; test/architecture
 * keeps it that way). A plain object of the same shape does not compile where a message is asked for.
 */
export class OutboundMessage implements MessageParts {
  readonly #outbound = true;

  private constructor(
    /**
     * Sent as the idempotency key so the legacy system can drop a duplicate of a retried delivery:
     * the webhook-id of a call, the event id of a polled message.
     */
    readonly idempotencyKey: string,
    readonly body: unknown,
    readonly payload: unknown,
    readonly forwardedHeaders: Readonly<Record<string, string>>,
  ) {}

  /** The name the idempotency key had before polled messages: the webhook-id of a call. */
  get webhookId(): string {
    return this.idempotencyKey;
  }

  /**
   * The message for a parsed call or polled message, with what its route made of it.
   *
   * @example
   * const message = OutboundMessage.fromCall(parsed, { body, payload: stripped, forwardedHeaders: {} });
   */
  static fromCall(parsed: ParsedInput, parts: MessageParts): OutboundMessage {
    return new OutboundMessage(parsed.idempotencyKey, parts.body, parts.payload, parts.forwardedHeaders);
  }

  /**
   * The message again, for a later attempt, from the outbox row it was stored as when its call was
   * accepted (the store holds only what a message made by `fromCall` held).
   */
  static fromStored(stored: StoredMessageParts): OutboundMessage {
    return new OutboundMessage(
      stored.idempotencyKey ?? stored.id,
      stored.body,
      stored.payload,
      stored.forwardedHeaders,
    );
  }

  /** Whether `value` was made by fromCall or fromStored (a runtime check for what a cast could slip past the compiler). */
  static is(value: unknown): value is OutboundMessage {
    return typeof value === "object" && value !== null && #outbound in value;
  }
}
