import type { KeyObject } from "node:crypto";
import type { Logger } from "../log/logger.ts";
import { createHttpClient } from "../runtime/http-client.ts";
import type { ProxySettings } from "../runtime/proxy.ts";
import { parsePublicKey } from "./keys.ts";
import type { PublicKeySource } from "./signature.ts";

/**
 * Keys given in the config (inline or in a file): they never change while the process runs, and
 * nothing is ever waited for.
 *
 * @example
 * verifySignature(incoming, { keySource: staticKeySource(parsePublicKey(whpk)), toleranceMs: 300_000 });
 */
export function staticKeySource(keys: KeyObject | readonly KeyObject[]): PublicKeySource {
  const trusted = distinctKeys(Array.isArray(keys) ? keys : [keys as KeyObject]);
  return { current: () => trusted, refreshAfterFailure: async () => undefined, awaitingKey: () => false };
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
  /**
   * While this returns true, a failing URL is tried again after `refreshIntervalMs` instead of the
   * short backoff: another URL of the same set already gave a key, so nothing waits for this one.
   */
  patient?: () => boolean;
  /** Told whenever the key changes (loaded, rotated). */
  onChange?: () => void;
}

/** epilot's key document is a few hundred bytes; anything this large is not one. */
const MAX_KEY_DOCUMENT_BYTES = 256 * 1024;

/** The key of one URL, with its lifecycle: `start()` begins fetching in the background, `stop()` ends it. */
export interface RemoteKeySource {
  /** Where the key is fetched from. */
  readonly url: string;
  /** The key in use, or undefined while none could be loaded yet. */
  current(): KeyObject | undefined;
  /** Fetches again after a failed signature (rate-limited); resolves to the key fetched (the same object when unchanged). */
  refreshAfterFailure(): Promise<KeyObject | undefined>;
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
        // An unchanged key keeps its object, so that verifying against "the keys after a refresh" skips it.
        if (changed) key = fetched;
        keyFetchedAt = Date.now();
        failures = 0;
        if (changed) {
          options.logger.info("verification key loaded", { key_url: options.url });
          options.onChange?.();
        }
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
      failures > 0 && !options.patient?.()
        ? RETRY_BACKOFF_MS[Math.min(failures - 1, RETRY_BACKOFF_MS.length - 1)]!
        : options.refreshIntervalMs;
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
      options.onChange?.();
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

/**
 * The keys of several URLs (`public_key_url` as a list, or epilot's two), each fetched, refreshed and
 * healed on rotation on its own. A signature valid under any of them passes. The set waits for a key
 * only until one URL gave one: the URLs are alternatives, so one that stays unreachable (logged, retried
 * once per refresh interval after that) does not keep the gateway from serving.
 */
export interface RemoteKeySet extends PublicKeySource {
  readonly urls: readonly string[];
  /** One source per URL, in the config's order. */
  readonly sources: readonly RemoteKeySource[];
  start(): void;
  stop(): void;
  /** When the oldest key in use was fetched (ms since epoch); undefined while there is none. */
  fetchedAt(): number | undefined;
  /** Takes over the keys `previous` fetched for the URLs both have (a config reload). */
  seedFrom(previous: RemoteKeySet): void;
}

/**
 * One {@link remoteKeySource} per URL, seen as one {@link PublicKeySource}.
 *
 * @example
 * const keys = remoteKeySet(EPILOT_PUBLIC_KEY_URLS, { refreshIntervalMs: 3_600_000, logger });
 * keys.start();
 */
export function remoteKeySet(
  urls: readonly string[],
  options: Omit<RemoteKeySourceOptions, "url" | "patient" | "onChange">,
): RemoteKeySet {
  let cached: readonly KeyObject[] | undefined;
  const sources: RemoteKeySource[] = [];
  const hasKey = () => sources.some((source) => source.current() !== undefined);
  for (const url of distinct(urls)) {
    sources.push(
      remoteKeySource({
        ...options,
        url,
        patient: hasKey,
        onChange: () => {
          cached = undefined;
        },
      }),
    );
  }
  const current = (): readonly KeyObject[] => {
    cached ??= distinctKeys(sources.flatMap((source) => source.current() ?? []));
    return cached;
  };
  return {
    urls: sources.map((source) => source.url),
    sources,
    current,
    awaitingKey: () => !hasKey(),
    async refreshAfterFailure() {
      const before = current();
      const fetched = await Promise.all(sources.map((source) => source.refreshAfterFailure()));
      if (fetched.every((key) => key === undefined || before.includes(key))) return undefined;
      return current();
    },
    fetchedAt() {
      const times = sources.flatMap((source) => (source.current() ? (source.fetchedAt() ?? []) : []));
      return times.length > 0 ? Math.min(...times) : undefined;
    },
    seedFrom(previous) {
      for (const source of sources) {
        const same = previous.sources.find((candidate) => candidate.url === source.url);
        if (same) source.seed(same.current(), same.fetchedAt());
      }
    },
    start: () => {
      for (const source of sources) source.start();
    },
    stop: () => {
      for (const source of sources) source.stop();
    },
  };
}

/**
 * Every key the config trusts: the ones it holds (`public_key`, `public_key_file`) and the ones its
 * URLs give. Waits only for the URLs: a call that no key verifies while they have given none may be
 * epilot's, signed with the key not fetched yet.
 *
 * @example
 * const keySource = trustedKeys([parsePublicKey(whpk)], remoteKeySet([url], { refreshIntervalMs, logger }));
 */
export function trustedKeys(configured: readonly KeyObject[], remote: RemoteKeySet | undefined): PublicKeySource {
  if (!remote) return staticKeySource(configured);
  if (configured.length === 0) return remote;
  let seen: readonly KeyObject[] | undefined;
  let combined: readonly KeyObject[] = configured;
  const current = (): readonly KeyObject[] => {
    const fetched = remote.current();
    if (fetched !== seen) {
      seen = fetched;
      combined = distinctKeys([...configured, ...fetched]);
    }
    return combined;
  };
  return {
    current,
    awaitingKey: () => remote.awaitingKey(),
    async refreshAfterFailure() {
      return (await remote.refreshAfterFailure()) === undefined ? undefined : current();
    },
  };
}

/** Keys in their first order, each once: two URLs serving the same key cost one verification, not two. */
function distinctKeys(keys: readonly KeyObject[]): readonly KeyObject[] {
  const out: KeyObject[] = [];
  for (const key of keys) if (!out.some((kept) => kept === key || kept.equals(key))) out.push(key);
  return out;
}

function distinct(values: readonly string[]): string[] {
  return [...new Set(values)];
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    return cause?.code ? `${error.message} (${cause.code})` : error.message;
  }
  return String(error);
}
