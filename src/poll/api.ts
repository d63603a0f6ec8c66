import { z } from "zod";
import { parseRetryAfter } from "../kit/retry-after.ts";
import { createHttpClient, type HttpClient, ResponseTooLargeError } from "../runtime/http-client.ts";
import { describeNetworkError } from "../runtime/network-errors.ts";

/** Where one integration's queue is and how to reach it. */
export interface OutboundQueue {
  readonly apiUrl: string;
  readonly integrationId: string;
  readonly token: string;
  readonly timeoutMs: number;
  readonly userAgent: string;
}

/** One message's place in an ack: what epilot handed out with it. */
export interface AckEntry {
  readonly id: string;
  readonly lease_token: string;
}

/** epilot's verdict on one acknowledged id. */
export interface AckResult {
  readonly id: string;
  readonly status: "accepted" | "rejected";
  /** With `rejected`: `stale_lease`, `out_of_order`, `not_found` (or a reason epilot adds later). */
  readonly reason?: string;
}

/** How a call to the queue went, in the terms the poll loop acts on. */
export type QueueFailure =
  /** Worth another try after a pause: no answer, a timeout, 408, 429, 5xx, an answer that does not read. */
  | { readonly kind: "retry"; readonly reason: string; readonly retryAfterMs?: number }
  /** The token is refused (401, 403): a configuration problem, shown in /readyz. */
  | { readonly kind: "refused"; readonly reason: string; readonly status: number }
  /** Another 4xx (an unknown integration, a request epilot does not take): also the operator's to fix. */
  | { readonly kind: "fatal"; readonly reason: string; readonly status: number };

export type PollAnswer =
  | {
      readonly kind: "batch";
      /** As sent: each is checked on its own (payload/message.ts), so that one bad message does not hide the rest. */
      readonly messages: readonly unknown[];
      readonly hasMore: boolean;
      readonly visibilityTimeoutS?: number;
    }
  | QueueFailure;

export type AckAnswer = { readonly kind: "acked"; readonly results: readonly AckResult[] } | QueueFailure;

/** epilot caps a poll answer near 5.5 MB; this leaves room without letting a runaway answer fill memory. */
const MAX_POLL_ANSWER_BYTES = 16 * 1024 * 1024;
const MAX_ACK_ANSWER_BYTES = 1024 * 1024;
/** A Retry-After beyond this is not followed for longer: the loop looks again after at most 5 minutes. */
const MAX_RETRY_AFTER_MS = 300_000;

const pollAnswerSchema = z.object({
  messages: z.array(z.unknown()),
  has_more: z.boolean().optional(),
  visibility_timeout_seconds: z.number().optional(),
});

const ackAnswerSchema = z.object({
  results: z.array(
    z.object({ id: z.string(), status: z.enum(["accepted", "rejected"]), reason: z.string().optional() }),
  ),
});

/**
 * The two calls of epilot's Pollable Outbound API (Integration Toolkit, "Pollable Outbound"), on the
 * runtime's HTTP client: `POST <api_url>/v1/integrations/<id>/outbound/messages/poll` `{"limit": N}`
 * leases a batch, `POST .../outbound/messages/ack` `{"acks": [{id, lease_token}]}` acknowledges it.
 * Every failure is a {@link QueueFailure}; reasons name the status or the kind of network failure,
 * never the token or the answer's content.
 *
 * @example
 * const api = outboundQueueApi({ apiUrl, integrationId, token, timeoutMs: 30_000, userAgent });
 * const batch = await api.poll(100, AbortSignal.timeout(60_000));
 * if (batch.kind === "batch") await api.ack(batch.messages.map(({ id, lease_token }) => ({ id, lease_token })));
 */
