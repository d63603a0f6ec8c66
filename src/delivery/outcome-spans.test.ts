import { describe, expect, test } from "bun:test";
import { outboxEventFor, outboxEventForMessage, testRoute } from "../../test/support/delivery.ts";
import type { OutboxEvent } from "../store/types.ts";
import { spanOfAttempt, spanOfCall } from "./outcome-spans.ts";

const claimed = (event: Awaited<ReturnType<typeof outboxEventFor>>, attempts = 0): OutboxEvent => ({
  ...event,
  attempts,
  nextAttemptAt: event.createdAt,
  history: [],
});

describe("monitoring spans", () => {
  test("a call's event is traced by its webhook-id; a polled message's by its event_id, with where it came from", async () => {
    const call = claimed(await outboxEventFor(testRoute()));
    const at = Date.parse("2026-06-09T08:00:00Z");
    const done = { kind: "done", attempt: { at, stage: "deliver", outcome: "delivered", status: 201 } } as const;
    expect(spanOfAttempt("erp", done, false, call, "erp_sync")).toEqual({
      correlation_id: call.id,
      level: "success",
      use_case_slug: "erp_sync",
      occurred_at: "2026-06-09T08:00:00.000Z",
      message: "Delivery to the target done on route erp (delivered, HTTP 201)",
      detail: { route: "erp", stage: "deliver", attempt: 1, outcome: "delivered", target_status: 201 },
    });
    const message = claimed(await outboxEventForMessage(testRoute({ source: "erp-feed" })), 2);
    const retry = {
      kind: "retry",
      attempt: {
        at,
        stage: "deliver",
        outcome: "target_failed",
        status: 503,
        error: "ERP says: customer Jane Doe locked",
      },
    } as const;
    const span = spanOfAttempt("erp", retry, false, message, "erp_sync");
    expect(span).toMatchObject({
      correlation_id: "01JDXK7PZ8H4N6Q2S0V3X5Z7B9",
      level: "warning",
      detail: { attempt: 3, target_status: 503, source: "erp-feed", event_name: "contract.updated" },
    });
    // The target's words (they may quote data) stay in the dead letters, never in a span.
    expect(JSON.stringify(span)).not.toContain("Jane Doe");
    expect(spanOfAttempt("erp", retry, true, message, "erp_sync")?.level).toBe("error");
    expect(
      spanOfAttempt("erp", { kind: "postpone", until: at, reason: "circuit_open" }, false, message, "erp_sync"),
    ).toBeUndefined();
  });

  test("a call's answer: success or error for a sync delivery, info when stored, none before a route delivered", () => {
    const at = Date.now();
    const of = (outcome: Parameters<typeof spanOfCall>[0]["outcome"], status: number) =>
      spanOfCall({ route: "erp", webhookId: "msg_1", outcome, status, at }, "erp_sync")?.level;
    expect(of("delivered", 200)).toBe("success");
    expect(of("accepted", 202)).toBe("info");
    expect(of("target_timeout", 504)).toBe("error");
    expect(of("circuit_open", 503)).toBe("error");
    expect(of("bad_request", 400)).toBeUndefined();
    expect(of("replayed", 409)).toBeUndefined();
  });
});
