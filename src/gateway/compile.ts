import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { LoadedConfig } from "../config/load.ts";
import type { GatewayConfig, RouteConfig } from "../config/schema.ts";
import { CircuitBreaker } from "../delivery/circuit-breaker.ts";
import type { Route } from "../delivery/route.ts";
import { createEpilotCallbacks } from "../epilot/callbacks.ts";
import type { EpilotCallbacks } from "../epilot/types.ts";
import { ConfigError, type ConfigProblem, InvalidConfigValue, withRouteNames } from "../kit/config-errors.ts";
import type { Logger } from "../log/logger.ts";
import type { ParsedCall } from "../payload/parse.ts";
import { compileMatch, compileMessageMatch } from "../routing/match.ts";
import type { ServerTls } from "../runtime/serve.ts";
import { loadServerTls } from "../server/server-tls.ts";
import { createTarget } from "../targets/registry.ts";
import type { Target } from "../targets/types.ts";
import { type CompiledExpression, compileExpression, ExpressionSyntaxError } from "../transform/expression.ts";
import { parseStripPath } from "../transform/strip.ts";
import { type RemoteKeySet, remoteKeySet, trustedKeys } from "../verify/key-source.ts";
import { KeyFormatError, parseHmacSecret, parsePublicKey } from "../verify/keys.ts";
import { EPILOT_PUBLIC_KEY_URLS, keyUrlsOf } from "../verify/schema.ts";
import type { PublicKeySource } from "../verify/signature.ts";

/** Everything the server needs, built from a checked config: keys imported, expressions compiled, targets created. */
export interface CompiledConfig {
  readonly source: GatewayConfig;
  /** Folder of the config file: relative paths in it (store, key file, WSDL) resolve against it. */
  readonly configDir: string;
  readonly routes: readonly Route[];
  /** `server.tls` read and checked: the listener serves HTTPS with it. */
  readonly serverTls?: ServerTls;
  readonly verification: {
    /** Undefined when no Ed25519 key is trusted (HMAC secrets only). */
    readonly keySource?: PublicKeySource | undefined;
    /** Set when keys are fetched from URLs; the server starts and stops them. */
    readonly remoteKeySource?: RemoteKeySet;
    readonly hmacSecrets: readonly Buffer[];
    readonly toleranceMs: number;
    /** What is trusted, in words, for `validate` and the start-up log. */
    readonly trusted: TrustedKeys;
  };
  /** The calls back to epilot (resume, write-back), bound to this config's `epilot` section. */
  readonly epilot: EpilotCallbacks;
  /** Closes every target's connections. */
  close(): Promise<void>;
}

/** What a compiled config trusts, for people: `validate` prints it, `serve` logs it. */
export interface TrustedKeys {
  /** The config keys holding trusted Ed25519 keys: `verification.public_key`, `verification.public_key_file (./key.pem)`. */
  readonly configuredKeys: readonly string[];
  /** The URLs Ed25519 keys are fetched from. */
  readonly keyUrls: readonly string[];
  /** True when the URLs are epilot's default (no key configured at all). */
  readonly epilotKeysByDefault: boolean;
  /** True when one of epilot's published URLs is among them: calls from epilot can verify. */
  readonly trustsEpilot: boolean;
  readonly hmacSecrets: number;
}

/**
 * The trusted schemes and keys in one line: `v1a (Ed25519): verification.public_key; v1 (HMAC): 1 secret`.
 *
 * @example
 * describeTrustedKeys(compiled.verification.trusted);
 */
export function describeTrustedKeys(trusted: TrustedKeys): string {
  const ed25519 = [
    ...trusted.configuredKeys,
    ...(trusted.keyUrls.length > 0
      ? [
          `${trusted.keyUrls.length === 1 ? "the key" : "the keys"} fetched from ${trusted.keyUrls.join(" and ")}${trusted.epilotKeysByDefault ? " (epilot's, by default)" : ""}`,
        ]
      : []),
  ];
  const parts = [
    ...(ed25519.length > 0 ? [`v1a (Ed25519) with ${ed25519.join(", ")}`] : []),
    ...(trusted.hmacSecrets > 0
      ? [`v1 (HMAC) with ${trusted.hmacSecrets} secret${trusted.hmacSecrets === 1 ? "" : "s"} (verification.secrets)`]
      : []),
  ];
  const epilot = trusted.trustsEpilot ? "" : "; not epilot's key (add public_key_url: epilot for calls from epilot)";
  return `trusts ${parts.join("; ")}${epilot}`;
}

export interface CompileOptions {
  logger: Logger;
  userAgent: string;
}

/**
 * Compiles a loaded config. Every problem (a JSONata syntax error, an unreadable key file, a target
 * that cannot be built) is collected, and all are thrown together as one {@link ConfigError}.
 */
