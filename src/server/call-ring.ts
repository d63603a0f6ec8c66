/** One answered call as the admin API lists it: what happened, never what was in it. */
export interface CallRecord {
  /** ms since epoch, when the answer was sent. */
  readonly at: number;
  /** The configured route that handled it; absent when none did (bad path, 401 before routing, unknown name). */
  readonly route?: string;
  readonly webhookId?: string;
  /** The log's outcome: `delivered`, `accepted`, `target_failed`, `unauthorized`, ... */
  readonly outcome: string;
  /** The HTTP status epilot got. */
  readonly status: number;
  readonly durationMs: number;
  /** The legacy system's HTTP status, when it was called and answered. */
  readonly targetStatus?: number;
}

export interface CallFilter {
  readonly route?: string;
  readonly outcome?: string;
  readonly limit: number;
}

/** A webhook-id longer than this is cut: the ring's memory stays bounded whatever a caller sends. */
const MAX_ID_LENGTH = 200;

/**
 * The most recent calls of this process, kept in memory for `GET /api/calls` and the console: a
 * fixed number of slots (`admin.recent_calls`), the oldest call overwritten by the newest, so memory
 * stays bounded (about 200 bytes a call). Recording costs one object and no search; listing walks
 * back from the newest.
 *
 * @example
 * const ring = new CallRing(1_000);
 * ring.record({ at: Date.now(), route: "erp", webhookId: "msg_1", outcome: "delivered", status: 200, durationMs: 12 });
 * ring.recent({ route: "erp", limit: 50 }); // newest first
 */
export class CallRing {
  private readonly slots: (CallRecord | undefined)[];
  /** Where the next call goes. */
  private next = 0;
  private recorded = 0;

  constructor(readonly capacity: number) {
    this.slots = new Array<CallRecord | undefined>(Math.max(0, capacity));
  }

  record(call: CallRecord): void {
    if (this.capacity === 0) return;
    const webhookId = call.webhookId;
    this.slots[this.next] =
      webhookId !== undefined && webhookId.length > MAX_ID_LENGTH
        ? { ...call, webhookId: webhookId.slice(0, MAX_ID_LENGTH) }
        : call;
    this.next = (this.next + 1) % this.capacity;
    this.recorded++;
  }

  /** Calls the filter selects, newest first, at most `limit`. */
  recent(filter: CallFilter): CallRecord[] {
    const out: CallRecord[] = [];
    const held = Math.min(this.recorded, this.capacity);
    for (let back = 1; back <= held && out.length < filter.limit; back++) {
      const call = this.slots[(this.next - back + this.capacity) % this.capacity];
      if (!call) continue;
      if (filter.route !== undefined && call.route !== filter.route) continue;
      if (filter.outcome !== undefined && call.outcome !== filter.outcome) continue;
      out.push(call);
    }
    return out;
  }

  /** Outcomes of the calls held, counted per route (the console's "recent outcomes"). */
  outcomesByRoute(): Record<string, Record<string, number>> {
    const out: Record<string, Record<string, number>> = {};
    for (const call of this.slots) {
      if (!call?.route) continue;
      const counts = out[call.route] ?? {};
      counts[call.outcome] = (counts[call.outcome] ?? 0) + 1;
      out[call.route] = counts;
    }
    return out;
  }
}

/** What one attempt at an outbox stage ended in (as `actiongate_deliveries_total` counts it). */
export type DeliveryTallyResult = "delivered" | "retried" | "dead_lettered";

/**
 * Attempts at outbox stages per route since this process started (delivered, retried,
 * dead-lettered): what async routes did after their 202, for the console beside the calls.
 *
 * @example
 * tally.record("erp", "retried");
 * tally.of("erp"); // { delivered: 0, retried: 1, dead_lettered: 0 }
 */
export class DeliveryTally {
  private readonly counts = new Map<string, Record<DeliveryTallyResult, number>>();

  record(route: string, result: DeliveryTallyResult): void {
    let counts = this.counts.get(route);
    if (!counts) {
      counts = { delivered: 0, retried: 0, dead_lettered: 0 };
      this.counts.set(route, counts);
    }
    counts[result]++;
  }

  of(route: string): Readonly<Record<DeliveryTallyResult, number>> {
    return this.counts.get(route) ?? { delivered: 0, retried: 0, dead_lettered: 0 };
  }
}
