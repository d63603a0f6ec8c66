import { describe, expect, test } from "bun:test";
import { MemoryReplayGuard } from "./replay-guard.ts";

const WINDOW_MS = 10 * 60_000;
const T0 = 1_800_000_000_000;

describe("MemoryReplayGuard", () => {
  test("claims a new id once and refuses the duplicate", () => {
    const guard = new MemoryReplayGuard({ windowMs: WINDOW_MS });
    expect(guard.claim("msg_1", T0)).toBe(true);
    expect(guard.claim("msg_1", T0 + 1)).toBe(false);
    expect(guard.claim("msg_1", T0 + WINDOW_MS - 1)).toBe(false);
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
    expect(guard.claim("msg_old", T0 + WINDOW_MS)).toBe(true);
    // msg_newer is still inside its window at this time.
    expect(guard.claim("msg_newer", T0 + WINDOW_MS)).toBe(false);
    // Both expire later; claiming anything prunes them.
    expect(guard.claim("msg_other", T0 + 3 * WINDOW_MS)).toBe(true);
    expect(guard.size).toBe(1);
  });

  test("the renewed claim starts a fresh window", () => {
    const guard = new MemoryReplayGuard({ windowMs: WINDOW_MS });
    guard.claim("msg_x", T0);
    expect(guard.claim("msg_x", T0 + WINDOW_MS + 5)).toBe(true);
    expect(guard.claim("msg_x", T0 + 2 * WINDOW_MS)).toBe(false);
    expect(guard.claim("msg_x", T0 + 2 * WINDOW_MS + 5)).toBe(true);
  });

  test("maxEntries evicts the oldest id and tells onEvict", () => {
    const evicted: string[] = [];
    const guard = new MemoryReplayGuard({ windowMs: WINDOW_MS, maxEntries: 3, onEvict: (id) => evicted.push(id) });
    expect(guard.claim("msg_1", T0)).toBe(true);
    expect(guard.claim("msg_2", T0 + 1)).toBe(true);
    expect(guard.claim("msg_3", T0 + 2)).toBe(true);
    expect(evicted).toEqual([]);
    expect(guard.claim("msg_4", T0 + 3)).toBe(true);
    expect(evicted).toEqual(["msg_1"]);
    expect(guard.size).toBe(3);
    // The evicted id is forgotten; the others are still refused.
    expect(guard.claim("msg_2", T0 + 4)).toBe(false);
    expect(guard.claim("msg_4", T0 + 4)).toBe(false);
    expect(guard.claim("msg_1", T0 + 5)).toBe(true);
    expect(evicted).toEqual(["msg_1", "msg_2"]);
  });

  test("eviction follows claim order after a release and re-claim", () => {
    const evicted: string[] = [];
    const guard = new MemoryReplayGuard({ windowMs: WINDOW_MS, maxEntries: 2, onEvict: (id) => evicted.push(id) });
    guard.claim("msg_a", T0);
    guard.claim("msg_b", T0 + 1);
    guard.release("msg_a");
    guard.claim("msg_a", T0 + 2);
    guard.claim("msg_c", T0 + 3);
    expect(evicted).toEqual(["msg_b"]);
  });

  test("entries that expire do not go through onEvict", () => {
    const evicted: string[] = [];
    const guard = new MemoryReplayGuard({ windowMs: 1_000, maxEntries: 2, onEvict: (id) => evicted.push(id) });
    guard.claim("msg_1", T0);
    guard.claim("msg_2", T0 + 10);
    guard.claim("msg_3", T0 + 5_000);
    guard.claim("msg_4", T0 + 5_001);
    expect(evicted).toEqual([]);
    expect(guard.size).toBe(2);
  });
});
