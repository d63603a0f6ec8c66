import { describe, expect, test } from "bun:test";
import { deliveryResult } from "./admin-sources.ts";

const attempt = (outcome: string) => ({ at: 1, stage: "deliver" as const, outcome });

describe("deliveryResult (actiongate_deliveries_total and the console)", () => {
  test.each([
    ["a stage done", { kind: "done", attempt: attempt("delivered") } as const, false, "delivered"],
    ["a retry", { kind: "retry", attempt: attempt("target_failed") } as const, false, "retried"],
    ["the last retry", { kind: "retry", attempt: attempt("target_failed") } as const, true, "dead_lettered"],
    ["dead at once", { kind: "dead", attempt: attempt("target_failed"), reason: "no" } as const, true, "dead_lettered"],
    ["a stage with nothing to do", { kind: "done", attempt: attempt("skipped") } as const, false, undefined],
    [
      "a postponed event (breaker open)",
      { kind: "postpone", until: 5, reason: "circuit_open" } as const,
      false,
      undefined,
    ],
  ])("%s", (_, result, deadLettered, expected) => {
    expect(deliveryResult(result, deadLettered) as string | undefined).toBe(expected);
  });
});
