import type { VerifiedCall } from "../verify/signature.ts";
import type { ParsedMessage } from "./message.ts";
import { type CustomActionPayload, checkCustomActionPayload, describePayloadIssues } from "./schema.ts";

/** The one way to make a {@link ParsedCall}; set by the class itself, used only by parseCustomAction below. */
let issueParsedCall: (call: VerifiedCall, payload: CustomActionPayload) => ParsedCall;

/**
 * A verified call whose body is a custom action payload: the only input routing and delivery take.
 * Only {@link parseCustomAction} makes one (private constructor, nominal through its private
 * field), so a hand-built object of the same shape does not compile where a ParsedCall is asked for.
 */
export class ParsedCall {
  readonly #parsed = true;
  /** Tells it apart from a ParsedMessage (payload/message.ts) where routes take either. */
  readonly kind = "call" as const;

  private constructor(
    readonly call: VerifiedCall,
    readonly payload: CustomActionPayload,
  ) {}

  /** The webhook-id: the idempotency key towards targets and the outbox event's id. */
  get id(): string {
    return this.call.webhookId;
  }

  /** Sent to the target as the idempotency key: the webhook-id. */
  get idempotencyKey(): string {
    return this.call.webhookId;
  }

  /** What a route's `match`, `strip`, expressions and placeholders read: the payload. */
  get document(): CustomActionPayload {
    return this.payload;
  }

  /** Whether `value` was made by parseCustomAction (a runtime check for what a cast could slip past the compiler). */
  static is(value: unknown): value is ParsedCall {
    return typeof value === "object" && value !== null && #parsed in value;
  }

  static {
    issueParsedCall = (call, payload) => new ParsedCall(call, payload);
  }
}

/**
 * Either kind of input a route takes: a custom action call or a polled message. Only their parsers
 * make them, so whatever reaches a route passed verification (a call) or came from epilot's queue
 * (a message), and its schema.
 */
export type ParsedInput = ParsedCall | ParsedMessage;

export type ParseResult = { ok: true; parsed: ParsedCall } | { ok: false; message: string };

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Parses the verified body once: UTF-8, JSON, then the custom action schema (unknown fields kept).
 *
 * @example
 * const result = parseCustomAction(verified);
 * if (!result.ok) return badRequest(result.message);
 */
export function parseCustomAction(call: VerifiedCall): ParseResult {
  let text: string;
  try {
    text = utf8.decode(call.body);
  } catch {
    return { ok: false, message: "body is not valid UTF-8" };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // The parser's message quotes the offending text, which may be a secret; the answer and the
    // log get no part of the body.
    return { ok: false, message: "body is not valid JSON" };
  }
  const checked = checkCustomActionPayload(json);
  if (!checked.ok)
    return { ok: false, message: `not a custom action payload: ${describePayloadIssues(checked.error)}` };
  return { ok: true, parsed: issueParsedCall(call, checked.payload) };
}
