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
  /** How long an id is remembered; at least the timestamp tolerance, since older calls are refused anyway. */
  windowMs: number;
  /** Upper bound on remembered ids; the oldest are forgotten first when it is reached. */
  maxEntries?: number;
  /** Told when an id had to be forgotten before its window ended (for a log line or metric). */
  onEvict?: (webhookId: string) => void;
}

/**
 * An in-memory replay guard with bounded memory. Ids expire after `windowMs`; because the
 * signature check refuses timestamps outside the tolerance, an expired id can no longer be replayed.
 *
 * @example
 * const guard = new MemoryReplayGuard({ windowMs: 10 * 60_000 });
 * guard.claim("msg_1"); // true
 * guard.claim("msg_1"); // false
 */
export class MemoryReplayGuard implements ReplayGuard {
  /** Insertion-ordered, so the first entries are always the oldest. */
  private readonly seenAt = new Map<string, number>();
  private readonly maxEntries: number;

  constructor(private readonly options: MemoryReplayGuardOptions) {
    this.maxEntries = options.maxEntries ?? 500_000;
  }

  claim(webhookId: string, nowMs: number = Date.now()): boolean {
    this.prune(nowMs);
    const previous = this.seenAt.get(webhookId);
    if (previous !== undefined && nowMs - previous < this.options.windowMs) return false;
    this.seenAt.delete(webhookId);
    this.seenAt.set(webhookId, nowMs);
    if (this.seenAt.size > this.maxEntries) {
      const oldest = this.seenAt.keys().next().value as string;
      this.seenAt.delete(oldest);
      this.options.onEvict?.(oldest);
    }
    return true;
  }

  release(webhookId: string): void {
    this.seenAt.delete(webhookId);
  }

  get size(): number {
    return this.seenAt.size;
  }

  private prune(nowMs: number): void {
    for (const [id, at] of this.seenAt) {
      if (nowMs - at < this.options.windowMs) break;
      this.seenAt.delete(id);
    }
  }
}
