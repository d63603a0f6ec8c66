import { loadConfigFile } from "../config/load.ts";
import type { RouteConfig } from "../config/schema.ts";
import type { CompiledConfig } from "../gateway/compile.ts";
import { compileConfig } from "../gateway/compile.ts";
import { redactUrl } from "../kit/urls.ts";
import { silentLogger } from "../log/logger.ts";
import type { TargetDescription } from "../targets/describe.ts";
import { reportConfigError } from "./report-config-error.ts";

/**
 * `actiongate routes`: one line per route of a config, in the order `POST /actions` tries them:
 * its name, when it matches, where it delivers (credentials in URLs hidden), how it gets there
 * (auth, CSRF, rate limit, proxy; secrets never shown) and how it is delivered. The config is
 * compiled as `serve` would (a WSDL's address is the one shown), but nothing is sent or fetched.
 * Exit 0, or 1 with the config's problems.
 *
 * @example
 * await routesCommand("config.yaml", process.env);
 * // ROUTE         MATCH                            TARGET                                      OUTBOUND                          DELIVERY
 * // erp-contract  component_id=erp-contract-sync   http POST http://erp.internal:8081/api/...   auth=basic user=svc, rate 5/1s    sync
 */
export async function routesCommand(
  configFile: string,
  env: Readonly<Record<string, string | undefined>>,
  write: (text: string) => void = (text) => process.stdout.write(text),
): Promise<number> {
  const compiled = reportConfigError(() =>
    compileConfig(loadConfigFile(configFile, env), { logger: silentLogger, userAgent: "actiongate" }),
  );
  if (!compiled) return 1;
  try {
    write(formatRouteTable(compiled.source.routes, describeTargets(compiled)));
  } finally {
    await compiled.close();
  }
  return 0;
}

function describeTargets(compiled: CompiledConfig): Map<string, TargetDescription> {
  return new Map(compiled.routes.map((route) => [route.name, route.target.describe()]));
}

/** The table `routes` prints: a header row, then one row per route, columns padded to line up. */
export function formatRouteTable(
  routes: readonly RouteConfig[],
  targets: ReadonlyMap<string, TargetDescription>,
): string {
  const rows = [
    ["ROUTE", "MATCH", "TARGET", "OUTBOUND", "DELIVERY"],
    ...routes.map((route) => {
      const target = targets.get(route.name);
      return [
        route.name,
        describeMatch(route),
        target ? describeTarget(target) : route.target.type,
        target ? describeOutbound(target) : "-",
        describeDelivery(route),
      ];
    }),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return `${rows
    .map((row) =>
      row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!))).join("  "),
    )
    .join("\n")}\n`;
}

function describeMatch(route: RouteConfig): string {
  if (!route.match) return `only POST /actions/${route.name}`;
  return Object.entries(route.match)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => `${key}=${Array.isArray(value) ? value.join("|") : String(value)}`)
    .join(" ");
}

function describeTarget(target: TargetDescription): string {
  if (target.type === "soap") return `soap ${target.details?.operation ?? ""} ${target.url}`.replace(/\s+/g, " ");
  return `${target.type} ${target.method} ${target.url}`;
}

/**
 * How the target's calls leave: `auth=oauth2_client_credentials client_id=gw`, `csrf`, `rate 10/1s
 * (wait 5s)`, `proxy http://proxy:3128 user gw`; `-` when none. Secrets are never part of a description.
 */
export function describeOutbound(target: TargetDescription): string {
  const parts: string[] = [];
  if (target.auth) {
    const who =
      typeof target.auth.username === "string"
        ? ` user=${target.auth.username}`
        : typeof target.auth.client_id === "string"
          ? ` client_id=${target.auth.client_id}`
          : "";
    parts.push(`auth=${target.auth.type}${who}`);
  }
  if (target.csrf) parts.push(`csrf ${target.csrf.header}`);
  if (target.rate_limit)
    parts.push(`rate ${target.rate_limit.requests}/${target.rate_limit.per} (wait ${target.rate_limit.max_wait})`);
  if (target.proxy) {
    const user = target.proxy.username !== undefined ? ` user=${target.proxy.username}` : "";
    const direct = target.proxy.no_proxy.length > 0 ? ` no_proxy=${target.proxy.no_proxy.join("|")}` : "";
    parts.push(`proxy ${target.proxy.url}${user}${direct}`);
  }
  return parts.length > 0 ? parts.join(", ") : "-";
}

function describeDelivery(route: RouteConfig): string {
  return route.delivery.mode === "async" ? `async (max ${route.delivery.max_attempts} attempts)` : "sync";
}

// Kept here too: callers of the routes command's module found it here first.
export { redactUrl };
