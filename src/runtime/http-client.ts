/**
 * Outbound HTTP to legacy systems on whichever runtime runs us: Bun's native `fetch` under Bun
 * (the shipped binary; measured about 22% more throughput than undici there), an undici Agent
 * elsewhere (Deno). Callers see one small interface and never learn which one is behind it.
 */
import type { Agent, Dispatcher, ProxyAgent } from "undici/index.js";
import { bypassesProxy, type ProxySettings } from "./proxy.ts";

/** The legacy system sent more than the request's `maxResponseSize`. */
export class ResponseTooLargeError extends Error {
  override name = "ResponseTooLargeError";
}

/**
 * The forward proxy refused to carry a request: `407` (credentials missing or wrong) or another
 * answer to `CONNECT`. Its code is `PROXY_AUTH_REQUIRED` or `PROXY_REFUSED`; the message names no host.
 */
export class ProxyRefusedError extends Error {
  override name = "ProxyRefusedError";
  readonly code: "PROXY_AUTH_REQUIRED" | "PROXY_REFUSED";
  constructor(readonly status: number | undefined) {
    super(`the proxy refused the request${status !== undefined ? ` (HTTP ${status})` : ""}`);
    this.code = status === 407 ? "PROXY_AUTH_REQUIRED" : "PROXY_REFUSED";
  }
}

/** TLS towards the target: a private CA, a client certificate for mTLS, certificate checks on or off. */
export interface HttpClientTls {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly rejectUnauthorized: boolean;
}

export interface HttpClientOptions {
  /** At most this many requests (and so connections) in flight at once through this client. */
  readonly connections: number;
  /** Caps a hung dial where the runtime has such a knob (undici); the request's signal bounds the rest. */
  readonly connectTimeoutMs: number;
  readonly tls?: HttpClientTls;
  /** Sends requests through this forward proxy, except to hosts in its `noProxy`. */
  readonly proxy?: ProxySettings;
}

export interface HttpClientRequest {
  readonly url: URL;
  readonly method: string;
  /** Lower-case names; a `user-agent` given here is the one sent. */
  readonly headers: Record<string, string>;
  readonly body?: string;
  /** Aborts the whole exchange: waiting for a free slot, connect, send, answer. */
  readonly signal: AbortSignal;
  /** A longer answer fails with {@link ResponseTooLargeError} as soon as the limit is passed. */
  readonly maxResponseSize: number;
  /** The body is not read (only the status and headers matter); its connection is released at once. */
  readonly discardBody?: boolean;
}

export interface HttpClientResponse {
  readonly status: number;
  /** Lower-case names; repeated headers joined with ", ". */
  readonly headers: Record<string, string>;
  /** Each `set-cookie` header on its own (a joined one cannot be split again: `Expires` holds a comma). */
  readonly setCookies: readonly string[];
  readonly body: Buffer;
}

export interface HttpClient {
  /** Sends one request; redirects are not followed (a 3xx is an answer). Rejects on network errors. */
  request(request: HttpClientRequest): Promise<HttpClientResponse>;
  /** Closes idle connections; waits for requests in flight (undici). */
  close(): Promise<void>;
}

/**
 * The client for one target: Bun's `fetch` under Bun, undici (imported on first use) elsewhere.
 *
 * @example
 * const client = createHttpClient({ connections: 32, connectTimeoutMs: 10_000 });
 * const answer = await client.request({
 *   url: new URL("http://erp.internal/api"), method: "POST", headers: { "content-type": "application/json" },
 *   body: "{}", signal: AbortSignal.timeout(10_000), maxResponseSize: 1 << 20,
 * });
 * console.log(answer.status, answer.body.toString("utf8"));
 * await client.close();
 */
export function createHttpClient(options: HttpClientOptions): HttpClient {
  return typeof Bun !== "undefined" ? createFetchClient(options) : createUndiciClient(options);
}

/** Variables through which Bun's fetch would send every call to a proxy, even calls to 127.0.0.1. */
const PROXY_VARIABLES = ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"] as const;

/**
 * actiongate talks to on-prem systems and to epilot directly and never through a proxy from the
 * environment (undici and the epilot SDK ignore those variables too). Bun's fetch would honour them
 * and has no per-request way out, so under Bun they are removed from this process's environment.
 * Returns the names removed, for a warning in the log.
 *
 * @example
 * const ignored = ignoreProxyEnvironment(); // ["HTTPS_PROXY"]
 */
export function ignoreProxyEnvironment(): string[] {
  if (typeof Bun === "undefined") return [];
  const removed = PROXY_VARIABLES.filter((name) => process.env[name] !== undefined && process.env[name] !== "");
  for (const name of PROXY_VARIABLES) delete process.env[name];
  return removed;
}

// ---------------------------------------------------------------------------------------------
// Bun: native fetch

