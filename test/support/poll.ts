import { join } from "node:path";
import { loadConfigText } from "../../src/config/load.ts";
import type { Route } from "../../src/delivery/route.ts";
import { compileConfig } from "../../src/gateway/compile.ts";
import { createLogger, type Logger } from "../../src/log/logger.ts";
import type { PollSourceConfig } from "../../src/poll/schema.ts";
import { tempDir } from "./gateway.ts";
import type { IntegrationToolkit } from "./integration-toolkit.ts";

/** The `poll:` entry (as YAML flow mapping keys) that polls the stand-in, named `feed`. */
export function integrationToolkitPollConfig(
  standIn: IntegrationToolkit,
  overrides: Record<string, string | number> = {},
): Record<string, string | number> {
  return {
    name: "feed",
    integration_id: standIn.integrationId,
    api_url: standIn.url,
    token: standIn.consumerToken,
    interval: "200ms",
    timeout: "2s",
    ...overrides,
  };
}

const DEFAULT_ROUTES = `
  - name: contracts
    match: { source: feed }
    target: { type: http, url: "http://127.0.0.1:9/contracts" }`;

export interface PollFixture {
  readonly source: PollSourceConfig;
  readonly routes: readonly Route[];
  readonly logger: Logger;
  logs(): Record<string, any>[];
  logText(): string;
  close(): Promise<void>;
}

/**
 * A config with one poll entry and `routes` (YAML list items), loaded and compiled as the gateway
 * does: the poll entry as the schema gives it, and the compiled routes, with a logger that keeps
 * every line.
 *
 * @example
 * const fixture = pollFixture(integrationToolkitPollConfig(standIn), routesYaml);
 */
export function pollFixture(poll: Record<string, string | number>, routes: string = DEFAULT_ROUTES): PollFixture {
  const dir = tempDir();
  const yaml = `
store: { path: store.db }
poll:
  - ${JSON.stringify(poll)}
routes:${routes}
`;
  const lines: string[] = [];
  const logger = createLogger({ level: "debug", sink: (line) => lines.push(line) });
  const compiled = compileConfig(loadConfigText(join(dir, "config.yaml"), yaml, {}), {
    logger,
    userAgent: "actiongate/test",
  });
  const source = compiled.source.poll?.[0];
  if (!source) throw new Error("the fixture has no poll entry");
  return {
    source,
    routes: compiled.routes,
    logger,
    logs: () => lines.map((line) => JSON.parse(line) as Record<string, any>),
    logText: () => lines.join("\n"),
    close: () => compiled.close(),
  };
}
