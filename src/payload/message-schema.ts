import { z } from "zod";

/**
 * An id epilot gives a message (`id`, `use_case_id`, `event_id`, ...): printable ASCII of at most 256
 * characters, like a webhook-id. They become part of the outbox event's id and of the idempotency
 * key header, so nothing else is taken.
 */
const messageId = z
  .string()
  .min(1, "must not be empty")
  .max(256, "must be at most 256 characters")
  .regex(/^[\x21-\x7e]+$/, "must be printable ASCII");

/**
 * One message of epilot's Pollable Outbound queue, as `POST .../outbound/messages/poll` returns it
 * (epilot's Integration Toolkit, "Pollable Outbound"). Only these fields are checked; every other
 * field is kept as sent, because epilot adds fields over time and expressions may read them.
 */
export const pollMessageSchema = z.object({
  /** Opaque, stable per message across leases (`msg_...`). */
  id: messageId,
  /** Opaque, echoed back on ack; changes when a lapsed message is leased again (`lt_...`). */
  lease_token: z.string().min(1, "must not be empty").max(4096, "must be at most 4096 characters"),
  org_id: z.union([z.string().min(1), z.number()]).transform(String),
  /** The use case's id is half of the duplicate key, and `:` separates the halves in the outbox id. */
  use_case_id: messageId.refine((id) => !id.includes(":"), "must not contain `:`"),
  event_name: z.string().min(1, "must not be empty").max(256, "must be at most 256 characters"),
  event_id: messageId,
  /** Messages of one group are strictly ordered; distinct groups are independent (`"0"` in v1). */
  group: z.union([z.string(), z.number()]).transform(String),
  /** The mapped output of the use case's transform, or the standardized event as is. */
  payload: z.unknown().refine((value) => value !== undefined, "is required"),
  mapping_version: z.string().optional(),
  enqueued_at: z.string().refine((text) => !Number.isNaN(Date.parse(text)), "must be an ISO 8601 time"),
});

type CheckedFields = z.output<typeof pollMessageSchema>;

/** A polled message: the checked fields typed, everything else as sent. */
export type PollMessage = CheckedFields & { readonly [key: string]: unknown };

/**
 * What a route's `match`, `strip`, expressions and `{{ }}` placeholders read of a polled message: the
 * message as epilot sent it, without its `lease_token` (only the poll source needs that, to ack).
 */
export type PollMessageDocument = Omit<PollMessage, "lease_token"> & { readonly [key: string]: unknown };

export type PollMessageCheck = { ok: true; message: PollMessage } | { ok: false; error: z.ZodError };

/**
 * Checks one element of a poll answer's `messages` against the fields actiongate relies on; `org_id`
 * and `group` are made text.
 *
 * @example
 * const checked = checkPollMessage(answer.messages[0]);
 * if (checked.ok) use(checked.message.event_id);
 */
export function checkPollMessage(value: unknown): PollMessageCheck {
  const result = pollMessageSchema.safeParse(value);
  if (!result.success) return { ok: false, error: result.error };
  const message = { ...(value as Record<string, unknown>), ...result.data } as PollMessage;
  return { ok: true, message };
}