/**
 * Bun's fetch keeps its own keep-alive pool but has no per-origin connection limit, so a slot
 * semaphore bounds how many requests (and so connections) this target gets at once, like undici's
 * `connections` did.
 */
export function createFetchClient(options: HttpClientOptions): HttpClient {
  const slots = new RequestSlots(options.connections);
  const tls = options.tls && {
    rejectUnauthorized: options.tls.rejectUnauthorized,
    ...(options.tls.ca !== undefined ? { ca: options.tls.ca } : {}),
    ...(options.tls.cert !== undefined ? { cert: options.tls.cert } : {}),
    ...(options.tls.key !== undefined ? { key: options.tls.key } : {}),
  };
  return {
    async request(request) {
      if (!slots.tryAcquire()) await slots.acquire(request.signal);
      const proxied = options.proxy && !bypassesProxy(request.url, options.proxy.noProxy) ? options.proxy : undefined;
      try {
        const init: BunFetchRequestInit = {
          method: request.method,
          headers: request.headers,
          signal: request.signal,
          // undici's request never followed redirects; a legacy 3xx is an answer, not a hop.
          redirect: "manual",
          // Only the proxy the config names, never one from the environment or its NO_PROXY.
          proxy: proxied
            ? {
                url: proxied.url,
                respectNoProxy: false,
                ...(proxied.authorization ? { headers: { "proxy-authorization": proxied.authorization } } : {}),
              }
            : false,
        };
        if (request.body !== undefined) init.body = request.body;
        if (tls) init.tls = tls;
        let response: Response;
        try {
          response = await fetch(request.url, init);
        } catch (error) {
          throw proxied ? asProxyError(error) : error;
        }
        if (proxied && response.status === 407 && request.url.protocol === "http:") {
          await response.body?.cancel();
          throw new ProxyRefusedError(407);
        }
        const headers = headersToRecord(response.headers);
        const setCookies = response.headers.getSetCookie();
        if (request.discardBody) {
          await response.body?.cancel();
          return { status: response.status, headers, setCookies, body: Buffer.alloc(0) };
        }
        const body = await readFetchBody(response, headers, request.maxResponseSize);
        return { status: response.status, headers, setCookies, body };
      } finally {
        slots.release();
      }
    },
    close: async () => {},
  };
}

/**
 * Bun's and undici's refusals of a `CONNECT` (`Proxy refused to open a tunnel: 407 ...`, `Proxy
 * response (407) !== 200 when HTTP Tunneling`) as one {@link ProxyRefusedError}; others unchanged.
 */
function asProxyError(error: unknown): unknown {
  const code = (error as { code?: unknown } | undefined)?.code;
  const message = error instanceof Error ? error.message : "";
  if (code === "ERR_PROXY_TUNNEL" || /^Proxy response \(\d+\)/.test(message)) {
    const status = /\b([1-5]\d\d)\b/.exec(message)?.[1];
    return new ProxyRefusedError(status !== undefined ? Number(status) : undefined);
  }
  return error;
}

/**
 * Reads a fetch answer up to `limit` bytes. The declared length is trusted only for an answer that
 * is not compressed (Bun decompresses, so the decoded body may be far longer than the header says).
 */
async function readFetchBody(response: Response, headers: Record<string, string>, limit: number): Promise<Buffer> {
  const declared = headers["content-length"];
  if (declared !== undefined && headers["content-encoding"] === undefined) {
    const length = Number(declared);
    if (length <= limit) return Buffer.from(await response.arrayBuffer());
    await response.body?.cancel();
    throw new ResponseTooLargeError(`answer is larger than ${limit} bytes`);
  }
  if (!response.body) return Buffer.alloc(0);
  return readCapped(response.body, limit);
}

/** Lower-case names (as Headers gives them); repeated `set-cookie` joined like any other header. */
function headersToRecord(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of headers) {
    const previous = out[name];
    out[name] = previous === undefined ? value : `${previous}, ${value}`;
  }
  return out;
}

/**
 * At most `limit` holders at once; the rest wait first come, first served. A waiter whose signal
 * aborts leaves the queue (and rejects with the signal's reason) without ever taking a slot.
 *
 * @example
 * const slots = new RequestSlots(2);
 * if (!slots.tryAcquire()) await slots.acquire(signal);
 * try { await work(); } finally { slots.release(); }
 */
export class RequestSlots {
  private inUse = 0;
  /** A Set keeps insertion order (FIFO) and lets an aborted waiter leave in O(1). */
  private readonly waiters = new Set<() => void>();

  constructor(private readonly limit: number) {}

  /** Requests holding a slot now. */
  get active(): number {
    return this.inUse;
  }

  /** Requests waiting for a slot now. */
  get queued(): number {
    return this.waiters.size;
  }

  /** Takes a slot when one is free, without waiting (no promise on the fast path). */
  tryAcquire(): boolean {
    if (this.inUse >= this.limit) return false;
    this.inUse++;
    return true;
  }

