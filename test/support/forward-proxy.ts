import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import { type AddressInfo, connect, type Socket } from "node:net";

/** One request that went through the proxy, as the proxy saw it. */
export interface ProxiedRequest {
  /** `CONNECT` for a tunnel (https targets), else the method of a forwarded plain http request. */
  readonly method: string;
  /** `host:port` for CONNECT, the absolute URL for a forwarded request. */
  readonly target: string;
  /** The Proxy-Authorization header as received (undefined when none was sent). */
  readonly proxyAuthorization: string | undefined;
  /** Whether the proxy let it through (credentials right, when the proxy asks for some). */
  readonly allowed: boolean;
}

export interface ForwardProxy {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** Everything that reached the proxy, in order. */
  readonly requests: ProxiedRequest[];
  close(): Promise<void>;
}

/**
 * A real forward proxy on 127.0.0.1, as a corporate egress proxy behaves: plain http requests in
 * absolute form are forwarded, `CONNECT host:port` opens a TCP tunnel (https targets: the TLS session
 * runs end to end through it, so the proxy sees only the host). With `credentials`, a request without
 * the matching `Proxy-Authorization: Basic ...` gets `407` and goes nowhere. Records every request.
 *
 * @example
 * const proxy = await startForwardProxy({ credentials: { username: "gw", password: "pw" } });
 * // target: { proxy: { url: proxy.url, username: gw, password: pw } }
 * expect(proxy.requests.map((r) => r.method)).toEqual(["CONNECT"]);
 */
export async function startForwardProxy(options: { credentials?: { username: string; password: string } } = {}) {
  const requests: ProxiedRequest[] = [];
  const expected = options.credentials
    ? `Basic ${Buffer.from(`${options.credentials.username}:${options.credentials.password}`).toString("base64")}`
    : undefined;
  const sockets = new Set<Socket>();
  const allowed = (header: string | undefined) => expected === undefined || header === expected;

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const proxyAuthorization = req.headers["proxy-authorization"];
    const ok = allowed(proxyAuthorization);
    requests.push({ method: req.method ?? "", target: req.url ?? "", proxyAuthorization, allowed: ok });
    if (!ok) {
      res.writeHead(407, { "proxy-authenticate": 'Basic realm="test proxy"', "content-type": "text/plain" });
      res.end("proxy authentication required");
      return;
    }
    let target: URL;
    try {
      target = new URL(req.url ?? "");
    } catch {
      res.writeHead(400).end("absolute URL expected");
      return;
    }
    const { "proxy-authorization": _, "proxy-connection": __, ...headers } = req.headers;
    const upstream = httpRequest(
      {
        host: target.hostname,
        port: target.port || 80,
        path: target.pathname + target.search,
        method: req.method,
        headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on("error", () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(upstream);
  });

  server.on("connect", (req: IncomingMessage, client: Socket, head: Buffer) => {
    const proxyAuthorization = req.headers["proxy-authorization"];
    const ok = allowed(proxyAuthorization);
    requests.push({ method: "CONNECT", target: req.url ?? "", proxyAuthorization, allowed: ok });
    sockets.add(client);
    client.on("close", () => sockets.delete(client));
    client.on("error", () => {});
    if (!ok) {
      client.end(
        'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="test proxy"\r\nContent-Length: 0\r\n\r\n',
      );
      return;
    }
    const [host, port] = splitHostPort(req.url ?? "");
    const upstream = connect(Number(port), host, () => {
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.on("close", () => sockets.delete(upstream));
    upstream.on("error", () => client.destroy());
  });
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  const proxy: ForwardProxy = {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
  return proxy;
}

/** `host:port`, `[v6]:port` */
function splitHostPort(authority: string): [string, string] {
  const match = /^\[?([^\]]+?)\]?:(\d+)$/.exec(authority);
  return match ? [match[1]!, match[2]!] : [authority, "443"];
}