export function compileConfig(loaded: LoadedConfig, options: CompileOptions): CompiledConfig {
  const { config } = loaded;
  const configDir = dirname(resolve(loaded.file));
  const problems: ConfigProblem[] = [];
  const report = (path: readonly PropertyKey[], message: string) =>
    problems.push({ path, message, ...loaded.locate(path) });
  const attempt: Attempt = (path, build, options = {}) => {
    try {
      return build();
    } catch (error) {
      if (error instanceof InvalidConfigValue) report([...path, ...error.path], error.message);
      else if (error instanceof ExpressionSyntaxError) {
        // A whole expression's error is shown at its own line and column, inside a `|` block too.
        const source = options.expression;
        const at = source !== undefined && error.position !== undefined ? syntaxErrorIndex(error, source) : undefined;
        const located = at !== undefined ? loaded.locateInValue(path, at) : undefined;
        if (located) problems.push({ path, message: `JSONata syntax error: ${error.message}`, ...located });
        else
          report(
            path,
            `JSONata syntax error${error.position !== undefined ? ` at character ${error.position}` : ""}: ${error.message}`,
          );
      } else if (error instanceof KeyFormatError) report(path, error.message);
      else throw error;
      return undefined;
    }
  };

  const serverTls = config.server.tls && attempt(["server", "tls"], () => loadServerTls(config.server.tls!, configDir));

  const verification = config.verification;
  // Every key configured is trusted; epilot's URLs only by default, when nothing else is (schema.ts).
  const configuredKeys = [
    verification.public_key !== undefined &&
      attempt(["verification", "public_key"], () => parsePublicKey(verification.public_key!)),
    verification.public_key_file !== undefined &&
      attempt(["verification", "public_key_file"], () =>
        parsePublicKey(readKeyFile(resolve(configDir, verification.public_key_file!))),
      ),
  ].filter((key) => key !== undefined && key !== false);
  // Fetched only when some route takes custom action calls: a gateway of polled messages only
  // verifies no signature and has no reason to call epilot's key endpoint.
  const takesCalls = config.routes.some((route) => route.match?.source === undefined);
  const keyUrls = takesCalls ? keyUrlsOf(verification) : [];
  const remote =
    keyUrls.length > 0
      ? remoteKeySet(keyUrls, {
          refreshIntervalMs: verification.key_refresh_interval,
          logger: options.logger,
          proxy: config.epilot.proxy,
        })
      : undefined;
  const keySource = configuredKeys.length > 0 || remote ? trustedKeys(configuredKeys, remote) : undefined;
  const hmacSecrets = verification.secrets.flatMap(
    (secret, index) => attempt(["verification", "secrets", index], () => parseHmacSecret(secret)) ?? [],
  );

  const targets: Target[] = [];
  const routes = config.routes.flatMap((route, index) => {
    const compiled = compileRoute(route, ["routes", index], attempt, {
      configDir,
      logger: options.logger,
      userAgent: options.userAgent,
    });
    if (compiled) targets.push(compiled.target);
    return compiled ? [compiled] : [];
  });
  const epilot = createEpilotCallbacks(config.epilot, options.userAgent);
  const close = async () => {
    remote?.stop();
    await Promise.allSettled([...targets.map((target) => target.close()), epilot.close?.()]);
  };

  if (problems.length > 0) {
    void close();
    // In file order, as `validate` prints them, not in the order the compile steps ran.
    const ordered = [...problems].sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
    throw new ConfigError(
      loaded.file,
      withRouteNames(
        ordered,
        config.routes.map((route) => route.name),
      ),
    );
  }
  return {
    source: config,
    configDir,
    routes,
    ...(serverTls ? { serverTls } : {}),
    verification: {
      ...(keySource ? { keySource } : {}),
      ...(remote ? { remoteKeySource: remote } : {}),
      hmacSecrets,
      toleranceMs: verification.tolerance,
      trusted: {
        configuredKeys: [
          ...(verification.public_key !== undefined ? ["verification.public_key"] : []),
          ...(verification.public_key_file !== undefined
            ? [`verification.public_key_file (${verification.public_key_file})`]
            : []),
        ],
        keyUrls,
        epilotKeysByDefault: verification.public_key_url === undefined && keyUrls.length > 0,
        trustsEpilot: EPILOT_PUBLIC_KEY_URLS.some((url) => keyUrls.includes(url)),
        hmacSecrets: hmacSecrets.length,
      },
    },
    epilot,
    close,
  };
}

/** Runs one compile step; a config problem it throws is reported at `path` and the step gives undefined. */
type Attempt = <T>(
  path: readonly PropertyKey[],
  build: () => T,
  /** `expression`: the JSONata source being compiled, so that its syntax error can be located inside it. */
  options?: { expression?: string },
) => T | undefined;

/**
 * The character of the expression a JSONata syntax error is about. JSONata gives the offset just
 * past the offending token; the token itself, when the message names it (`got "x"`), starts earlier.
 */