  /** Waits for a slot; {@link release} hands it over directly, so no newcomer can jump the queue. */
  acquire(signal: AbortSignal): Promise<void> {
    if (this.tryAcquire()) return Promise.resolve();
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        this.waiters.delete(grant);
        reject(signal.reason);
      };
      const grant = () => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      };
      this.waiters.add(grant);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  release(): void {
    const next = this.waiters.values().next();
    if (next.done) {
      this.inUse--;
      return;
    }
    // The slot passes to the first waiter as is: inUse stays the same.
    this.waiters.delete(next.value);
    next.value();
  }
}

// ---------------------------------------------------------------------------------------------
// Elsewhere (Deno): undici

type UndiciModule = typeof import("undici/index.js");
let undiciModule: Promise<UndiciModule> | undefined;

/** Imported once, on the first request that needs it, so that the Bun binary never evaluates undici. */
function loadUndici(): Promise<UndiciModule> {
  undiciModule ??= import("undici/index.js");
  return undiciModule;
}

/**
 * An undici Agent: keep-alive connections per origin (at most `connections`), the connect timeout,
 * and the TLS options as connect options. The Agent is made on the first request.
 */
export function createUndiciClient(options: HttpClientOptions): HttpClient {
  let agent: Promise<Agent> | undefined;
  let proxyAgent: Promise<ProxyAgent> | undefined;
  let closed = false;
  const connect = { timeout: options.connectTimeoutMs, ...options.tls };
  const getAgent = () =>
    (agent ??= loadUndici().then(
      (undici) => new undici.Agent({ connections: options.connections, keepAliveTimeout: 4_000, connect }),
    ));
  const getProxyAgent = (proxy: ProxySettings) =>
    (proxyAgent ??= loadUndici().then(
      (undici) =>
        new undici.ProxyAgent({
          uri: proxy.url,
          ...(proxy.authorization ? { token: proxy.authorization } : {}),
          connections: options.connections,
          keepAliveTimeout: 4_000,
          // TLS towards the target, inside the CONNECT tunnel; the proxy itself is plain http.
          requestTls: connect,
          proxyTls: { timeout: options.connectTimeoutMs },
        }),
    ));
  return {
    async request(request) {
      const proxied = options.proxy && !bypassesProxy(request.url, options.proxy.noProxy) ? options.proxy : undefined;
      const dispatcher: Dispatcher = proxied ? await getProxyAgent(proxied) : await getAgent();
      const pending = dispatcher.request({
        origin: request.url.origin,
        path: request.url.pathname + request.url.search,
        method: request.method as Dispatcher.HttpMethod,
        headers: request.headers,
        body: request.body ?? null,
        signal: request.signal,
      });
      let response: Dispatcher.ResponseData;
      try {
        response = await settleOnAbort(pending, request.signal);
      } catch (error) {
        throw proxied ? asProxyError(error) : error;
      }
      if (proxied && response.statusCode === 407 && request.url.protocol === "http:") {
        response.body.destroy();
        throw new ProxyRefusedError(407);
      }
      const headers = flattenUndiciHeaders(response.headers);
      const raw = response.headers["set-cookie"];
      const setCookies = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
      if (request.discardBody) {
        response.body.destroy();
        return { status: response.statusCode, headers, setCookies, body: Buffer.alloc(0) };
      }
      const body = await readCapped(response.body, request.maxResponseSize);
      return { status: response.statusCode, headers, setCookies, body };
    },
    async close() {
      if (closed) return;
      closed = true;
      const agents: Promise<Dispatcher>[] = [agent, proxyAgent].filter((each) => each !== undefined);
      await Promise.all(agents.map(async (each) => (await each).close()));
    },
  };
}

/**
 * undici notices an abort of a request still queued for a connection only once it is dispatched
 * (and then drops it before sending); the caller's deadline must not wait for that.
 */
function settleOnAbort<T>(pending: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    pending.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      // undici rejects it too, later; that rejection has nobody left to tell.
      pending.catch(() => {});
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    pending.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

/**
 * Collects an answer body (a web stream under fetch, a Node stream under undici) up to `limit` bytes.
 * Past the limit it throws; leaving the loop cancels the stream and drops the connection, so the rest of
 * a runaway answer is never read.
 */
async function readCapped(chunks: AsyncIterable<Uint8Array>, limit: number): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of chunks) {
    total += chunk.byteLength;
    if (total > limit) throw new ResponseTooLargeError(`answer is larger than ${limit} bytes`);
    parts.push(chunk);
  }
  return Buffer.concat(parts, total);
}

/** undici's headers (string | string[]) flattened; names are lower-case as undici gives them. */
function flattenUndiciHeaders(headers: Dispatcher.ResponseData["headers"]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    out[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  return out;
}
