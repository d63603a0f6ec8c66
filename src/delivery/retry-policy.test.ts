import { describe, expect, test } from "bun:test";
import { parseRetryAfter } from "../kit/retry-after.ts";
import type { TargetOutcome } from "../targets/types.ts";
import { classifyFailure, isTargetFailure, nextDelayMs } from "./retry-policy.ts";

const policy = { initialMs: 1_000, maxMs: 10_000 };
const rejected = (
  status: number,
  headers: Record<string, string> = {},
): Extract<TargetOutcome, { kind: "rejected" }> => ({
  kind: "rejected",
  response: { status, headers, body: "" },
  reason: `target answered HTTP ${status}`,
  info: {},
});

describe("nextDelayMs", () => {
  test("grows exponentially under full jitter and stops at the maximum", () => {
    expect(nextDelayMs(1, policy, undefined, () => 0.999)).toBe(999);
    expect(nextDelayMs(3, policy, undefined, () => 0.999)).toBe(3_996);
    expect(nextDelayMs(10, policy, undefined, () => 0.999)).toBe(9_990);
    expect(nextDelayMs(3, policy, undefined, () => 0)).toBe(0);
  });

  test("honours Retry-After when it is longer than the jittered delay", () => {
    expect(nextDelayMs(1, policy, 5_000, () => 0.5)).toBe(5_000);
    expect(nextDelayMs(4, policy, 100, () => 0.5)).toBe(4_000);
  });
});

describe("parseRetryAfter", () => {
  test("seconds and HTTP dates", () => {
    expect(parseRetryAfter("3")).toBe(3_000);
    const now = Date.parse("2026-11-27T10:00:00Z");
    expect(parseRetryAfter("Fri, 27 Nov 2026 10:00:30 GMT", now)).toBe(30_000);
    expect(parseRetryAfter("soon")).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
  });
});

describe("classifyFailure", () => {
  test("network errors, timeouts, 408, 429 and 5xx are retried", () => {
    expect(classifyFailure({ kind: "unreachable", reason: "connection refused" }).retry).toBe(true);
    expect(classifyFailure({ kind: "timeout", timeoutMs: 1_000 }).retry).toBe(true);
    for (const status of [408, 429, 500, 502, 503]) expect(classifyFailure(rejected(status)).retry).toBe(true);
  });

  test("429 carries its Retry-After", () => {
    expect(classifyFailure(rejected(429, { "retry-after": "7" }))).toMatchObject({
      retry: true,
      retryAfterMs: 7_000,
      status: 429,
    });
  });

  test("other 4xx and unsendable payloads go to the dead letters at once", () => {
    for (const status of [400, 401, 404, 409, 422]) expect(classifyFailure(rejected(status)).retry).toBe(false);
    expect(classifyFailure({ kind: "invalid_message", reason: "placeholder has no value" }).retry).toBe(false);
  });

  test("a target may say itself whether a failure is worth retrying (SOAP Client vs Server faults)", () => {
    expect(classifyFailure({ ...rejected(500), retryable: false } as never).retry).toBe(false);
  });
});

test("only failures of the target count against its circuit breaker", () => {
  expect(isTargetFailure({ kind: "unreachable", reason: "x" })).toBe(true);
  expect(isTargetFailure({ kind: "timeout", timeoutMs: 1 })).toBe(true);
  expect(isTargetFailure(rejected(503))).toBe(true);
  expect(isTargetFailure(rejected(400))).toBe(false);
  // A SOAP Client fault comes with HTTP 500 but says the payload, not the target, is at fault.
  expect(isTargetFailure({ ...rejected(500), retryable: false } as never)).toBe(false);
  expect(isTargetFailure({ kind: "delivered", response: { status: 200, headers: {}, body: {} } })).toBe(false);
});
