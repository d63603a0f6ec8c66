export type BreakerState = "closed" | "open" | "half_open";

export interface CircuitBreakerOptions {
  /** Consecutive failures that open the breaker. */
  readonly failureThreshold: number;
  /** How long it stays open before one probe is let through. */
  readonly cooldownMs: number;
  /** Told on every state change, for the log and metrics. */
  readonly onStateChange?: (state: BreakerState) => void;
  readonly now?: () => number;
}

/**
 * Stops calling a target that keeps failing. Closed: calls pass, consecutive failures are counted.
 * Open (threshold reached): nothing passes until the cool-down ends. Half-open: exactly one probe
 * passes; its success closes the breaker, its failure opens it for another cool-down.
 *
 * @example
 * const breaker = new CircuitBreaker({ failureThreshold: 5, cooldownMs: 30_000 });
 * if (!breaker.tryPass()) return serviceUnavailable();
 * outcomeWasFailure ? breaker.recordFailure() : breaker.recordSuccess();
 */
export class CircuitBreaker {
  private current: BreakerState = "closed";
  private failures = 0;
  private openedAt = 0;
  private probeInFlight = false;
  private readonly now: () => number;

  constructor(private readonly options: CircuitBreakerOptions) {
    this.now = options.now ?? Date.now;
  }

  get state(): BreakerState {
    return this.current;
  }

  /** When the next probe may pass (ms since epoch); now when the breaker is closed. */
  get retryAt(): number {
    return this.current === "closed" ? this.now() : this.openedAt + this.options.cooldownMs;
  }

  /** True when a call may go to the target now; in half-open state only the one probe gets true. */
  tryPass(): boolean {
    if (this.current === "closed") return true;
    if (this.current === "open") {
      if (this.now() < this.openedAt + this.options.cooldownMs) return false;
      this.transition("half_open");
    }
    if (this.probeInFlight) return false;
    this.probeInFlight = true;
    return true;
  }

  recordSuccess(): void {
    this.failures = 0;
    this.probeInFlight = false;
    if (this.current !== "closed") this.transition("closed");
  }

  recordFailure(): void {
    this.probeInFlight = false;
    this.failures++;
    if (this.current === "half_open" || (this.current === "closed" && this.failures >= this.options.failureThreshold)) {
      this.openedAt = this.now();
      this.transition("open");
    }
  }

  /**
   * A call that passed but was never made (held back by the target's rate limit): it says nothing,
   * and a half-open breaker lets its next call probe instead.
   */
  releasePass(): void {
    this.probeInFlight = false;
  }

  /** A call that passed but whose outcome says nothing about the target's health (a 4xx for one payload). */
  recordNeutral(): void {
    if (this.probeInFlight) this.recordSuccess();
  }

  private transition(state: BreakerState): void {
    this.current = state;
    this.options.onStateChange?.(state);
  }
}
