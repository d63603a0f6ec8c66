import { DEFAULT_MAX_JSON_DEPTH, exceedsJsonDepth } from "../kit/json-depth.ts";
import type { VerifiedCall } from "../verify/signature.ts";
import type { ParsedMessage } from "./message.ts";
import { type CustomActionPayload, checkCustomActionPayload, describePayloadIssues } from "./schema.ts";

/**
 * The one way to make a {@link ParsedCall}; set by the class itself, used only by parseCustomAction
 * and parseUnsignedPayload below.
 */
let issueParsedCall: (call: VerifiedCall | UnsignedCall, payload: CustomActionPayload) => ParsedCall;

/**
 * A payload that `actiongate explain` and `actiongate test` read from a file: it was never signed
 * nor received, so it is no {@link VerifiedCall}. It carries what the stages after verification
 * read of a call (its headers, its id) and nothing that could pass for a signature.
 */
export interface UnsignedCall {
  readonly headers: Headers;
  readonly webhookId: string;
  readonly scheme: "unsigned";
}

/**
 * A call whose body is a custom action payload: the only input routing and delivery take. In the
 * gateway it is always a verified call: {@link parseCustomAction} makes one from a VerifiedCall.
 * The one other maker, {@link parseUnsignedPayload}, serves the local commands that run the
 * pipeline on a payload file (explain, test), and test/architecture keeps it out of everything that
 * serves. Private constructor, nominal through its private field: a hand-built object of the same
 * shape does not compile where a ParsedCall is asked for.
 */
export class ParsedCall {
  readonly #parsed = true;
  /** Tells it apart from a ParsedMessage (payload/message.ts) where routes take either. */
  readonly kind = "call" as const;

  private constructor(
    readonly call: VerifiedCall | UnsignedCall,
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

export interface ParseOptions {
  /** `server.max_json_depth`: a body nested deeper is refused before it is decoded or parsed. */
  readonly maxDepth: number;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Parses the verified body once: depth, UTF-8, JSON, then the custom action schema (unknown fields
 * kept). The depth is checked on the bytes first, so that a body nested 100,000 deep is refused in
 * microseconds instead of freezing the parser.
 *
 * @example
 * const result = parseCustomAction(verified, { maxDepth: 64 });
 * if (!result.ok) return badRequest(result.message);
 */
export function parseCustomAction(
  call: VerifiedCall,
  options: ParseOptions = { maxDepth: DEFAULT_MAX_JSON_DEPTH },
): ParseResult {
  if (exceedsJsonDepth(call.body, options.maxDepth))
    return { ok: false, message: `the body is nested deeper than ${options.maxDepth} levels` };
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
  return parsedFrom(call, json);
}

/**
 * For `actiongate explain` and `actiongate test` only: a payload read from a local file (already
 * JSON), checked against the custom action schema exactly as a received body is, made into a
 * ParsedCall whose call is an {@link UnsignedCall}. Nothing that serves may call it: a payload that
 * reached the gateway goes through verifySignature and {@link parseCustomAction}, and
 * test/architecture/casts.test.ts allows this call in one file of src/cli/ alone.
 *
 * @example
 * const result = parseUnsignedPayload(JSON.parse(text), { webhookId: "msg_local", headers: new Headers() });
 */
export function parseUnsignedPayload(
  json: unknown,
  origin: { readonly webhookId: string; readonly headers: Headers },
): ParseResult {
  return parsedFrom({ headers: origin.headers, webhookId: origin.webhookId, scheme: "unsigned" }, json);
}

function parsedFrom(call: VerifiedCall | UnsignedCall, json: unknown): ParseResult {
  const checked = checkCustomActionPayload(json);
  if (!checked.ok)
    return { ok: false, message: `not a custom action payload: ${describePayloadIssues(checked.error)}` };
  return { ok: true, parsed: issueParsedCall(call, checked.payload) };
}
