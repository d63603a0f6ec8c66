/**
 * The HTTP listener, on whichever runtime runs us. This folder is the only place that may touch
 * `Bun.*` or `Deno.*`; everything else uses web-standard Request/Response.
 */
export interface ServeOptions {
  readonly hostname: string;
  readonly port: number;
  /** `info` tells who is calling, for `server.allowed_ips`. */
  readonly fetch: (request: Request, info: ConnectionInfo) => Response | Promise<Response>;
  /** The runtime's own cap on a request body; our limit (with its JSON 413) sits below it. */
  readonly maxRequestBodySize: number;
  /** Serve HTTPS with this certificate (`server.tls`). */
  readonly tls?: ServerTls;
  /** Share the port with other processes (SO_REUSEPORT, Linux): `server.workers`. */
  readonly reusePort?: boolean;
}

/** What the runtime knows about the connection a request came in on. */
export interface ConnectionInfo {
  /** The client's IP address (IPv4, IPv6, or IPv4-mapped IPv6); undefined when the runtime cannot tell. */
  readonly remoteAddress?: string | undefined;
}

/** PEM text of the listener's certificate chain and private key: HTTPS instead of HTTP. */
export interface ServerTls {
  readonly cert: string;
  readonly key: string;
}

export interface RunningServer {
  readonly hostname: string;
  readonly port: number;
  /** Stops accepting, lets calls in flight finish, then resolves. */
  stop(): Promise<void>;
}

declare const Deno:
  | {
      serve(
        options: {
          hostname: string;
          port: number;
          cert?: string;
          key?: string;
          onListen?: (addr: { hostname: string; port: number }) => void;
        },
        handler: (request: Request, info: { remoteAddr: { hostname: string } }) => Response | Promise<Response>,
      ): { addr: { hostname: string; port: number }; shutdown(): Promise<void> };
    }
  | undefined;

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
      fetch: (request, server) => options.fetch(request, { remoteAddress: server.requestIP(request)?.address }),
      ...(options.tls ? { tls: { cert: options.tls.cert, key: options.tls.key } } : {}),
      maxRequestBodySize: options.maxRequestBodySize,
      reusePort: options.reusePort ?? false,
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
    // Deno.serve binds before it returns (a bind error throws here) and calls onListen from inside
    // the call; the no-op onListen keeps Deno from printing "Listening on ..." among our JSON logs.
    const listen = { hostname: options.hostname, port: options.port, ...options.tls, onListen: () => {} };
    const server = deno.serve(listen, (request, info) =>
      options.fetch(request, { remoteAddress: info.remoteAddr.hostname }),
    );
    return { hostname: server.addr.hostname, port: server.addr.port, stop: () => server.shutdown() };
  }
  throw new Error("actiongate runs on Bun or Deno");
}
