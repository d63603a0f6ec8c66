/**
 * Remembers `webhook-id`s so that a captured or duplicated call is not processed twice.
 * The async store (SQLite, later PostgreSQL) implements the same interface.
 */
export interface ReplayGuard {
  /** Records the id; false when it was already recorded and has not expired. */
  claim(webhookId: string, nowMs?: number): Promise<boolean> | boolean;
  /** Forgets the id, so that epilot's retry of a call that failed before being delivered is processed. */
  release(webhookId: string): Promise<void> | void;
}

export interface MemoryReplayGuardOptions {
  /** How long an id is remembered at least (up to a second more); at least the timestamp tolerance, since older calls are refused anyway. */
  windowMs: number;
  /** Upper bound on remembered ids; the oldest are forgotten first when it is reached. */
  maxEntries?: number;
  /** Told when an id had to be forgotten before its window ended (for a log line or metric). */
  onEvict?: () => void;
}

/** 2^21: the low part of an entry's value holds 21 more bits of the id's hash. */
const CHECK_RANGE = 0x200000;

/**
 * An in-memory replay guard with bounded memory. Ids expire after `windowMs`; because the
 * signature check refuses timestamps outside the tolerance, an expired id can no longer be replayed.
 *
 * At full speed it holds hundreds of thousands of ids (a 10-minute window at thousands of calls per
 * second), so an id is kept as numbers, not as a string: a 53-bit hash as the key, and as the value
 * the second it was claimed times 2^21 plus 21 more bits of hash. That is about a fifth of the memory,
 * and nothing for the garbage collector to trace. Two different ids are taken for the same one only
 * if all 74 bits agree: about once in 10^16 calls with the guard full.
 *
 * @example
 * const guard = new MemoryReplayGuard({ windowMs: 10 * 60_000 });
 * guard.claim("msg_1"); // true
 * guard.claim("msg_1"); // false
 */
export class MemoryReplayGuard implements ReplayGuard {
  /** hash -> second * 2^21 + check; insertion-ordered, so the first entries are always the oldest. */
  private readonly seen = new Map<number, number>();
  private readonly maxEntries: number;
  private readonly windowSeconds: number;

  constructor(private readonly options: MemoryReplayGuardOptions) {
    this.maxEntries = options.maxEntries ?? 500_000;
    // Claims are kept by the second they fell in; one second more makes up for the part of it already gone.
    this.windowSeconds = Math.ceil(options.windowMs / 1000) + 1;
  }

  claim(webhookId: string, nowMs: number = Date.now()): boolean {
    const now = Math.floor(nowMs / 1000);
    this.prune(now);
    const key = hash53(webhookId, 0);
    const check = hash53(webhookId, 1) % CHECK_RANGE;
    const previous = this.seen.get(key);
    if (previous !== undefined && previous % CHECK_RANGE === check && !this.expired(previous, now)) return false;
    // A renewed claim moves to the end, so eviction keeps following claim order.
    this.seen.delete(key);
    this.seen.set(key, now * CHECK_RANGE + check);
    if (this.seen.size > this.maxEntries) {
      this.seen.delete(this.seen.keys().next().value as number);
      this.options.onEvict?.();
    }
    return true;
  }

  release(webhookId: string): void {
    const key = hash53(webhookId, 0);
    const previous = this.seen.get(key);
    if (previous !== undefined && previous % CHECK_RANGE === hash53(webhookId, 1) % CHECK_RANGE) this.seen.delete(key);
  }

  get size(): number {
    return this.seen.size;
  }

  private expired(value: number, now: number): boolean {
    return now - Math.floor(value / CHECK_RANGE) >= this.windowSeconds;
  }

  private prune(now: number): void {
    for (const [key, value] of this.seen) {
      if (!this.expired(value, now)) break;
      this.seen.delete(key);
    }
  }
}

/**
 * cyrb53: a fast 53-bit string hash with good spread; `seed` gives independent hashes. Ids reach the
 * guard only after their signature was verified, so nobody can choose them to collide.
 */
function hash53(text: string, seed: number): number {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ code, 2654435761);
    h2 = Math.imul(h2 ^ code, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}
