import { expect, test } from "bun:test";
import { type BreakerState, CircuitBreaker } from "./circuit-breaker.ts";

function breaker() {
  let now = 1_000_000;
  const changes: BreakerState[] = [];
  const instance = new CircuitBreaker({
    failureThreshold: 3,
    cooldownMs: 10_000,
    now: () => now,
    onStateChange: (state) => changes.push(state),
  });
  return { instance, changes, advance: (ms: number) => (now += ms) };
}

test("opens after the threshold of consecutive failures and refuses calls during the cool-down", () => {
  const { instance, changes } = breaker();
  instance.recordFailure();
  instance.recordFailure();
  instance.recordSuccess();
  instance.recordFailure();
  instance.recordFailure();
  expect(instance.state).toBe("closed");
  instance.recordFailure();
  expect(instance.state).toBe("open");
  expect(instance.tryPass()).toBe(false);
  expect(changes).toEqual(["open"]);
});

test("after the cool-down exactly one probe passes; its success closes the breaker", () => {
  const { instance, changes, advance } = breaker();
  for (let i = 0; i < 3; i++) instance.recordFailure();
  advance(10_000);
  expect(instance.tryPass()).toBe(true);
  expect(instance.state).toBe("half_open");
  expect(instance.tryPass()).toBe(false);
  instance.recordSuccess();
  expect(instance.state).toBe("closed");
  expect(instance.tryPass()).toBe(true);
  expect(changes).toEqual(["open", "half_open", "closed"]);
});

test("a failed probe opens it for another cool-down", () => {
  const { instance, advance } = breaker();
  for (let i = 0; i < 3; i++) instance.recordFailure();
  advance(10_000);
  expect(instance.tryPass()).toBe(true);
  instance.recordFailure();
  expect(instance.state).toBe("open");
  advance(9_999);
  expect(instance.tryPass()).toBe(false);
  advance(1);
  expect(instance.tryPass()).toBe(true);
});
