import { setImmediate } from "node:timers";

export interface BatcherOptions {
  /** Items per batch at most; more wait for the next. */
  readonly maxBatch: number;
  /** Batches in flight at once (each takes a connection of the pool). */
  readonly maxInFlight: number;
  /**
   * Whether a batch that failed with `error` is worth sending again item by item: yes for what the
   * database refused (one item may be the cause), no for a lost connection or a deadline (the items
   * would only wait that long once more). Default: always.
   */
  readonly retryAlone?: (error: unknown) => boolean;
}

interface Queued<I, O> {
  readonly item: I;
  readonly resolve: (value: O) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Group commit for a store over the network: items submitted while the batches in flight are busy go
 * together into the next (one round trip and one commit for many). A quiet store sends each item at
 * the next turn of the event loop, so nothing waits for company that does not come.
 *
 * `send` answers one result per item, in order. When the database refuses a batch as a whole, each of
 * its items is sent again alone, so that one bad item fails alone and the others still get their own
 * answer (see `retryAlone`).
 *
 * @example
 * const claims = new Batcher((ids: string[]) => insertAll(ids), { maxBatch: 256, maxInFlight: 2 });
 * const isNew = await claims.submit("msg_1");
 */
export class Batcher<I, O> {
  private queue: Queued<I, O>[] = [];
  private inFlight = 0;
  private scheduled = false;
  private drained: (() => void)[] = [];
  /** Batches sent and the items they held (tests). */
  batches = 0;
  items = 0;

  constructor(
    private readonly send: (items: readonly I[]) => Promise<readonly O[]>,
    private readonly options: BatcherOptions,
  ) {}

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.schedule();
    });
  }

  /** Resolves once every item submitted so far has its answer (a store closing waits for them). */
  async drain(): Promise<void> {
    while (this.queue.length > 0 || this.inFlight > 0) {
      this.start();
      await new Promise<void>((resolve) => this.drained.push(resolve));
    }
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.options.maxInFlight || this.queue.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.start();
    });
  }

  private start(): void {
    while (this.inFlight < this.options.maxInFlight && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.options.maxBatch);
      this.inFlight++;
      void this.deliver(batch).finally(() => {
        this.inFlight--;
        for (const wake of this.drained.splice(0)) wake();
        this.schedule();
      });
    }
  }

  private async deliver(batch: Queued<I, O>[]): Promise<void> {
    this.batches++;
    this.items += batch.length;
    try {
      const results = await this.send(batch.map((queued) => queued.item));
      if (results.length !== batch.length) throw new Error(`a batch of ${batch.length} got ${results.length} answers`);
      for (const [index, queued] of batch.entries()) queued.resolve(results[index]!);
      return;
    } catch (error) {
      if (batch.length === 1 || !(this.options.retryAlone?.(error) ?? true)) {
        for (const queued of batch) queued.reject(error);
        return;
      }
    }
    // One at a time: each item gets its own answer, a failure its own error.
    await Promise.all(
      batch.map(async (queued) => {
        try {
          const [result] = await this.send([queued.item]);
          queued.resolve(result!);
        } catch (error) {
          queued.reject(error);
        }
      }),
    );
  }
}
