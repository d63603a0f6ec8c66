import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A local stand-in for epilot's Integration Toolkit API, as its "Pollable Outbound" and "External
 * Monitoring Events" pages describe it, strict where epilot is:
 * - one ordered stream per integration; a poll leases the head run of up to `limit` messages under a
 *   visibility timeout, each with a fresh lease token; while a lease is out, every poll gets an empty
 *   batch (one in-flight batch per stream); a lapsed lease makes the messages available again, with
 *   new lease tokens;
 * - acks must be prefix-contiguous in stream order: an ack of the head with its current lease token
 *   is accepted (the message is gone for good); a lapsed or replaced lease token is `stale_lease`;
 *   an unknown (or already acknowledged) id `not_found`; everything past the first gap `out_of_order`;
 * - the consumer token on poll and ack, the monitoring token on external-events, else 401;
 * - monitoring takes at most 100 spans a request and checks each span's required fields.
 * Tests steer it: enqueue events (the same event again under a new message id, as epilot may), make
 * polls or acks fail, hold acks unanswered, take monitoring down.
 */
export interface ToolkitMessage {
  id: string;
  lease_token: string;
  org_id: string;
  use_case_id: string;
  event_name: string;
  event_id: string;
  group: string;
  payload: unknown;
  mapping_version?: string;
  enqueued_at: string;
}

export interface ToolkitEvent {
  event_id?: string;
  use_case_id?: string;
  event_name?: string;
  org_id?: string;
  group?: string;
  payload?: unknown;
  mapping_version?: string;
  /** Extra envelope fields, or a broken envelope on purpose. */
  envelope?: Record<string, unknown>;
}

interface Item {
  message: Omit<ToolkitMessage, "lease_token"> & Record<string, unknown>;
  leaseToken?: string;
  leasedUntil?: number;
  leases: number;
}

export interface RecordedSpan {
  correlation_id: string;
  level: string;
  use_case_slug: string;
  occurred_at: string;
  message: string;
  detail?: Record<string, any>;
}

export interface AckRecord {
  acks: { id: string; lease_token: string }[];
  results: { id: string; status: string; reason?: string }[];
}

export type Failure = { status: number; retryAfter?: string } | "destroy";

export interface IntegrationToolkit {
  readonly url: string;
  readonly integrationId: string;
  /** The token poll and ack take (a test may change it: the operator fixed the token). */
  consumerToken: string;
  readonly monitoringToken: string;
  /** Adds events at the tail of the stream; returns the message ids. */
  enqueue(events: readonly ToolkitEvent[]): string[];
  /** The same event again at the tail, under a new message id (epilot's rare race). */
  enqueueDuplicate(eventId: string): string;
  /** Messages not acknowledged yet, in stream order. */
  pending(): ToolkitMessage[];
  /** Message ids acknowledged, in the order they were accepted. */
  readonly acked: string[];
  readonly acks: AckRecord[];
  /** Every poll request: when, and how many messages it leased. */
  readonly polls: { at: number; leased: number; status: number }[];
  /** The most poll requests that were in flight at once. */
  maxPollsInFlight(): number;
  /** How often each message id was leased. */
  leasesOf(id: string): number;
  visibilityTimeoutMs: number;
  /** Poll requests answer this until cleared (undefined). */
  pollFailure: Failure | undefined;
  ackFailure: Failure | undefined;
  /** Acks are received but never answered nor applied (a gateway killed before it hears back). */
  holdAcks: boolean;
  /** How long a poll answer is delayed. */
  pollDelayMs: number;
  readonly spans: RecordedSpan[];
  /** Monitoring requests: how many spans each carried. */
  readonly monitoringRequests: number[];
  monitoringFailure: Failure | undefined;
  close(): Promise<void>;
}

