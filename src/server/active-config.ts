import type { CompiledConfig } from "../config/compile.ts";
import type { Logger } from "../log/logger.ts";
import type { CompiledRoute } from "../routing/route.ts";
import type { ConnectionInfo } from "../runtime/serve.ts";
import type { Target } from "../targets/types.ts";

export type RequestHandler = (request: Request, info: ConnectionInfo) => Response | Promise<Response>;

export interface ActiveConfigOptions {
  /** Builds the request handler (the hono app) for one compiled config, once per config. */
  readonly buildHandler: (config: CompiledConfig) => RequestHandler;
  /** Told how long each delivery attempt took at the target (metrics). */
  readonly observeTarget?: (route: string, seconds: number) => void;
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
 * the config it started with; a replaced config's `close()` (its targets' connection pools) runs only
 * once its last call and its last delivery attempt have ended.
 *
 * @example
 * const active = new ActiveConfig(compiled, { buildHandler: (config) => createGatewayApp({ config, ... }).fetch, logger });
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

  /** The config new calls and deliveries use (its routes' targets are tracked and timed). */
  get config(): CompiledConfig {
    return this.current.config;
  }

  /** When the config in force began to serve (ms since epoch). */
  get adoptedAt(): number {
    return this.current.adoptedAt;
  }

  /** Where the Ed25519 key comes from and when the one in use was fetched or loaded; undefined while there is none. */
  get verificationKey(): { readonly source: "url" | "config"; readonly loadedAt: number | undefined } {
    const verification = this.current.config.verification;
    if (verification.remoteKeySource)
      return {
        source: "url",
        loadedAt: verification.remoteKeySource.current() ? verification.remoteKeySource.fetchedAt() : undefined,
      };
    return { source: "config", loadedAt: verification.keySource.current() ? this.current.adoptedAt : undefined };
  }

  /** The public listener's handler: runs the call on the config in force when it arrived. */
  readonly fetch = async (request: Request, info: ConnectionInfo): Promise<Response> => {
    const generation = this.current;
    generation.usage.inFlight++;
    try {
      return await generation.handler(request, info);
    } finally {
      this.release(generation.usage, generation.config);
    }
  };

  /**
   * Serves `next` from now on. A remote key source of `next` takes over the key already fetched
   * (same URL), so that a reload never leaves calls without a key, and starts refreshing.
   */
  replace(next: CompiledConfig): void {
    const previous = this.current;
    const remote = next.verification.remoteKeySource;
    const previousRemote = previous.config.verification.remoteKeySource;
    if (
      remote &&
      previousRemote &&
      next.source.verification.public_key_url === previous.config.source.verification.public_key_url
    ) {
      remote.seed(previousRemote.current(), previousRemote.fetchedAt());
    }
    remote?.start();
    this.current = this.adopt(next);
    previous.usage.retired = true;
    if (previous.usage.inFlight === 0) this.close(previous.usage, previous.config);
  }

  /**
   * At shutdown, after the listener and the delivery engine stopped (or the shutdown deadline passed):
   * closes every config still open, cutting calls that still run.
   */
  async closeAll(): Promise<void> {
    for (const { usage, config } of this.open) this.close(usage, config);
    await Promise.allSettled([...this.closing]);
  }

  private adopt(config: CompiledConfig): Generation {
    const usage: Usage = { inFlight: 0, retired: false, closed: false };
    const tracked: CompiledConfig = {
      ...config,
      routes: config.routes.map((route) => this.tracked(route, usage, config)),
    };
    const generation: Generation = {
      config: tracked,
      handler: this.options.buildHandler(tracked),
      adoptedAt: Date.now(),
      usage,
    };
    this.open.add(generation);
    return generation;
  }

  /** The route with a target that counts its deliveries as in flight on its config and times them. */
  private tracked(route: CompiledRoute, usage: Usage, config: CompiledConfig): CompiledRoute {
    const inner = route.target;
    const observe = this.options.observeTarget;
    const target: Target = {
      type: inner.type,
      close: () => inner.close(),
      deliver: async (message) => {
        usage.inFlight++;
        const started = performance.now();
        try {
          return await inner.deliver(message);
        } finally {
          observe?.(route.name, (performance.now() - started) / 1000);
          this.release(usage, config);
        }
      },
    };
    return { ...route, target };
  }

  private release(usage: Usage, config: CompiledConfig): void {
    usage.inFlight--;
    if (usage.retired && usage.inFlight === 0) this.close(usage, config);
  }

  private close(usage: Usage, config: CompiledConfig): void {
    // A delivery worker may still reach a replaced target after its close (it picked the route before
    // the swap); its attempt fails and is retried on the new config, and the config closes only once.
    if (usage.closed) return;
    usage.closed = true;
    for (const generation of this.open) if (generation.usage === usage) this.open.delete(generation);
    const closing: Promise<void> = config
      .close()
      .catch((error: unknown) =>
        this.options.logger.warn("closing a replaced config failed", { error: (error as Error).message }),
      )
      .finally(() => this.closing.delete(closing));
    this.closing.add(closing);
  }
}
