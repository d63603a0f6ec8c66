import { checkPollMessage, type PollMessage, type PollMessageDocument } from "./message-schema.ts";
import { describePayloadIssues } from "./schema.ts";

/** The one way to make a {@link ParsedMessage}; set by the class itself, used only by parsePollMessage below. */
let issueParsedMessage: (source: string, message: PollMessage) => ParsedMessage;

/** The prefix of the outbox id of every polled message: `poll:<use_case_id>:<event_id>`. */
export const POLLED_EVENT_ID_PREFIX = "poll:";

/**
 * A message leased from epilot's Pollable Outbound queue whose envelope passed the schema: the second
 * kind of input routes take, beside {@link ParsedCall}. It is not signed: it came from epilot's
 * Integration Toolkit API over TLS with the consumer token, fetched by the poll source. Only
 * {@link parsePollMessage} makes one (private constructor, nominal through its private field), so a
 * hand-built object of the same shape does not compile where a ParsedMessage is asked for.
 */
export class ParsedMessage {
  readonly #parsed = true;
  /** Tells it apart from a ParsedCall where routes take either. */
  readonly kind = "message" as const;
  /** What expressions read: the message without its lease token. */
  readonly document: PollMessageDocument;

  private constructor(
    /** The `poll:` entry it was leased by (what `match.source` names). */
    readonly source: string,
    readonly message: PollMessage,
  ) {
    const { lease_token: _, ...document } = message;
    this.document = document;
  }

  /**
   * The outbox event's id: the duplicate key `(use_case_id, event_id)`, so that one event is stored
   * once however often epilot delivers it, and under whichever message id.
   */
  get id(): string {
    return `${POLLED_EVENT_ID_PREFIX}${this.message.use_case_id}:${this.message.event_id}`;
  }

  /** Sent to the target as the idempotency key: the event's id, the same for every delivery of it. */
  get idempotencyKey(): string {
    return this.message.event_id;
  }

  /** Whether `value` was made by parsePollMessage (a runtime check for what a cast could slip past the compiler). */
  static is(value: unknown): value is ParsedMessage {
    return typeof value === "object" && value !== null && #parsed in value;
  }

  static {
    issueParsedMessage = (source, message) => new ParsedMessage(source, message);
  }
}

export type MessageParseResult = { ok: true; parsed: ParsedMessage } | { ok: false; message: string };

/**
 * Checks one message of a poll answer (a JSON value) and makes it the input routes take. `source`
 * is the name of the `poll:` entry that leased it. The message's content is never quoted in the
 * problem text, only the names of the fields that are wrong.
 *
 * @example
 * const result = parsePollMessage(answer.messages[0], "erp-feed");
 * if (result.ok) router.byMatch(result.parsed);
 */
export function parsePollMessage(value: unknown, source: string): MessageParseResult {
  const checked = checkPollMessage(value);
  if (!checked.ok) return { ok: false, message: `not a poll message: ${describePayloadIssues(checked.error)}` };
  return { ok: true, parsed: issueParsedMessage(source, checked.message) };
}
