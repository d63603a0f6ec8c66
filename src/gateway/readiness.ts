import type { PollSourceStatus } from "../poll/source.ts";
import { startDeadline } from "../runtime/deadline.ts";
import type { Store, StoreStatus } from "../store/types.ts";
import type { CompiledConfig } from "./compile.ts";

export interface ReadinessSources {
  /** The config in force, when it began to serve and when its key was loaded (ms since epoch). */
  readonly active: {
    readonly config: CompiledConfig;
    readonly adoptedAt: number;
    readonly verificationKey: { readonly source: "url" | "config" | "none"; readonly loadedAt: number | undefined };
  };
  readonly store: Pick<Store, "status">;
  /** Outbox events waiting for routes the config no longer has (they wait until the operator decides). */
  orphanedEvents?(): Readonly<Record<string, number>>;
  /** True once shutdown began: the load balancer should stop sending calls. */
  draining(): boolean;
  /** Set when the admin listener is reachable from the network without `admin.token` (shown, never failing). */
  readonly adminExposed?: { readonly host: string } | undefined;
  /** Each `poll:` entry's status, by name (none when the config has no poll entries). */
  pollSources?(): Readonly<Record<string, PollSourceStatus>>;
}

export interface ReadinessReport {
  readonly ready: boolean;
  readonly checks: {
    readonly config: { readonly ok: boolean; readonly routes: number; readonly loaded_at: string };
    readonly verification_key: {
      readonly ok: boolean;
      readonly source: "url" | "config" | "none";
      readonly age_s?: number;
    };
    /** The store's own status; `kind` is missing when the store did not answer at all. */
    readonly store: StoreReport;
    readonly draining: { readonly ok: boolean };
    /**
     * Events in the outbox whose route is no longer configured, per route: they wait (readiness stays
     * ok, the other routes serve) until the route is back or the operator moves them.
     */
    readonly outbox?: { readonly ok: true; readonly waiting_for_unknown_routes: Readonly<Record<string, number>> };
    /**
     * Present when the admin listener listens beyond loopback without `admin.token`: /metrics and
     * /readyz are open to the network there. A warning, not a failure (the gateway serves).
     */
    readonly admin?: { readonly ok: true; readonly host: string; readonly token: false; readonly warning: string };
    /**
     * Each poll source (epilot's Pollable Outbound): not ok while epilot refuses its token or request
     * (a configuration problem), or when its polls have failed for 5 minutes.
     */
    readonly poll?: { readonly ok: boolean; readonly sources: Readonly<Record<string, PollSourceStatus>> };
  };
}

/** The warning of an admin listener open to the network without a token (log line and /readyz). */
export function adminExposedWarning(host: string): string {
  return `the admin listener on ${host} is reachable from the network without admin.token: /metrics and /readyz are open to anyone who can reach it, and the admin API is off. Set admin.token (admin.token: \${ADMIN_TOKEN}) or bind admin.host to 127.0.0.1`;
}

type StoreCheck = Omit<StoreStatus, "kind"> & { readonly kind?: StoreStatus["kind"] };

/** The store check as /readyz shows it, snake_case like the rest of the report. */
interface StoreReport {
  readonly ok: boolean;
  readonly kind?: StoreStatus["kind"];
  readonly writable: boolean;
  readonly schema_version?: number;
  readonly error?: string;
}

/** A store that has not answered by then counts as not writable: /readyz must answer in time for the probe. */
const STORE_CHECK_TIMEOUT_MS = 2_000;

/**
 * Whether the gateway can serve calls now: a config is loaded, the Ed25519 key is available, the
 * store accepts writes, and shutdown has not begun.
 *
 * @example
 * const report = await checkReadiness({ active, store, draining: () => false });
 * report.ready; // true
 */
export async function checkReadiness(sources: ReadinessSources): Promise<ReadinessReport> {
  const { config, adoptedAt: loadedAt, verificationKey } = sources.active;
  // Only a key URL is waited for: keys in the config are there, and HMAC secrets need no key.
  const keySource = config.verification.keySource;
  const hasKey = keySource === undefined || !keySource.awaitingKey();
  const store = await storeStatus(sources.store);
  const draining = sources.draining();
  const checks: { -readonly [K in keyof ReadinessReport["checks"]]: ReadinessReport["checks"][K] } = {
    config: { ok: true, routes: config.routes.length, loaded_at: new Date(loadedAt).toISOString() },
    verification_key: {
      ok: hasKey,
      source: verificationKey.source,
      ...(hasKey && verificationKey.loadedAt !== undefined
        ? { age_s: Math.round((Date.now() - verificationKey.loadedAt) / 1000) }
        : {}),
    },
    store: {
      ok: store.writable,
      ...(store.kind ? { kind: store.kind } : {}),
      writable: store.writable,
      ...(store.schemaVersion !== undefined ? { schema_version: store.schemaVersion } : {}),
      ...(store.error !== undefined ? { error: store.error } : {}),
    },
    draining: { ok: !draining },
  };
  const orphans = sources.orphanedEvents?.() ?? {};
  if (Object.keys(orphans).length > 0) checks.outbox = { ok: true, waiting_for_unknown_routes: orphans };
  if (sources.adminExposed) {
    const { host } = sources.adminExposed;
    checks.admin = { ok: true, host, token: false, warning: adminExposedWarning(host) };
  }
  const polls = sources.pollSources?.() ?? {};
  if (Object.keys(polls).length > 0)
    checks.poll = { ok: Object.values(polls).every((status) => status.ok), sources: polls };
  return { ready: Object.values(checks).every((check) => check.ok), checks };
}

async function storeStatus(store: Pick<Store, "status">): Promise<StoreCheck> {
  const deadline = startDeadline(STORE_CHECK_TIMEOUT_MS);
  try {
    const status = await Promise.race([
      store.status().catch((error: unknown): StoreCheck => ({ writable: false, error: (error as Error).message })),
      deadline.expired,
    ]);
    return status === "timeout" ? { writable: false, error: `no answer within ${STORE_CHECK_TIMEOUT_MS}ms` } : status;
  } finally {
    deadline.clear();
  }
}