export function outboundQueueApi(queue: OutboundQueue, client: HttpClient = sharedClient()): OutboundQueueApi {
  const base = `${queue.apiUrl.replace(/\/+$/, "")}/v1/integrations/${encodeURIComponent(queue.integrationId)}/outbound/messages`;
  const call = async (
    path: "poll" | "ack",
    body: unknown,
    maxBytes: number,
    signal?: AbortSignal,
  ): Promise<{ kind: "answer"; json: unknown } | QueueFailure> => {
    const deadline = AbortSignal.timeout(queue.timeoutMs);
    const combined = signal ? AbortSignal.any([deadline, signal]) : deadline;
    let answer: Awaited<ReturnType<HttpClient["request"]>>;
    try {
      answer = await client.request({
        url: new URL(`${base}/${path}`),
        method: "POST",
        headers: {
          "content-type": "application/json",
          accept: "application/json",
          authorization: `Bearer ${queue.token}`,
          "user-agent": queue.userAgent,
        },
        body: JSON.stringify(body),
        signal: combined,
        maxResponseSize: maxBytes,
      });
    } catch (error) {
      if (signal?.aborted) return { kind: "retry", reason: "stopped" };
      if (deadline.aborted) return { kind: "retry", reason: `${path}: no answer within ${queue.timeoutMs} ms` };
      if (error instanceof ResponseTooLargeError) return { kind: "retry", reason: `${path}: ${error.message}` };
      const failure = describeNetworkError(error);
      return { kind: "retry", reason: `${path}: ${failure.reason}${failure.code ? ` (${failure.code})` : ""}` };
    }
    const status = answer.status;
    if (status >= 200 && status < 300) {
      try {
        return { kind: "answer", json: JSON.parse(answer.body.toString("utf8")) };
      } catch {
        return { kind: "retry", reason: `${path}: the answer (HTTP ${status}) is not JSON` };
      }
    }
    const reason = `${path}: HTTP ${status}`;
    if (status === 401 || status === 403) {
      return {
        kind: "refused",
        status,
        reason: `${reason}: the token is refused (it needs the integration:consume grant on this integration)`,
      };
    }
    if (status === 408 || status === 429 || status >= 500) {
      const wait = parseRetryAfter(answer.headers["retry-after"]);
      return {
        kind: "retry",
        reason,
        ...(wait !== undefined ? { retryAfterMs: Math.min(wait, MAX_RETRY_AFTER_MS) } : {}),
      };
    }
    return { kind: "fatal", status, reason: status === 404 ? `${reason}: is the integration id right?` : reason };
  };

  return {
    async poll(limit, signal) {
      const answer = await call("poll", { limit }, MAX_POLL_ANSWER_BYTES, signal);
      if (answer.kind !== "answer") return answer;
      const checked = pollAnswerSchema.safeParse(answer.json);
      if (!checked.success) return { kind: "retry", reason: "poll: the answer has no messages list" };
      return {
        kind: "batch",
        messages: checked.data.messages,
        hasMore: checked.data.has_more === true,
        ...(checked.data.visibility_timeout_seconds !== undefined
          ? { visibilityTimeoutS: checked.data.visibility_timeout_seconds }
          : {}),
      };
    },
    async ack(acks, signal) {
      const answer = await call("ack", { acks }, MAX_ACK_ANSWER_BYTES, signal);
      if (answer.kind !== "answer") return answer;
      const checked = ackAnswerSchema.safeParse(answer.json);
      if (!checked.success) return { kind: "retry", reason: "ack: the answer has no results list" };
      return {
        kind: "acked",
        results: checked.data.results.map((result) => ({
          id: result.id,
          status: result.status,
          ...(result.reason !== undefined ? { reason: result.reason } : {}),
        })),
      };
    },
  };
}

export interface OutboundQueueApi {
  /** Leases up to `limit` messages (1 to 100). */
  poll(limit: number, signal?: AbortSignal): Promise<PollAnswer>;
  /** Acknowledges messages, in the batch's order (1 to 100). */
  ack(acks: readonly AckEntry[], signal?: AbortSignal): Promise<AckAnswer>;
}

let shared: HttpClient | undefined;

/** One keep-alive client for every poll source: they all call the same epilot host, one request at a time each. */
function sharedClient(): HttpClient {
  shared ??= createHttpClient({ connections: 16, connectTimeoutMs: 10_000 });
  return shared;
}