function syntaxErrorIndex(error: ExpressionSyntaxError, source: string): number {
  const token = /\bgot "([^"]+)"|^The symbol "([^"]+)"|^Unknown operator: "([^"]+)"/.exec(error.message);
  const length = (token?.[1] ?? token?.[2] ?? token?.[3])?.length ?? 1;
  // "Unexpected end of expression": the last thing written, not the blank after it.
  const lastWritten = source.trimEnd().length - 1;
  return Math.max(0, Math.min((error.position ?? 1) - length, lastWritten));
}

function compileRoute(
  route: RouteConfig,
  path: PropertyKey[],
  attempt: Attempt,
  context: Parameters<typeof createTarget>[1],
): Route | undefined {
  const expression = (key: PropertyKey[], source: string | undefined): CompiledExpression | undefined | null =>
    source === undefined
      ? undefined
      : (attempt([...path, ...key], () => compileExpression(source), { expression: source }) ?? null);

  const skipWhen = expression(["skip_when"], route.skip_when);
  const skipReason = expression(["skip_reason"], route.skip_reason);
  const transform = expression(["transform"], route.transform);
  const responseTransform = expression(["response", "transform"], route.response?.transform);
  const failWhen = expression(["response", "fail_when"], route.response?.fail_when);
  const errorReason = expression(["response", "error_reason"], route.response?.error_reason);
  const writeBack = expression(["response", "write_back"], route.response?.write_back);
  const orderKey = expression(["delivery", "order_key"], route.delivery.order_key);
  const target = attempt([...path, "target"], () => createTarget(route.target, context));
  if (target && "tls" in route.target && route.target.tls?.reject_unauthorized === false) {
    context.logger.warn(
      "target TLS certificate checks are off (tls.reject_unauthorized: false); meant for test rigs only",
      { route: route.name },
    );
  }
  if (target) {
    // A forwarded header may not replace one the target sets itself (its credentials, content type,
    // action, configured headers): the caller would choose them.
    route.forward_headers.forEach((name, index) => {
      if (target.ownHeaders.includes(name.toLowerCase())) {
        attempt([...path, "forward_headers", index], () => {
          throw new InvalidConfigValue(
            `${name} is set by the route's target (its headers, credentials or protocol); a forwarded header may not replace it`,
          );
        });
      }
    });
  }
  const failed = [skipWhen, skipReason, transform, responseTransform, failWhen, errorReason, writeBack, orderKey].some(
    (compiled) => compiled === null,
  );
  if (!target || failed) {
    void target?.close();
    return undefined;
  }

  const polled = route.match?.source !== undefined;
  const strip = route.strip.map(parseStripPath);
  // The user's token and identity leave only when the route asks for them by name (a call's only).
  if (!polled && !route.forward_caller) strip.push(parseStripPath("data.trigger_event.caller"));
  const payloadMatches = route.match && !polled ? compileMatch(route.match) : undefined;
  const messageMatches = route.match && polled ? compileMessageMatch(route.match) : undefined;
  return {
    name: route.name,
    ...(payloadMatches ? { matches: (call: ParsedCall) => payloadMatches(call.payload) } : {}),
    ...(messageMatches ? { matchesMessage: messageMatches } : {}),
    shaping: {
      strip,
      ...(skipWhen ? { skipWhen } : {}),
      ...(skipReason ? { skipReason } : {}),
      ...(transform ? { transform } : {}),
    },
    forwardHeaders: route.forward_headers.map((name) => name.toLowerCase()),
    response: {
      ...(responseTransform ? { transform: responseTransform } : {}),
      ...(failWhen ? { failWhen } : {}),
      ...(errorReason ? { errorReason } : {}),
      ...(writeBack ? { writeBack } : {}),
    },
    delivery: {
      mode: route.delivery.mode,
      maxAttempts: route.delivery.max_attempts,
      backoff: { initialMs: route.delivery.backoff.initial, maxMs: route.delivery.backoff.max },
      concurrency: route.delivery.concurrency,
      ...(orderKey ? { orderKey } : {}),
    },
    breaker: new CircuitBreaker({
      failureThreshold: route.delivery.circuit_breaker.failure_threshold,
      cooldownMs: route.delivery.circuit_breaker.cooldown,
      onStateChange: (state) =>
        context.logger[state === "open" ? "warn" : "info"]("circuit breaker", { route: route.name, state }),
    }),
    target,
    targetType: route.target.type,
    ...(route.use_case_slug !== undefined ? { useCaseSlug: route.use_case_slug } : {}),
  };
}

function readKeyFile(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (error) {
    const code = (error as { code?: string }).code;
    throw new InvalidConfigValue(
      code === "ENOENT" ? `file not found: ${file}` : `cannot read ${file} (${code ?? "error"})`,
    );
  }
}