export async function startIntegrationToolkit(
  options: { integrationId?: string; visibilityTimeoutMs?: number } = {},
): Promise<IntegrationToolkit> {
  const integrationId = options.integrationId ?? randomUUID();
  let consumerToken = `consumer-${randomUUID()}`;
  const monitoringToken = `manage-${randomUUID()}`;
  const items: Item[] = [];
  const acked: string[] = [];
  const acks: AckRecord[] = [];
  const polls: { at: number; leased: number; status: number }[] = [];
  const spans: RecordedSpan[] = [];
  const monitoringRequests: number[] = [];
  const leaseCounts = new Map<string, number>();
  const held: ServerResponse[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  let nextEvent = 1;

  const state = {
    visibilityTimeoutMs: options.visibilityTimeoutMs ?? 2_000,
    pollFailure: undefined as Failure | undefined,
    ackFailure: undefined as Failure | undefined,
    monitoringFailure: undefined as Failure | undefined,
    holdAcks: false,
    pollDelayMs: 0,
  };

  const messageId = () => `msg_${randomUUID().replaceAll("-", "")}`;
  const leased = (item: Item, now: number) => item.leasedUntil !== undefined && item.leasedUntil > now;

  function enqueue(event: ToolkitEvent, id = messageId()): string {
    const n = nextEvent++;
    const message = {
      id,
      org_id: event.org_id ?? "739224",
      use_case_id: event.use_case_id ?? "uc-contracts",
      event_name: event.event_name ?? "contract.updated",
      event_id: event.event_id ?? `evt_${String(n).padStart(6, "0")}`,
      group: event.group ?? "0",
      payload: event.payload ?? { _event_id: `evt_${n}`, contract: { _id: `c-${n}`, n } },
      ...(event.mapping_version ? { mapping_version: event.mapping_version } : {}),
      enqueued_at: new Date().toISOString(),
      ...event.envelope,
    };
    items.push({ message, leases: 0 });
    return id;
  }

  const answer = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { "content-type": "application/json", ...headers });
    res.end(JSON.stringify(body));
  };
  const fail = (req: IncomingMessage, res: ServerResponse, failure: Failure) => {
    if (failure === "destroy") {
      req.socket.destroy();
      return;
    }
    answer(
      res,
      failure.status,
      { message: "stand-in failure" },
      failure.retryAfter ? { "retry-after": failure.retryAfter } : {},
    );
  };

  function poll(limit: number): { messages: ToolkitMessage[]; has_more: boolean } {
    const now = Date.now();
    // One in-flight batch per stream: while any lease is out, polls get nothing.
    if (items.some((item) => leased(item, now))) return { messages: [], has_more: items.length > 0 };
    const run = items.slice(0, Math.max(1, Math.min(100, limit)));
    const messages = run.map((item) => {
      item.leaseToken = `lt_${randomUUID().replaceAll("-", "")}`;
      item.leasedUntil = now + state.visibilityTimeoutMs;
      item.leases++;
      leaseCounts.set(String(item.message.id), (leaseCounts.get(String(item.message.id)) ?? 0) + 1);
      return { ...item.message, lease_token: item.leaseToken } as ToolkitMessage;
    });
    return { messages, has_more: items.length > run.length };
  }

  function ack(entries: { id: string; lease_token: string }[]): AckRecord["results"] {
    const now = Date.now();
    let gap = false;
    return entries.map((entry) => {
      const index = items.findIndex((item) => item.message.id === entry.id);
      if (index < 0) return { id: entry.id, status: "rejected", reason: "not_found" };
      if (gap) return { id: entry.id, status: "rejected", reason: "out_of_order" };
      const item = items[index]!;
      if (item.leaseToken !== entry.lease_token || !leased(item, now)) {
        gap = true;
        return { id: entry.id, status: "rejected", reason: "stale_lease" };
      }
      if (index !== 0) {
        gap = true;
        return { id: entry.id, status: "rejected", reason: "out_of_order" };
      }
      items.shift();
      acked.push(entry.id);
      return { id: entry.id, status: "accepted" };
    });
  }

  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    let body: any;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "null");
    } catch {
      return answer(res, 400, { message: "not JSON" });
    }
    const path = req.url ?? "";
    const auth = req.headers.authorization;
    const queue = `/v1/integrations/${integrationId}/outbound/messages/`;
    if (req.method === "POST" && path === `${queue}poll`) {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      try {
        if (state.pollDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, state.pollDelayMs));
        if (auth !== `Bearer ${consumerToken}`) {
          polls.push({ at: Date.now(), leased: 0, status: 401 });
          return answer(res, 401, { message: "Unauthorized" });
        }
        if (state.pollFailure) {
          polls.push({
            at: Date.now(),
            leased: 0,
            status: state.pollFailure === "destroy" ? 0 : state.pollFailure.status,
          });
          return fail(req, res, state.pollFailure);
        }
        const batch = poll(Number(body?.limit ?? 10));
        polls.push({ at: Date.now(), leased: batch.messages.length, status: 200 });
        return answer(res, 200, { ...batch, visibility_timeout_seconds: state.visibilityTimeoutMs / 1000 });
      } finally {
        inFlight--;
      }
    }
    if (req.method === "POST" && path === `${queue}ack`) {
      if (auth !== `Bearer ${consumerToken}`) return answer(res, 401, { message: "Unauthorized" });
      if (state.ackFailure) return fail(req, res, state.ackFailure);
      const entries = Array.isArray(body?.acks) ? body.acks : [];
      if (entries.length < 1 || entries.length > 100)
        return answer(res, 400, { message: "acks takes 1 to 100 entries" });
      if (state.holdAcks) {
        held.push(res);
        return;
      }
      const results = ack(entries);
      acks.push({ acks: entries, results });
      return answer(res, 200, { results });
    }
    if (req.method === "POST" && path === `/v2/integrations/${integrationId}/monitoring/external-events`) {
      if (auth !== `Bearer ${monitoringToken}`) return answer(res, 401, { message: "Unauthorized" });
      if (state.monitoringFailure) return fail(req, res, state.monitoringFailure);
      const events = Array.isArray(body?.events) ? body.events : [];
      if (events.length > 100) return answer(res, 400, { message: "at most 100 events" });
      monitoringRequests.push(events.length);
      const results: { index: number; status: string; reason: string }[] = [];
      events.forEach((span: any, index: number) => {
        const missing = ["correlation_id", "level", "use_case_slug", "occurred_at", "message"].find(
          (field) => typeof span?.[field] !== "string" || span[field] === "",
        );
        if (missing) results.push({ index, status: "rejected", reason: `missing ${missing}` });
        else if (!["success", "error", "warning", "info"].includes(span.level))
          results.push({ index, status: "rejected", reason: "bad level" });
        else spans.push(span);
      });
      return answer(res, 202, { accepted: events.length - results.length, rejected: results.length, results });
    }
    return answer(res, 404, { message: `no ${req.method} ${path}` });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    integrationId,
    get consumerToken() {
      return consumerToken;
    },
    set consumerToken(token) {
      consumerToken = token;
    },
    monitoringToken,
    enqueue: (events) => events.map((event) => enqueue(event)),
    enqueueDuplicate(eventId) {
      const original = items.find((item) => item.message.event_id === eventId);
      const id = messageId();
      if (!original) throw new Error(`no pending event ${eventId} to duplicate`);
      items.push({ message: { ...original.message, id, enqueued_at: new Date().toISOString() }, leases: 0 });
      return id;
    },
    pending: () => items.map((item) => ({ ...item.message, lease_token: item.leaseToken ?? "" }) as ToolkitMessage),
    acked,
    acks,
    polls,
    maxPollsInFlight: () => maxInFlight,
    leasesOf: (id) => leaseCounts.get(id) ?? 0,
    get visibilityTimeoutMs() {
      return state.visibilityTimeoutMs;
    },
    set visibilityTimeoutMs(ms) {
      state.visibilityTimeoutMs = ms;
    },
    get pollFailure() {
      return state.pollFailure;
    },
    set pollFailure(failure) {
      state.pollFailure = failure;
    },
    get ackFailure() {
      return state.ackFailure;
    },
    set ackFailure(failure) {
      state.ackFailure = failure;
    },
    get holdAcks() {
      return state.holdAcks;
    },
    set holdAcks(hold) {
      state.holdAcks = hold;
      if (!hold) for (const res of held.splice(0)) res.destroy();
    },
    get pollDelayMs() {
      return state.pollDelayMs;
    },
    set pollDelayMs(ms) {
      state.pollDelayMs = ms;
    },
    spans,
    monitoringRequests,
    get monitoringFailure() {
      return state.monitoringFailure;
    },
    set monitoringFailure(failure) {
      state.monitoringFailure = failure;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of held.splice(0)) res.destroy();
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
