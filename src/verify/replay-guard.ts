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
  /** Ids the first arrays hold (a power of two); they double as needed. Tests start tiny to exercise that. */
  initialCapacity?: number;
}

/** 2^21: the low part of an entry's value holds 21 more bits of the id's hash. */
const CHECK_RANGE = 0x200000;

/** Ids the first table holds; it doubles as ids arrive, up to what `maxEntries` needs. */
const INITIAL_SLOTS = 1024;

/**
 * An in-memory replay guard with bounded memory. Ids expire after `windowMs`; because the
 * signature check refuses timestamps outside the tolerance, an expired id can no longer be replayed.
 *
 * At full speed it holds hundreds of thousands of ids (a 10-minute window at thousands of calls per
 * second), so it keeps no strings and no JavaScript objects per id, only numbers in typed arrays,
 * which the garbage collector never walks:
 * - a log of claims in claim order (a ring): each id's 53-bit hash, and the second it was claimed
 *   times 2^21 plus 21 more bits of its hash. Expiry and eviction take from its oldest end.
 * - an open-addressing table (linear probing, at most half full) from the hash to the claim's place
 *   in the log. A claim whose place the table no longer holds (released, or claimed again later) is
 *   skipped when its turn in the log comes.
 *
 * About 32 bytes per id (16 MB for 500,000), against about 90 for a Map of numbers. Two different
 * ids are taken for the same one only if all 74 bits agree: about once in 10^16 calls with the
 * guard full.
 *
 * @example
 * const guard = new MemoryReplayGuard({ windowMs: 10 * 60_000 });
 * guard.claim("msg_1"); // true
 * guard.claim("msg_1"); // false
 */
export class MemoryReplayGuard implements ReplayGuard {
  private readonly maxEntries: number;
  private readonly windowSeconds: number;
  /** The log: hash and `second * 2^21 + check` of each claim, at `position & (capacity - 1)`. */
  private logHashes: Float64Array;
  private logValues: Float64Array;
  /** Positions of the log's oldest and next claim; they only grow (2^53 claims is centuries). */
  private head = 0;
  private tail = 0;
  /** The table: 0 for an empty slot, else the claim's log position + 1. */
  private slots: Float64Array;
  private live = 0;

  constructor(private readonly options: MemoryReplayGuardOptions) {
    this.maxEntries = options.maxEntries ?? 500_000;
    // Claims are kept by the second they fell in; one second more makes up for the part of it already gone.
    this.windowSeconds = Math.ceil(options.windowMs / 1000) + 1;
    const capacity = options.initialCapacity;
    if (capacity !== undefined && !Number.isInteger(Math.log2(capacity)))
      throw new RangeError("initialCapacity must be a power of two");
    // The log is allocated at its full size at once: its pages become resident only as claims reach
    // them, and it is never copied. The table is touched at random, so it starts small and doubles.
    const logCapacity = capacity ?? 2 ** Math.ceil(Math.log2(Math.max(this.maxEntries, INITIAL_SLOTS)));
    this.logHashes = new Float64Array(logCapacity);
    this.logValues = new Float64Array(logCapacity);
    this.slots = new Float64Array((capacity ?? INITIAL_SLOTS) * 2);
  }

  claim(webhookId: string, nowMs: number = Date.now()): boolean {
    const now = Math.floor(nowMs / 1000);
    this.prune(now);
    const hash = hash53(webhookId, 0);
    const check = hash53(webhookId, 1) % CHECK_RANGE;
    const slot = this.find(hash);
    if (slot >= 0) {
      const position = this.slots[slot]! - 1;
      // The same 53 bits: the same id unless the other 21 differ (then the newer claim takes the slot).
      if (this.logValues[position & (this.logHashes.length - 1)]! % CHECK_RANGE === check) return false;
      this.removeSlot(slot);
    }
    if (this.live >= this.maxEntries) {
      this.evictOldest();
      this.options.onEvict?.();
    }
    this.append(hash, now * CHECK_RANGE + check);
    return true;
  }

  release(webhookId: string): void {
    const hash = hash53(webhookId, 0);
    const slot = this.find(hash);
    if (slot < 0) return;
    const position = this.slots[slot]! - 1;
    if (this.logValues[position & (this.logHashes.length - 1)]! % CHECK_RANGE === hash53(webhookId, 1) % CHECK_RANGE)
      this.removeSlot(slot);
  }

  get size(): number {
    return this.live;
  }

  /** Forgets the claims whose window has passed, oldest first (claim order is time order). */
  private prune(now: number): void {
    const mask = this.logHashes.length - 1;
    while (this.head < this.tail) {
      const index = this.head & mask;
      if (now - Math.floor(this.logValues[index]! / CHECK_RANGE) < this.windowSeconds) return;
      this.dropHead(index);
    }
  }

