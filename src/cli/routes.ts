import { loadConfigFile } from "../config/load.ts";
import type { RouteConfig } from "../config/schema.ts";
import { redactUrl } from "../kit/urls.ts";
import { reportConfigError } from "./report-config-error.ts";

/**
 * `actiongate routes`: one line per route of a config, in the order `POST /actions` tries them:
 * its name, when it matches, where it delivers (credentials in URLs hidden) and how.
 * Exit 0, or 1 with the config's problems.
 *
 * @example
 * routesCommand("config.yaml", process.env);
 * // ROUTE         MATCH                            TARGET                                      DELIVERY
 * // erp-contract  component_id=erp-contract-sync   http POST http://erp.internal:8081/api/...   sync
 */
export function routesCommand(
  configFile: string,
  env: Readonly<Record<string, string | undefined>>,
  write: (text: string) => void = (text) => process.stdout.write(text),
): number {
  const loaded = reportConfigError(() => loadConfigFile(configFile, env));
  if (!loaded) return 1;
  write(formatRouteTable(loaded.config.routes));
  return 0;
}

/** The table `routes` prints: a header row, then one row per route, columns padded to line up. */
export function formatRouteTable(routes: readonly RouteConfig[]): string {
  const rows = [
    ["ROUTE", "MATCH", "TARGET", "DELIVERY"],
    ...routes.map((route) => [route.name, describeMatch(route), describeTarget(route), describeDelivery(route)]),
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

function describeTarget(route: RouteConfig): string {
  const target = route.target;
  if (target.type === "http") return `http ${target.method} ${redactUrl(target.url)}`;
  const where = target.url ? redactUrl(target.url) : target.wsdl ? `(address from ${target.wsdl})` : "(no url)";
  return `soap ${target.operation ?? ""} ${where}`.replace(/\s+/g, " ");
}

function describeDelivery(route: RouteConfig): string {
  return route.delivery.mode === "async" ? `async (max ${route.delivery.max_attempts} attempts)` : "sync";
}

// Kept here too: callers of the routes command's module found it here first.
export { redactUrl };
