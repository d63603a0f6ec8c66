import { z } from "zod";
import { describedDuration, duration, envNumber } from "../kit/units.ts";

export const rateLimitSchema = z
  .strictObject({
    requests: envNumber(z.number().int().min(1).max(100_000)).describe("at most this many calls start..."),
    per: describedDuration("...within any interval this long (a sliding window: no burst beyond `requests`)"),
    max_wait: duration
      .prefault("5s")
      .describe(
        "how long a call waits for its turn: a sync call that would wait longer gets 503 at once, an async event is postponed (no attempt spent)",
      ),
  })
  .describe(
    "Calls per interval this gateway process makes to the target (the legacy system's capacity). Token and CSRF fetches do not count; the one retry after a 401 or a CSRF refetch does.",
  )
  .meta({ examples: [{ requests: 5, per: "1s", max_wait: "10s" }] });

export type RateLimitConfig = z.output<typeof rateLimitSchema>;

/** What the rate limit of a target is doing now, for `/metrics` and the admin API. */
export interface RateLimitState {
  readonly requests: number;
  readonly perMs: number;
  /** Calls waiting for their turn now. */
  readonly waiting: number;
  /** True while calls are held back: one starting now would have to wait. */
  readonly heldBack: boolean;
  /** Calls that had to wait for their turn, since the target was built. */
  readonly delayedTotal: number;
  /** Calls turned away because no turn was free within `max_wait` (sync 503, async postponed). */
  readonly refusedTotal: number;
  /** When the next call could start (ms since epoch); now or earlier when it could start at once. */
  readonly nextStartAt: number;
}

/** A turn to start a call, or when to come back. */
export type RateLimitTurn = { readonly ok: true } | { readonly ok: false; readonly retryAt: number };

/**
 * A sliding-window limit: at most `requests` calls start within any `per` interval. Each call books
 * the earliest start time that keeps the window (the start of the call `requests` bookings before,
 * plus `per`), and then waits until that time; so waiting calls start in the order they came, evenly
 * spaced once the window is full, and the window holds however many calls wait at once. A call whose
 * turn is more than `maxWaitMs` away books nothing and learns when to come back.
 *
 * @example
 * const limit = new RateLimiter({ requests: 2, perMs: 1_000 });
 * await limit.take(5_000); // { ok: true }: at once
 * await limit.take(5_000); // { ok: true }: at once
 * await limit.take(5_000); // { ok: true }: one second after the first
 * await limit.take(100);   // { ok: false, retryAt }: its turn is more than 100 ms away
 */
export class RateLimiter {
  /** Start times of the last `requests` bookings, a ring; the slot at `next` is the oldest. */
  private readonly starts: number[];
  private next = 0;
  private waitingNow = 0;
  private delayed = 0;
  private refused = 0;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(
    private readonly options: {
      requests: number;
      perMs: number;
      now?: () => number;
      sleep?: (ms: number) => Promise<void>;
    },
  ) {
    this.starts = new Array<number>(options.requests).fill(Number.NEGATIVE_INFINITY);
    // Sub-millisecond and monotonic: Date.now() rounds, and a turn must never start before its time.
    this.now = options.now ?? (() => performance.timeOrigin + performance.now());
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  /** Waits for this call's turn, at most `maxWaitMs`; without a turn that soon, books nothing. */
  async take(maxWaitMs: number): Promise<RateLimitTurn> {
    const now = this.now();
    const at = Math.max(now, this.starts[this.next]! + this.options.perMs);
    if (at - now > maxWaitMs) {
      this.refused++;
      return { ok: false, retryAt: Math.ceil(at) };
    }
    this.starts[this.next] = at;
    this.next = (this.next + 1) % this.starts.length;
    if (at <= now) return { ok: true };
    this.delayed++;
    this.waitingNow++;
    try {
      // A timer may fire a fraction of a millisecond early; the turn is not taken before its time.
      for (let left = at - now; left > 0; left = at - this.now()) await this.sleep(left);
    } finally {
      this.waitingNow--;
    }
    return { ok: true };
  }

  state(): RateLimitState {
    const nextStartAt = this.starts[this.next]! + this.options.perMs;
    return {
      requests: this.options.requests,
      perMs: this.options.perMs,
      waiting: this.waitingNow,
      heldBack: this.waitingNow > 0 || nextStartAt > this.now(),
      delayedTotal: this.delayed,
      refusedTotal: this.refused,
      nextStartAt: Number.isFinite(nextStartAt) ? nextStartAt : 0,
    };
  }
}
