import type { KeyObject } from "node:crypto";
import type { Logger } from "../log/logger.ts";
import { createHttpClient } from "../runtime/http-client.ts";
import type { ProxySettings } from "../runtime/proxy.ts";
import { parsePublicKey } from "./keys.ts";
import type { PublicKeySource } from "./signature.ts";

/** A key given in the config (inline or file): it never changes while the process runs. */
export function staticKeySource(key: KeyObject): PublicKeySource {
  return { current: () => key, refreshAfterFailure: async () => undefined };
}

export interface RemoteKeySourceOptions {
  url: string;
  /** How often the key is fetched again while everything works. */
  refreshIntervalMs: number;
  /** At most one extra fetch per this interval when signatures fail (rotation), so bad calls cannot flood the CDN. */
  failureRefetchIntervalMs?: number;
  fetchTimeoutMs?: number;
  logger: Logger;
  /** `epilot.proxy`: the key is fetched through it (never through a proxy from the environment). */
  proxy?: ProxySettings | undefined;
  /** Replaceable for tests; actiongate's own HTTP client otherwise. */
  fetch?: typeof fetch;
}

/** epilot's key document is a few hundred bytes; anything this large is not one. */
const MAX_KEY_DOCUMENT_BYTES = 256 * 1024;

/** A remote key source with its lifecycle: `start()` begins fetching in the background, `stop()` ends it. */
export interface RemoteKeySource extends PublicKeySource {
  /** Where the key is fetched from. */
  readonly url: string;
  start(): void;
  stop(): void;
  /** When the key in use was fetched (ms since epoch), for metrics and readiness. */
  fetchedAt(): number | undefined;
  /**
   * Takes over a key another source fetched from the same URL (a config reload), so that calls keep
   * verifying while this source fetches its own. Ignored once this source has a key.
   */
  seed(key: KeyObject | undefined, fetchedAt: number | undefined): void;
}

const RETRY_BACKOFF_MS = [1_000, 2_000, 5_000, 10_000, 30_000, 60_000] as const;

/**
 * epilot's public key, fetched from `url` (epilot's JSON document, PEM or whpk_), cached and
 * refreshed on an interval. When the URL cannot be reached the gateway still starts: the fetch is
 * retried in the background with backoff and every failure is logged.
 *
 * @example
 * const source = remoteKeySource({ url, refreshIntervalMs: 3_600_000, logger });
 * source.start();
 */
export function remoteKeySource(options: RemoteKeySourceOptions): RemoteKeySource {
  const get = keyGetter(options);
  const failureRefetchIntervalMs = options.failureRefetchIntervalMs ?? 30_000;
  const fetchTimeoutMs = options.fetchTimeoutMs ?? 5_000;
  let key: KeyObject | undefined;
  let keyFetchedAt: number | undefined;
  let lastAttemptAt = 0;
  let inFlight: Promise<KeyObject | undefined> | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let failures = 0;
  let stopped = false;
  let started = false;

  const fetchKey = (): Promise<KeyObject | undefined> => {
    inFlight ??= (async () => {
      lastAttemptAt = Date.now();
      try {
        const response = await get(AbortSignal.timeout(fetchTimeoutMs));
        if (response.status < 200 || response.status >= 300)
          throw new Error(`key URL answered HTTP ${response.status}`);
        const fetched = parsePublicKey(response.text);
        const changed = !key || !fetched.equals(key);
        key = fetched;
        keyFetchedAt = Date.now();
        failures = 0;
        if (changed) options.logger.info("verification key loaded", { key_url: options.url });
        return key;
      } catch (error) {
        failures++;
        options.logger.warn("verification key fetch failed", {
          key_url: options.url,
          error: describe(error),
          attempt: failures,
          have_key: key !== undefined,
        });
        return undefined;
      } finally {
        inFlight = undefined;
      }
    })();
    return inFlight;
  };

  const schedule = (): void => {
    if (stopped) return;
    const delay =
      failures > 0 ? RETRY_BACKOFF_MS[Math.min(failures - 1, RETRY_BACKOFF_MS.length - 1)]! : options.refreshIntervalMs;
    timer = setTimeout(() => void fetchKey().finally(schedule), delay);
    // The refresh must not keep a process alive that is otherwise shutting down.
    (timer as { unref?: () => void }).unref?.();
  };

  return {
    url: options.url,
    current: () => key,
    fetchedAt: () => keyFetchedAt,
    seed(seededKey, seededAt) {
      if (key || !seededKey) return;
      key = seededKey;
      keyFetchedAt = seededAt;
    },
    async refreshAfterFailure() {
      if (inFlight) return inFlight;
      if (Date.now() - lastAttemptAt < failureRefetchIntervalMs) return undefined;
      return fetchKey();
    },
    start() {
      // A second start would run a second refresh loop that stop() could not end.
      if (started) return;
      started = true;
      stopped = false;
      void fetchKey().finally(schedule);
    },
    stop() {
      stopped = true;
      started = false;
      if (timer) clearTimeout(timer);
    },
  };
}

/** GET of the key URL: through the injected fetch (tests), else through the HTTP client with `proxy`. */
function keyGetter(
  options: RemoteKeySourceOptions,
): (signal: AbortSignal) => Promise<{ status: number; text: string }> {
  const url = new URL(options.url);
  const headers = { accept: "application/json" };
  if (options.fetch) {
    const injected = options.fetch;
    return async (signal) => {
      const response = await injected(options.url, { signal, headers });
      return { status: response.status, text: await response.text() };
    };
  }
  const client = createHttpClient({
    connections: 2,
    connectTimeoutMs: 10_000,
    ...(options.proxy ? { proxy: options.proxy } : {}),
  });
  return async (signal) => {
    const response = await client.request({
      url,
      method: "GET",
      headers,
      signal,
      maxResponseSize: MAX_KEY_DOCUMENT_BYTES,
    });
    return { status: response.status, text: response.body.toString("utf8") };
  };
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    return cause?.code ? `${error.message} (${cause.code})` : error.message;
  }
  return String(error);
}
