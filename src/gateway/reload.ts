import { readFileSync } from "node:fs";
import { type LoadedConfig, loadConfigText } from "../config/load.ts";
import type { GatewayConfig } from "../config/schema.ts";
import { ConfigError, type ConfigProblem, formatPath, formatProblem } from "../kit/config-errors.ts";
import type { Logger } from "../log/logger.ts";
import { onReloadSignal } from "../runtime/process.ts";
import { watchFile } from "../runtime/watch.ts";
import { type CompiledConfig, compileConfig } from "./compile.ts";

/** Sections read once at start (listeners, store, logger, poll sources, tracing): a reload keeps their old values. */
export const RESTART_ONLY_SECTIONS = [
  "server",
  "admin",
  "store",
  "log",
  "poll",
  "telemetry",
] as const satisfies readonly (keyof GatewayConfig)[];

export type ReloadTrigger = "SIGHUP" | "watch";

export type ReloadOutcome =
  | { readonly kind: "reloaded"; readonly routes: readonly string[]; readonly restartOnly: readonly string[] }
  /** `watch` saw no change of the file's content (an editor touching it, a neighbour file). */
  | { readonly kind: "unchanged" }
  | { readonly kind: "refused"; readonly problems: readonly string[] };

/** What the reloader swaps configs in: the running gateway. */
export interface ReloadTarget {
  /** The config in force. */
  readonly config: CompiledConfig;
  /** False when the gateway started without a public listener (routes of polled messages only). */
  readonly listensForCalls?: boolean;
  /** Serves `next` from now on; calls in flight finish on the config they started with. */
  replaceConfig(next: CompiledConfig): void;
}

export interface ConfigReloaderOptions {
  readonly file: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly gateway: ReloadTarget;
  readonly logger: Logger;
  readonly userAgent: string;
  /** Told the result of every reload that was tried (metrics). */
  readonly onResult?: (result: "success" | "failure") => void;
  /** `watch`: how long the file must stay unchanged before it is read for good (default 250 ms). */
  readonly stableMs?: number;
  /** `watch`: how many times it is re-read while it keeps changing before the reload is refused (default 20). */
  readonly maxStableChecks?: number;
}

export interface ConfigReloader {
  /** Loads, checks and compiles the file in full, then swaps it in; a broken file changes nothing. Reloads run one at a time. */
  reload(trigger: ReloadTrigger): Promise<ReloadOutcome>;
}

/**
 * Reloads the config file on SIGHUP or a file change. The new file is loaded and compiled in full
 * before anything changes; a file with problems is refused, each problem logged, and the old config
 * keeps serving. Keys that need a restart (server, admin, store, log, telemetry) keep their old values, with a
 * warning naming the ones that changed.
 *
 * @example
 * const reloader = createConfigReloader({ file, env: process.env, gateway, logger, userAgent: USER_AGENT });
 * onReloadSignal(() => void reloader.reload("SIGHUP"));
 */
export function createConfigReloader(options: ConfigReloaderOptions): ConfigReloader {
  const { file, logger } = options;
  const stableMs = options.stableMs ?? 250;
  const maxStableChecks = options.maxStableChecks ?? 20;
  let lastText = readText(file);
  let queue: Promise<unknown> = Promise.resolve();

  const read = (): { text: string } | { error: string } => {
    try {
      return { text: readFileSync(file, "utf8") };
    } catch (error) {
      return { error: `${file}: cannot read the file (${(error as { code?: string }).code ?? "error"})` };
    }
  };

  /**
   * `--watch` sees an editor or a deploy tool while it writes: the file is taken only once two reads
   * `stableMs` apart agree, so a half-written file that happens to parse is never loaded.
   */
  const readStable = async (): Promise<{ text: string } | { error: string }> => {
    let previous = read();
    for (let check = 0; check < maxStableChecks; check++) {
      await new Promise((resolve) => setTimeout(resolve, stableMs));
      const next = read();
      if ("text" in next && "text" in previous && next.text === previous.text) return next;
      previous = next;
    }
    return { error: `${file}: the file kept changing for ${(stableMs * maxStableChecks) / 1000}s; not loaded` };
  };

  const run = async (trigger: ReloadTrigger): Promise<ReloadOutcome> => {
    const fileRead = trigger === "watch" ? await readStable() : read();
    if ("error" in fileRead) return refuse(trigger, [fileRead.error]);
    const text = fileRead.text;
    if (trigger === "watch" && text === lastText) return { kind: "unchanged" };

    const current = options.gateway.config;
    let loaded: LoadedConfig;
    try {
      loaded = loadConfigText(file, text, options.env);
    } catch (error) {
      return refuse(trigger, problemsOf(error));
    }
    const restartOnly = changedRestartOnlyKeys(current.source, loaded.config);
    const kept: GatewayConfig = { ...loaded.config, ...pick(current.source, RESTART_ONLY_SECTIONS) };
    const keptProblems = problemsWithKeptSections(kept, loaded);
    if (keptProblems.length > 0) return refuse(trigger, keptProblems);

    let compiled: CompiledConfig;
    try {
      compiled = compileConfig({ ...loaded, config: kept }, { logger, userAgent: options.userAgent });
    } catch (error) {
      return refuse(trigger, problemsOf(error));
    }
    options.gateway.replaceConfig(compiled);
    lastText = text;
    if (restartOnly.length > 0)
      logger.warn("config reload: these keys need a restart; their old values stay in force", { keys: restartOnly });
    if (
      options.gateway.listensForCalls === false &&
      compiled.routes.some((route) => route.matchesMessage === undefined)
    )
      logger.warn("config reload: routes for custom actions need the public listener, which opens at the next start", {
        routes: compiled.routes.filter((route) => route.matchesMessage === undefined).map((route) => route.name),
      });
    const routes = compiled.routes.map((route) => route.name);
    logger.info("config reloaded", { trigger, config: file, routes });
    options.onResult?.("success");
    return { kind: "reloaded", routes, restartOnly };
  };

  const refuse = (trigger: ReloadTrigger, problems: string[]): ReloadOutcome => {
    logger.error("config reload refused; the previous config keeps serving", { trigger, config: file, problems });
    options.onResult?.("failure");
    return { kind: "refused", problems };
  };

  return {
    reload(trigger) {
      const next = queue.then(() => run(trigger));
      queue = next.catch(() => undefined);
      return next;
    },
  };
}