  /** Forgets the oldest claim still held (the guard is full). */
  private evictOldest(): void {
    const mask = this.logHashes.length - 1;
    const before = this.live;
    while (this.head < this.tail && this.live === before) this.dropHead(this.head & mask);
  }

  /** Takes the log's oldest claim off; when the table still points at it, the id is forgotten. */
  private dropHead(index: number): void {
    const slot = this.find(this.logHashes[index]!);
    if (slot >= 0 && this.slots[slot] === this.head + 1) this.removeSlot(slot);
    this.head++;
  }

  private append(hash: number, value: number): void {
    if (this.tail - this.head === this.logHashes.length) {
      // Full of claims since released or claimed again: keep the ones held instead of growing.
      if (this.live <= this.logHashes.length / 2) this.compactLog();
      else this.growLog();
    }
    if (2 * (this.live + 1) > this.slots.length) this.growTable();
    const index = this.tail & (this.logHashes.length - 1);
    this.logHashes[index] = hash;
    this.logValues[index] = value;
    this.insertSlot(hash, this.tail + 1);
    this.tail++;
  }

  /** The slot holding `hash`, or -1. */
  private find(hash: number): number {
    const mask = this.slots.length - 1;
    const logMask = this.logHashes.length - 1;
    for (let slot = homeSlot(hash, mask); ; slot = (slot + 1) & mask) {
      const held = this.slots[slot]!;
      if (held === 0) return -1;
      if (this.logHashes[(held - 1) & logMask] === hash) return slot;
    }
  }

  private insertSlot(hash: number, positionPlusOne: number): void {
    const mask = this.slots.length - 1;
    let slot = homeSlot(hash, mask);
    while (this.slots[slot] !== 0) slot = (slot + 1) & mask;
    this.slots[slot] = positionPlusOne;
    this.live++;
  }

  /** Empties `slot` and moves later entries of its run back (no tombstones: lookups stay short). */
  private removeSlot(slot: number): void {
    const mask = this.slots.length - 1;
    const logMask = this.logHashes.length - 1;
    let hole = slot;
    for (let next = (hole + 1) & mask; this.slots[next] !== 0; next = (next + 1) & mask) {
      const home = homeSlot(this.logHashes[(this.slots[next]! - 1) & logMask]!, mask);
      // The entry at `next` may fill the hole when its home is not cyclically in (hole, next].
      const between = hole <= next ? home > hole && home <= next : home > hole || home <= next;
      if (!between) {
        this.slots[hole] = this.slots[next]!;
        hole = next;
      }
    }
    this.slots[hole] = 0;
    this.live--;
  }

  /** Twice the log: claims keep their positions, at their new index. */
  private growLog(): void {
    const hashes = new Float64Array(this.logHashes.length * 2);
    const values = new Float64Array(this.logHashes.length * 2);
    const oldMask = this.logHashes.length - 1;
    const newMask = hashes.length - 1;
    for (let position = this.head; position < this.tail; position++) {
      hashes[position & newMask] = this.logHashes[position & oldMask]!;
      values[position & newMask] = this.logValues[position & oldMask]!;
    }
    this.logHashes = hashes;
    this.logValues = values;
  }

  /** The log without the claims the table no longer holds, in the same order; the table refilled. */
  private compactLog(): void {
    const mask = this.logHashes.length - 1;
    const hashes = new Float64Array(this.logHashes.length);
    const values = new Float64Array(this.logHashes.length);
    let kept = 0;
    for (let position = this.head; position < this.tail; position++) {
      const hash = this.logHashes[position & mask]!;
      const slot = this.find(hash);
      if (slot < 0 || this.slots[slot] !== position + 1) continue;
      hashes[kept] = hash;
      values[kept] = this.logValues[position & mask]!;
      kept++;
    }
    this.logHashes = hashes;
    this.logValues = values;
    this.head = 0;
    this.tail = kept;
    this.slots.fill(0);
    this.live = 0;
    for (let position = 0; position < kept; position++) this.insertSlot(hashes[position]!, position + 1);
  }

  /** Twice the table, filled again from the log's claims the old table still held. */
  private growTable(): void {
    const old = this.slots;
    this.slots = new Float64Array(old.length * 2);
    this.live = 0;
    const logMask = this.logHashes.length - 1;
    for (const held of old) if (held !== 0) this.insertSlot(this.logHashes[(held - 1) & logMask]!, held);
  }
}

/** Where `hash` starts probing: its low bits (a 53-bit hash is spread well in them). */
function homeSlot(hash: number, mask: number): number {
  return (hash % (mask + 1)) & mask;
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
