import { describe, expect, test } from "bun:test";
import { CallRing } from "./call-ring.ts";

const call = (n: number, route = "erp", outcome = "delivered") => ({
  at: n,
  route,
  webhookId: `msg_${n}`,
  outcome,
  status: 200,
  durationMs: 1,
});

describe("CallRing", () => {
  test("keeps the newest `capacity` calls, newest first, filtered by route and outcome", () => {
    const ring = new CallRing(3);
    for (let n = 1; n <= 5; n++)
      ring.record(call(n, n % 2 === 0 ? "crm" : "erp", n === 5 ? "target_failed" : "delivered"));
    expect(ring.recent({ limit: 10 }).map((entry) => entry.at)).toEqual([5, 4, 3]);
    expect(ring.recent({ limit: 1 }).map((entry) => entry.at)).toEqual([5]);
    expect(ring.recent({ limit: 10, route: "erp" }).map((entry) => entry.at)).toEqual([5, 3]);
    expect(ring.recent({ limit: 10, route: "erp", outcome: "delivered" }).map((entry) => entry.at)).toEqual([3]);
    expect(ring.outcomesByRoute()).toEqual({ erp: { target_failed: 1, delivered: 1 }, crm: { delivered: 1 } });
  });

  test("a long webhook-id is cut, so memory stays bounded; capacity 0 keeps nothing", () => {
    const ring = new CallRing(2);
    ring.record({ ...call(1), webhookId: "x".repeat(10_000) });
    expect(ring.recent({ limit: 1 })[0]?.webhookId).toHaveLength(200);
    const none = new CallRing(0);
    none.record(call(1));
    expect(none.recent({ limit: 10 })).toEqual([]);
  });
});
