import type { DeliveryConfigLease } from "../delivery/engine.ts";
import type { Logger } from "../log/logger.ts";
import type { ConnectionInfo } from "../runtime/serve.ts";
import type { CompiledConfig } from "./compile.ts";

export type RequestHandler = (request: Request, info: ConnectionInfo) => Response | Promise<Response>;

export interface ActiveConfigOptions {
  /** Builds the request handler (the hono app) for one compiled config, once per config. */
  readonly buildHandler: (config: CompiledConfig) => RequestHandler;
  readonly logger: Logger;
}

/** What still runs on one compiled config. */
interface Usage {
  /** Calls and delivery attempts running on this config now. */
  inFlight: number;
  /** Replaced by a newer config: closes once `inFlight` reaches 0. */
  retired: boolean;
  closed: boolean;
}

/** One compiled config while it serves or drains. */
interface Generation {
  readonly config: CompiledConfig;
  readonly handler: RequestHandler;
  /** When it began to serve (ms since epoch): the load time of a key given in the config. */
  readonly adoptedAt: number;
  readonly usage: Usage;
}

/**
 * The compiled config in force, swapped atomically by a reload. Each call runs from start to end on
 * the config it started with, and so does each delivery attempt (it holds the config through
 * {@link acquire}); a replaced config's `close()` (its targets' connection pools) runs only once its
 * last call and its last delivery attempt have ended.
 *
 * @example
 * const active = new ActiveConfig(compiled, { buildHandler: (config) => createGatewayApp({ ... }).fetch, logger });
 * serve({ fetch: active.fetch, ... });
 * active.replace(reloaded); // new calls use `reloaded`; calls in flight finish on `compiled`
 */
export class ActiveConfig {
  private current: Generation;
  /** Every config not closed yet: the one in force and replaced ones still draining. */
  private readonly open = new Set<Generation>();
  private readonly closing = new Set<Promise<void>>();

  constructor(
    initial: CompiledConfig,
    private readonly options: ActiveConfigOptions,
  ) {
    this.current = this.adopt(initial);
  }

  /** The config new calls and deliveries use. */
  get config(): CompiledConfig {
    return this.current.config;
  }

  /** When the config in force began to serve (ms since epoch). */
  get adoptedAt(): number {
    return this.current.adoptedAt;
  }

  /** Where the Ed25519 key comes from and when the one in use was fetched or loaded; undefined while there is none. */
  get verificationKey(): { readonly source: "url" | "config" | "none"; readonly loadedAt: number | undefined } {
    const verification = this.current.config.verification;
    if (verification.remoteKeySource) return { source: "url", loadedAt: verification.remoteKeySource.fetchedAt() };
    if (!verification.keySource) return { source: "none", loadedAt: undefined };
    return { source: "config", loadedAt: this.current.adoptedAt };
  }

  /** The public listener's handler: runs the call on the config in force when it arrived. */
  readonly fetch = async (request: Request, info: ConnectionInfo): Promise<Response> => {
    const generation = this.current;
    generation.usage.inFlight++;
    try {
      return await generation.handler(request, info);
    } finally {
      this.release(generation);
    }
  };

  /**
   * The config in force for one delivery attempt (or one poll of the outbox): it stays open until
   * `release()`, even when a reload replaces it meanwhile.
   */
  acquire(): DeliveryConfigLease {
    const generation = this.current;
    generation.usage.inFlight++;
    let released = false;
    return {
      routes: generation.config.routes,
      epilot: generation.config.epilot,
      release: () => {
        if (released) return;
        released = true;
        this.release(generation);
      },
    };
  }

  /**
   * Serves `next` from now on. The key URLs of `next` take over the keys already fetched from the
   * same URLs, so that a reload never leaves calls without a key, and start refreshing.
   */
  replace(next: CompiledConfig): void {
    const previous = this.current;
    const remote = next.verification.remoteKeySource;
    const previousRemote = previous.config.verification.remoteKeySource;
    if (remote && previousRemote) remote.seedFrom(previousRemote);
    remote?.start();
    this.current = this.adopt(next);
    previous.usage.retired = true;
    if (previous.usage.inFlight === 0) this.close(previous);
  }

  /**
   * At shutdown, after the listener and the delivery engine stopped (or the shutdown deadline passed):
   * closes every config still open, cutting calls that still run.
   */
  async closeAll(): Promise<void> {
    for (const generation of this.open) this.close(generation);
    await Promise.allSettled([...this.closing]);
  }

  private adopt(config: CompiledConfig): Generation {
    const usage: Usage = { inFlight: 0, retired: false, closed: false };
    const generation: Generation = { config, handler: this.options.buildHandler(config), adoptedAt: Date.now(), usage };
    this.open.add(generation);
    return generation;
  }

  private release(generation: Generation): void {
    generation.usage.inFlight--;
    if (generation.usage.retired && generation.usage.inFlight === 0) this.close(generation);
  }

  private close(generation: Generation): void {
    if (generation.usage.closed) return;
    generation.usage.closed = true;
    this.open.delete(generation);
    const closing: Promise<void> = generation.config
      .close()
      .catch((error: unknown) =>
        this.options.logger.warn("closing a replaced config failed", { error: (error as Error).message }),
      )
      .finally(() => this.closing.delete(closing));
    this.closing.add(closing);
  }
}
