import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { MemoryReplayGuard } from "./replay-guard.ts";

const WINDOW_MS = 10 * 60_000;
const T0 = 1_800_000_000_000;

describe("MemoryReplayGuard", () => {
  test("claims a new id once and refuses the duplicate", () => {
    const guard = new MemoryReplayGuard({ windowMs: WINDOW_MS });
    expect(guard.claim("msg_1", T0)).toBe(true);
    expect(guard.claim("msg_1", T0 + 1)).toBe(false);
    expect(guard.claim("msg_1", T0 + WINDOW_MS - 1_000)).toBe(false);
    expect(guard.claim("msg_2", T0 + 2)).toBe(true);
    expect(guard.size).toBe(2);
  });

  test("uses the wall clock when no time is passed", () => {
    const guard = new MemoryReplayGuard({ windowMs: WINDOW_MS });
    expect(guard.claim("msg_now")).toBe(true);
    expect(guard.claim("msg_now")).toBe(false);
  });

  test("release forgets an id so that epilot's retry is processed", () => {
    const guard = new MemoryReplayGuard({ windowMs: WINDOW_MS });
    expect(guard.claim("msg_retry", T0)).toBe(true);
    guard.release("msg_retry");
    expect(guard.size).toBe(0);
    expect(guard.claim("msg_retry", T0 + 1_000)).toBe(true);
    expect(guard.claim("msg_retry", T0 + 2_000)).toBe(false);
  });

  test("releasing an unknown id is harmless", () => {
    const guard = new MemoryReplayGuard({ windowMs: WINDOW_MS });
    guard.claim("msg_a", T0);
    guard.release("msg_unknown");
    expect(guard.size).toBe(1);
    expect(guard.claim("msg_a", T0 + 1)).toBe(false);
  });

  test("an id can be claimed again once windowMs has passed, and expired ids are pruned", () => {
    const guard = new MemoryReplayGuard({ windowMs: WINDOW_MS });
    expect(guard.claim("msg_old", T0)).toBe(true);
    expect(guard.claim("msg_newer", T0 + 60_000)).toBe(true);
    expect(guard.claim("msg_old", T0 + WINDOW_MS + 1_000)).toBe(true);
    // msg_newer is still inside its window at this time.
    expect(guard.claim("msg_newer", T0 + WINDOW_MS + 1_000)).toBe(false);
    // Both expire later; claiming anything prunes them.
    expect(guard.claim("msg_other", T0 + 3 * WINDOW_MS)).toBe(true);
    expect(guard.size).toBe(1);
  });

  test("the renewed claim starts a fresh window", () => {
    const guard = new MemoryReplayGuard({ windowMs: WINDOW_MS });
    guard.claim("msg_x", T0);
    expect(guard.claim("msg_x", T0 + WINDOW_MS + 5_000)).toBe(true);
    expect(guard.claim("msg_x", T0 + 2 * WINDOW_MS)).toBe(false);
    expect(guard.claim("msg_x", T0 + 2 * WINDOW_MS + 10_000)).toBe(true);
  });

  test("the window counts in whole seconds and never remembers an id for less than windowMs", () => {
    const guard = new MemoryReplayGuard({ windowMs: 1_500 });
    // Claimed late in a second: still refused just before windowMs has passed...
    expect(guard.claim("msg_s", T0 + 999)).toBe(true);
    expect(guard.claim("msg_s", T0 + 999 + 1_499)).toBe(false);
    // ...and forgotten at most a second after it.
    expect(guard.claim("msg_s", T0 + 3_000)).toBe(true);
  });

  test("many distinct ids are all accepted once and all refused after (ids are kept as hashes)", () => {
    const guard = new MemoryReplayGuard({ windowMs: WINDOW_MS });
    const ids = Array.from({ length: 200_000 }, (_, i) => `msg_${i.toString(36)}_${(i * 7919).toString(16)}`);
    expect(ids.filter((id) => guard.claim(id, T0)).length).toBe(ids.length);
    expect(ids.filter((id) => guard.claim(id, T0 + 1_000)).length).toBe(0);
    // Near misses are different ids.
    expect(guard.claim("msg_0_0 ", T0 + 1_000)).toBe(true);
    expect(guard.claim("MSG_0_0", T0 + 1_000)).toBe(true);
  });

  test("maxEntries evicts the oldest id and tells onEvict", () => {
    let evicted = 0;
    const guard = new MemoryReplayGuard({ windowMs: WINDOW_MS, maxEntries: 3, onEvict: () => evicted++ });
    expect(guard.claim("msg_1", T0)).toBe(true);
    expect(guard.claim("msg_2", T0 + 1)).toBe(true);
    expect(guard.claim("msg_3", T0 + 2)).toBe(true);
    expect(evicted).toBe(0);
    expect(guard.claim("msg_4", T0 + 3)).toBe(true);
    expect(evicted).toBe(1);
    expect(guard.size).toBe(3);
    // The evicted id is forgotten; the others are still refused.
    expect(guard.claim("msg_2", T0 + 4)).toBe(false);
    expect(guard.claim("msg_4", T0 + 4)).toBe(false);
    expect(guard.claim("msg_1", T0 + 5)).toBe(true);
    expect(evicted).toBe(2);
    // msg_2 was the oldest then: forgotten.
    expect(guard.claim("msg_2", T0 + 6)).toBe(true);
  });

  test("eviction follows claim order after a release and re-claim", () => {
    let evicted = 0;
    const guard = new MemoryReplayGuard({ windowMs: WINDOW_MS, maxEntries: 2, onEvict: () => evicted++ });
    guard.claim("msg_a", T0);
    guard.claim("msg_b", T0 + 1);
    guard.release("msg_a");
    guard.claim("msg_a", T0 + 2);
    guard.claim("msg_c", T0 + 3);
    expect(evicted).toBe(1);
    // msg_b went; msg_a (claimed again later) stays.
    expect(guard.claim("msg_a", T0 + 4)).toBe(false);
    expect(guard.claim("msg_b", T0 + 4)).toBe(true);
  });

  test("entries that expire do not go through onEvict", () => {
    let evicted = 0;
    const guard = new MemoryReplayGuard({ windowMs: 1_000, maxEntries: 2, onEvict: () => evicted++ });
    guard.claim("msg_1", T0);
    guard.claim("msg_2", T0 + 10);
    guard.claim("msg_3", T0 + 5_000);
    guard.claim("msg_4", T0 + 5_001);
    expect(evicted).toBe(0);
    expect(guard.size).toBe(2);
  });
});

