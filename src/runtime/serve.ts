/**
 * The HTTP listener, on whichever runtime runs us. This folder is the only place that may touch
 * `Bun.*` or `Deno.*`; everything else uses web-standard Request/Response.
 */
export interface ServeOptions {
  readonly hostname: string;
  readonly port: number;
  readonly fetch: (request: Request) => Response | Promise<Response>;
  /** The runtime's own cap on a request body; our limit (with its JSON 413) sits below it. */
  readonly maxRequestBodySize: number;
}

export interface RunningServer {
  readonly hostname: string;
  readonly port: number;
  /** Stops accepting, lets calls in flight finish, then resolves. */
  stop(): Promise<void>;
}

declare const Deno: {
  serve(
    options: { hostname: string; port: number; onListen?: (addr: { hostname: string; port: number }) => void },
    handler: (request: Request) => Response | Promise<Response>,
  ): { addr: { hostname: string; port: number }; shutdown(): Promise<void> };
} | undefined;

export const runtimeName: "bun" | "deno" | "other" =
  typeof Bun !== "undefined" ? "bun" : typeof Deno !== "undefined" ? "deno" : "other";

/**
 * Starts listening; resolves once the port is bound.
 *
 * @example
 * const server = await serve({ hostname: "0.0.0.0", port: 8080, fetch: app.fetch, maxRequestBodySize: 2 ** 20 });
 */
export async function serve(options: ServeOptions): Promise<RunningServer> {
  if (typeof Bun !== "undefined") {
    const server = Bun.serve({
      hostname: options.hostname,
      port: options.port,
      fetch: options.fetch,
      maxRequestBodySize: options.maxRequestBodySize,
      // Bun closes idle keep-alive connections after this many seconds; epilot reuses connections.
      idleTimeout: 30,
    });
    return {
      hostname: server.hostname ?? options.hostname,
      port: server.port ?? options.port,
      stop: async () => {
        await server.stop(false);
      },
    };
  }
  if (typeof Deno !== "undefined") {
    const deno = Deno;
    const server = await new Promise<ReturnType<typeof deno.serve>>((resolve) => {
      const started = deno.serve({ hostname: options.hostname, port: options.port, onListen: () => resolve(started) }, options.fetch);
    });
    return { hostname: server.addr.hostname, port: server.addr.port, stop: () => server.shutdown() };
  }
  throw new Error("actiongate runs on Bun or Deno");
}
