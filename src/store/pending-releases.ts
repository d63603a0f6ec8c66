/**
 * The one rule both durable stores follow when forgetting a webhook-id fails (the database went away,
 * the disk is full, the file is locked): `release` never rejects. The id is kept here, released again
 * in the background every second, and released before any claim of that id, so that epilot's retry
 * of the failed call is processed (or answered 503 while the store is still down), never refused 409.
 */
export interface PendingReleases {
  /** Forgets the id in the store; on failure keeps it for a retry and warns. Never rejects. */
  release(webhookId: string): Promise<void>;
  /** Whether a release of `webhookId` waits for a retry. */
  has(webhookId: string): boolean;
  /** Before a claim of `webhookId`: a release still pending is done first (rejects while the store is down). */
  settle(webhookId: string): Promise<void>;
  /** Stops the background retries (the store is closing). */
  stop(): void;
  /** How many releases wait for a retry. */
  readonly size: number;
}

const RETRY_INTERVAL_MS = 1_000;

/**
 * @example
 * const releases = pendingReleases((id) => deleteFromReplayGuard(id), (message, fields) => logger.warn(message, fields));
 * await releases.release("msg_1"); // resolves even when the store is down
 */
export function pendingReleases(
  releaseNow: (webhookId: string) => Promise<void> | void,
  warn: (message: string, fields: Record<string, unknown>) => void,
  describe: (error: unknown) => string = (error) => (error instanceof Error ? error.message : String(error)),
): PendingReleases {
  const pending = new Set<string>();
  let timer: ReturnType<typeof setInterval> | undefined;

  const retry = async () => {
    for (const webhookId of [...pending]) {
      try {
        await releaseNow(webhookId);
        pending.delete(webhookId);
      } catch {
        return; // still failing: the next tick tries again
      }
    }
    if (pending.size === 0 && timer) {
      clearInterval(timer);
      timer = undefined;
    }
  };

  return {
    async release(webhookId) {
      try {
        await releaseNow(webhookId);
        pending.delete(webhookId);
      } catch (error) {
        pending.add(webhookId);
        timer ??= setInterval(() => void retry(), RETRY_INTERVAL_MS);
        (timer as { unref?: () => void }).unref?.();
        warn("replay guard release failed; retrying in the background", {
          webhook_id: webhookId,
          error: describe(error),
        });
      }
    },
    has: (webhookId) => pending.has(webhookId),
    async settle(webhookId) {
      if (!pending.has(webhookId)) return;
      await releaseNow(webhookId);
      pending.delete(webhookId);
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
    },
    get size() {
      return pending.size;
    },
  };
}
