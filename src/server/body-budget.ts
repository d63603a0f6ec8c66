/**
 * A bound on the request-body bytes all calls in progress hold at once. Bodies are read before their
 * signatures can be checked, so without it unsigned clients that each stall a large body could fill
 * the memory (3,000 connections of 1 MB held 3.65 GB). Past the bound a new body is refused at once
 * (503) and the connection closed; calls that fit keep flowing.
 *
 * @example
 * const budget = new BodyBudget(256 * 2 ** 20);
 * if (!budget.reserve(declaredLength)) return overloaded();
 * try { ... } finally { budget.release(declaredLength); }
 */
export class BodyBudget {
  private held = 0;

  constructor(readonly limitBytes: number) {}

  /** Takes `bytes` from the budget; false (and nothing taken) when they do not fit. */
  reserve(bytes: number): boolean {
    if (this.held + bytes > this.limitBytes) return false;
    this.held += bytes;
    return true;
  }

  release(bytes: number): void {
    this.held = Math.max(0, this.held - bytes);
  }

  /** Bytes held now (metrics, tests). */
  get heldBytes(): number {
    return this.held;
  }
}