/**
 * Dot paths of restart-only keys whose value differs between two configs (`server.port`, `store`).
 *
 * @example
 * changedRestartOnlyKeys(old, { ...old, server: { ...old.server, port: 9000 } }); // ["server.port"]
 */
export function changedRestartOnlyKeys(before: GatewayConfig, after: GatewayConfig): string[] {
  return RESTART_ONLY_SECTIONS.flatMap((section) => differingPaths(before[section], after[section], [section]));
}

function differingPaths(a: unknown, b: unknown, path: PropertyKey[]): string[] {
  if (isRecord(a) && isRecord(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...keys].flatMap((key) => differingPaths(a[key], b[key], [...path, key]));
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [formatPath(path)];
}

/**
 * What the schema would have said of the file with the old restart-only sections: async routes need
 * a store, and a route's match.source must name a poll entry that runs.
 */
function problemsWithKeptSections(config: GatewayConfig, loaded: LoadedConfig): string[] {
  const problem = (path: PropertyKey[], message: string) =>
    formatProblem(loaded.file, { path, message, ...loaded.locate(path) });
  const running = new Set((config.poll ?? []).map((source) => source.name));
  return config.routes.flatMap((route, index) => {
    const problems: string[] = [];
    if (!config.store && route.delivery.mode === "async")
      problems.push(
        problem(["routes", index, "delivery", "mode"], "async delivery needs a store, and adding one needs a restart"),
      );
    const source = route.match?.source;
    if (source !== undefined && !running.has(source))
      problems.push(
        problem(
          ["routes", index, "match", "source"],
          "names a poll entry that is not running; adding one needs a restart",
        ),
      );
    return problems;
  });
}

function problemsOf(error: unknown): string[] {
  if (error instanceof ConfigError)
    return error.problems.map((problem: ConfigProblem) => formatProblem(error.file, problem));
  // Not a config problem but a bug or an environment failure: still refused, never a crash of the running gateway.
  return [`${(error as Error).name ?? "Error"}: ${(error as Error).message ?? String(error)}`];
}

function pick<T extends object, K extends keyof T>(source: T, keys: readonly K[]): Pick<T, K> {
  return Object.fromEntries(keys.map((key) => [key, source[key]])) as Pick<T, K>;
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export interface ReloadTriggersOptions extends Omit<ConfigReloaderOptions, "gateway" | "onResult"> {
  readonly gateway: ReloadTarget & { readonly metrics?: { recordReload(result: "success" | "failure"): void } };
  /** Also reload when the file changes (`serve --watch`). */
  readonly watch: boolean;
}

/**
 * Reloads on SIGHUP and, with `watch`, on changes of the file (debounced); counts reloads in the
 * gateway's metrics. Returns a function that stops both.
 *
 * @example
 * const stopReloading = startReloadTriggers({ file, env, gateway, logger, userAgent: USER_AGENT, watch: true });
 */
export function startReloadTriggers(options: ReloadTriggersOptions): () => void {
  const metrics = options.gateway.metrics;
  const reloader = createConfigReloader({
    ...options,
    ...(metrics ? { onResult: (result) => metrics.recordReload(result) } : {}),
  });
  const stopSignal = onReloadSignal(() => void reloader.reload("SIGHUP"));
  const stopWatch = options.watch
    ? watchFile(options.file, () => void reloader.reload("watch"), {
        onError: (error) =>
          options.logger.warn("config file watch failed; SIGHUP still reloads", {
            config: options.file,
            error: error.message,
          }),
      })
    : () => {};
  return () => {
    stopSignal();
    stopWatch();
  };
}
