/**
 * `bun bench/poll.ts [--messages N] [--store sqlite|postgres] [--order group|entity]`: how fast the compiled
 * binary drains epilot's Pollable Outbound queue, loopback only. The local Integration Toolkit stand-in
 * (test/support/integration-toolkit.ts) holds N messages; the gateway leases them 100 at a time, stores,
 * acknowledges, and delivers them to a bare HTTP server. Prints the time until every message was
 * acknowledged (lease + store + ack) and until every one was delivered, with the order key of the route:
 * `group` (epilot's "0": one delivery at a time) or `entity` (100 entities, concurrency 8).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawnGateway, tempDir, waitFor } from "../test/support/gateway.ts";
import { startIntegrationToolkit } from "../test/support/integration-toolkit.ts";
import { testPostgres } from "../test/support/postgres.ts";
import { startRecordingServer } from "../test/support/recording-server.ts";

const args = process.argv.slice(2);
const option = (name: string, fallback: string) => {
  const index = args.indexOf(`--${name}`);
  return index >= 0 ? (args[index + 1] ?? fallback) : fallback;
};
const messages = Number(option("messages", "2000"));
const storeKind = option("store", "sqlite");
const order = option("order", "group");

const toolkit = await startIntegrationToolkit({ visibilityTimeoutMs: 300_000 });
const legacy = await startRecordingServer();
const dir = tempDir();
const store =
  storeKind === "postgres"
    ? `store: { url: "${await (await testPostgres()).createDatabase("bench")}", encryption_key: "${Buffer.alloc(32, 1).toString("base64")}" }`
    : "store: { path: ./store.db }";
writeFileSync(
  join(dir, "config.yaml"),
  `
${store}
log: { level: info }
poll:
  - { name: feed, integration_id: ${toolkit.integrationId}, token: ${toolkit.consumerToken}, api_url: "${toolkit.url}", interval: 200ms }
routes:
  - name: contracts
    match: { source: feed }
    transform: '{ "contract": payload.contract._id, "n": payload.n }'
    target: { type: http, url: "${legacy.url}/contracts" }
    delivery: { concurrency: 8${order === "entity" ? ", order_key: payload.contract._id" : ""} }
`,
);
toolkit.enqueue(Array.from({ length: messages }, (_, n) => ({ payload: { contract: { _id: `c-${n % 100}` }, n } })));
const gateway = await spawnGateway(["--config", "config.yaml"], { cwd: dir });
const started = performance.now();
try {
  await waitFor(() => toolkit.acked.length === messages, 600_000, "every message acknowledged");
  const acked = performance.now() - started;
  await waitFor(() => legacy.requests.length >= messages, 600_000, "every message delivered");
  const delivered = performance.now() - started;
  const rate = (ms: number) => Math.round(messages / (ms / 1000));
  console.log(
    JSON.stringify({
      messages,
      store: storeKind,
      order,
      acknowledged_ms: Math.round(acked),
      acknowledged_per_s: rate(acked),
      delivered_ms: Math.round(delivered),
      delivered_per_s: rate(delivered),
      polls: toolkit.polls.length,
    }),
  );
} finally {
  await gateway.stop();
  await legacy.close();
  await toolkit.close();
}
process.exit(0);