/** The guard's meaning, written the plain way: what the compact guard must agree with on every step. */
class ModelGuard {
  private readonly seen = new Map<string, number>();
  evicted = 0;
  constructor(
    private readonly windowSeconds: number,
    private readonly maxEntries: number,
  ) {}
  claim(id: string, nowMs: number): boolean {
    const now = Math.floor(nowMs / 1000);
    for (const [key, second] of this.seen) {
      if (now - second < this.windowSeconds) break;
      this.seen.delete(key);
    }
    if (this.seen.has(id)) return false;
    if (this.seen.size >= this.maxEntries) {
      this.seen.delete(this.seen.keys().next().value as string);
      this.evicted++;
    }
    this.seen.set(id, now);
    return true;
  }
  release(id: string): void {
    this.seen.delete(id);
  }
  get size(): number {
    return this.seen.size;
  }
}

describe("MemoryReplayGuard agrees with the plain model", () => {
  test("on random claims, releases and clock steps (growth, holes, expiry and eviction included)", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({ op: fc.constant("claim"), id: fc.integer({ min: 0, max: 60 }) }),
            fc.record({ op: fc.constant("release"), id: fc.integer({ min: 0, max: 60 }) }),
            fc.record({ op: fc.constant("tick"), ms: fc.integer({ min: 0, max: 3_000 }) }),
          ),
          { maxLength: 400 },
        ),
        fc.integer({ min: 1, max: 40 }),
        fc.constantFrom(1, 2, 4, 1024),
        (ops, maxEntries, initialCapacity) => {
          let evicted = 0;
          // Tiny first arrays: the log grows, wraps around and compacts, the table grows, within one run.
          const guard = new MemoryReplayGuard({
            windowMs: 5_000,
            maxEntries,
            onEvict: () => evicted++,
            initialCapacity,
          });
          const model = new ModelGuard(Math.ceil(5_000 / 1000) + 1, maxEntries);
          let now = T0;
          for (const op of ops) {
            if (op.op === "tick") now += op.ms;
            else if (op.op === "claim") expect(guard.claim(`msg_${op.id}`, now)).toBe(model.claim(`msg_${op.id}`, now));
            else {
              guard.release(`msg_${op.id}`);
              model.release(`msg_${op.id}`);
            }
          }
          // Claiming prunes; compare sizes after one more claim at the same time.
          expect(guard.claim("msg_final", now)).toBe(model.claim("msg_final", now));
          expect(guard.size).toBe(model.size);
          expect(evicted).toBe(model.evicted);
        },
      ),
      { numRuns: 500 },
    );
  });

  test("claims released as fast as they come (failing calls) keep the log at the size of what is held", () => {
    const guard = new MemoryReplayGuard({ windowMs: WINDOW_MS, initialCapacity: 4 });
    expect(guard.claim("held", T0)).toBe(true);
    for (let i = 0; i < 100_000; i++) {
      expect(guard.claim(`failing_${i}`, T0 + i)).toBe(true);
      guard.release(`failing_${i}`);
    }
    expect(guard.size).toBe(1);
    expect(guard.claim("held", T0 + 100_000)).toBe(false);
    expect(guard.claim("failing_7", T0 + 100_000)).toBe(true);
    // The log compacted instead of growing: its arrays are still small.
    expect((guard as unknown as { logHashes: Float64Array }).logHashes.length).toBeLessThanOrEqual(8);
  });

  test("holds 500,000 ids (about 16 MB) and refuses each again", () => {
    const guard = new MemoryReplayGuard({ windowMs: WINDOW_MS });
    for (let i = 0; i < 500_000; i++) guard.claim(`msg_${i}`, T0);
    expect(guard.size).toBe(500_000);
    let refused = 0;
    for (let i = 0; i < 500_000; i += 97) if (!guard.claim(`msg_${i}`, T0 + 1)) refused++;
    expect(refused).toBe(Math.ceil(500_000 / 97));
  });
});
