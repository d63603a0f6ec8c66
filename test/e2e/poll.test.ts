import { afterEach, describe, expect, test } from "bun:test";
import { connect } from "node:net";
import { startCrmServer } from "../soap/crm-server.ts";
import { type GatewayProcess, spawnGateway, tempDir, waitFor } from "../support/gateway.ts";
import { type IntegrationToolkit, type RecordedSpan, startIntegrationToolkit } from "../support/integration-toolkit.ts";
import { testPostgres } from "../support/postgres.ts";
import {
  closedPort,
  type RecordedRequest,
  type RecordingServer,
  startRecordingServer,
} from "../support/recording-server.ts";

/**
 * epilot's Pollable Outbound through the compiled binary, against a local stand-in of epilot's
 * Integration Toolkit API that enforces leases, one batch in flight per stream and prefix-contiguous
 * acks: a gateway with no open port leases a feed, stores it, acknowledges it, delivers it in order
 * to an HTTP and a SOAP target, survives kill -9 without loss or a second stored copy, and reports
 * each outcome to the stand-in's monitoring endpoint.
 */

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
});

interface Rig {
  toolkit: IntegrationToolkit;
  legacy: RecordingServer;
  dir: string;
}

async function rig(visibilityTimeoutMs = 1_500): Promise<Rig> {
  const toolkit = await startIntegrationToolkit({ visibilityTimeoutMs });
  const legacy = await startRecordingServer();
  cleanups.push(
    () => toolkit.close(),
    () => legacy.close(),
  );
  return { toolkit, legacy, dir: tempDir() };
}

/** The config of these tests: one poll source, routes for contracts (HTTP) and whatever `routes` adds. */
function config(
  { toolkit, legacy }: Rig,
  options: { routes?: string; contracts?: string; store?: string; publicPort?: number; monitoring?: boolean } = {},
): string {
  return `
server: { host: 127.0.0.1, port: ${options.publicPort ?? 0}, shutdown_timeout: 2s }
admin: { host: 127.0.0.1, port: 0 }
${options.store ?? "store: { path: ./data/actiongate.db, synchronous: normal, lease: 5s }"}
epilot:
  timeout: 2s
${
  options.monitoring === false
    ? ""
    : `  monitoring:
    integration_id: ${toolkit.integrationId}
    token: \${EPILOT_MONITORING_TOKEN}
    use_case_slug: erp_sync
    api_url: ${toolkit.url}
    timeout: 1s`
}
poll:
  - name: feed
    integration_id: ${toolkit.integrationId}
    token: \${EPILOT_CONSUMER_TOKEN}
    api_url: ${toolkit.url}
    interval: 200ms
    timeout: 1s
routes:
  - name: contracts
    match: { source: feed, event_name: contract.updated }
    transform: '{ "contract": payload.contract.contract_number, "entity": payload.contract._id, "n": payload.n }'
    target: { type: http, url: "${legacy.url}/api/contracts", timeout: 2s }
    delivery:
      max_attempts: 50
      backoff: { initial: 50ms, max: 200ms }
      concurrency: 4
${options.contracts ?? ""}${options.routes ?? ""}`;
}

async function start(setup: Rig, yaml: string, token = setup.toolkit.consumerToken): Promise<GatewayProcess> {
  const { writeFileSync } = await import("node:fs");
  writeFileSync(`${setup.dir}/config.yaml`, yaml);
  const gateway = await spawnGateway(["--config", "config.yaml"], {
    cwd: setup.dir,
    env: { EPILOT_CONSUMER_TOKEN: token, EPILOT_MONITORING_TOKEN: setup.toolkit.monitoringToken },
  });
  cleanups.push(() => gateway.stop("SIGKILL"));
  return gateway;
}

function contract(n: number, entity = `c-${n}`) {
  return { event_name: "contract.updated", payload: { contract: { _id: entity, contract_number: `K-${n}` }, n } };
}

const admin = (gateway: GatewayProcess, path: string) => fetch(`http://127.0.0.1:${gateway.adminPort}${path}`);

/** One sample of a metric from /metrics (0 when absent). */
async function metric(gateway: GatewayProcess, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await admin(gateway, "/metrics")).text();
  const wanted = Object.entries(labels).map(([key, value]) => `${key}="${value}"`);
  const line = text
    .split("\n")
    .find((row) =>
      row.startsWith(`${name}{`) || row.startsWith(`${name} `) ? wanted.every((label) => row.includes(label)) : false,
    );
  return line ? Number(line.split(" ").at(-1)) : 0;
}

/** Deliveries the legacy system received, by the n they carry. */
const received = (legacy: RecordingServer, path = "/api/contracts") =>
  legacy.requests.filter((request) => request.url === path && request.json);

const ns = (requests: RecordedRequest[]) => requests.map((request) => request.json.n as number);

async function noListenerOn(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", () => resolve(true));
  });
}

describe("Pollable Outbound (compiled binary)", () => {
  test("no open port: a feed goes to an HTTP and a SOAP target in order, each once, and monitoring hears each outcome", async () => {
    const setup = await rig();
    const crm = await startCrmServer();
    cleanups.push(() => crm.close());
    const publicPort = await closedPort();
    const gateway = await start(
      setup,
      config(setup, {
        publicPort,
        routes: `
  - name: customers
    match: { source: feed, event_name: customer.updated }
    use_case_slug: customer_sync
    transform: |
      { "CustomerNumber": payload.customer.number, "Name": payload.customer.name,
        "Address": { "Street": "Hauptstraße 5", "PostalCode": "50667", "City": "Köln" } }
    target:
      type: soap
      url: ${crm.base}/crm/soap11
      version: "1.1"
      operation: CreateCustomer
      namespace: urn:example:crm
      soap_action: urn:example:crm/CreateCustomer
      timeout: 2s
`,
      }),
    );
    expect(gateway.port).toBe(0);
    expect(gateway.logs().find((line) => line.msg === "running without a public listener")).toMatchObject({
      poll: ["feed"],
    });
    expect(await noListenerOn(publicPort)).toBe(true);

    const events = Array.from({ length: 120 }, (_, n) =>
      n % 3 === 2
        ? { event_name: "customer.updated", payload: { customer: { number: `C-${n}`, name: `Customer ${n}` }, n } }
        : contract(n),
    );
    const ids = setup.toolkit.enqueue(events);
    await waitFor(() => setup.toolkit.acked.length === 120, 20_000, "every message acknowledged");
    await waitFor(() => received(setup.legacy).length === 80 && crm.calls.length === 40, 20_000, "every delivery");
    expect(setup.toolkit.acked).toEqual(ids);

    // In order, each once (the group orders the whole stream), the event id as Idempotency-Key.
    const contracts = events.flatMap((event, n) => (event.event_name === "contract.updated" ? [n] : []));
    expect(ns(received(setup.legacy))).toEqual(contracts);
    const pending = setup.toolkit.pending();
    expect(pending).toEqual([]);
    expect(received(setup.legacy).map((request) => request.headers["idempotency-key"])).toEqual(
      contracts.map((n) => `evt_${String(n + 1).padStart(6, "0")}`),
    );
    expect(crm.calls.map((call) => call.args.CustomerNumber)).toEqual(
      events.flatMap((event, n) => (event.event_name === "customer.updated" ? [`C-${n}`] : [])),
    );
    expect(setup.toolkit.maxPollsInFlight()).toBe(1);

    // One trace per event: stored (info), delivered (success), each under its route's use case.
    await waitFor(
      () => setup.toolkit.spans.filter((span) => span.level === "success").length === 120,
      10_000,
      "the spans",
    );
    const byEvent = new Map<string, RecordedSpan[]>();
    for (const span of setup.toolkit.spans)
      byEvent.set(span.correlation_id, [...(byEvent.get(span.correlation_id) ?? []), span]);
    expect(byEvent.size).toBe(120);
    const first = byEvent.get("evt_000001")!;
    expect(first.map((span) => span.level)).toEqual(["info", "success"]);
    expect(first[1]).toMatchObject({
      use_case_slug: "erp_sync",
      detail: {
        route: "contracts",
        stage: "deliver",
        attempt: 1,
        outcome: "delivered",
        target_status: 200,
        source: "feed",
      },
    });
    expect(byEvent.get("evt_000003")![1]).toMatchObject({
      use_case_slug: "customer_sync",
      detail: { route: "customers" },
    });
    expect(setup.toolkit.monitoringRequests.every((count) => count <= 100)).toBe(true);
    // Nothing of a payload in what left for epilot.
    const sent = JSON.stringify(setup.toolkit.spans);
    expect(sent).not.toContain("K-0");
    expect(sent).not.toContain("Customer 2");

    const ready = await admin(gateway, "/readyz");
    expect(ready.status).toBe(200);
    expect(((await ready.json()) as any).checks.poll).toMatchObject({
      ok: true,
      sources: { feed: { ok: true, state: "polling", consecutive_failures: 0 } },
    });
    expect(await metric(gateway, "actiongate_poll_messages_total", { source: "feed", result: "stored" })).toBe(120);
    expect(await metric(gateway, "actiongate_poll_acks_total", { source: "feed", result: "accepted" })).toBe(120);
    expect(await gateway.stop()).toBe(0);
  }, 60_000);

  test("kill -9 between storing and the ack: after a restart the batch comes again, is acknowledged, and nothing is stored or sent twice", async () => {
    const setup = await rig(1_500);
    const yaml = config(setup);
    let gateway = await start(setup, yaml);
    setup.toolkit.holdAcks = true;
    const ids = setup.toolkit.enqueue(Array.from({ length: 30 }, (_, n) => contract(n)));
    await waitFor(() => received(setup.legacy).length === 30, 15_000, "the batch delivered while its ack hangs");
    await waitFor(
      async () => (await metric(gateway, "actiongate_outbox_depth", { route: "contracts" })) === 0,
      5_000,
      "the outbox empty",
    );
    expect(setup.toolkit.acked).toEqual([]);
    gateway.child.kill("SIGKILL");
    await gateway.exited;
    setup.toolkit.holdAcks = false;

    gateway = await start(setup, yaml);
    await waitFor(() => setup.toolkit.acked.length === 30, 15_000, "acknowledged after the restart");
    expect(setup.toolkit.acked).toEqual(ids);
    expect(ids.every((id) => setup.toolkit.leasesOf(id) === 2)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 500));
    // Each event once at the target: the second delivery of the batch was recognised as stored.
    expect(ns(received(setup.legacy))).toEqual(Array.from({ length: 30 }, (_, n) => n));
    expect(await metric(gateway, "actiongate_poll_messages_total", { source: "feed", result: "duplicate" })).toBe(30);
    expect(await metric(gateway, "actiongate_poll_messages_total", { source: "feed", result: "stored" })).toBe(0);
  }, 60_000);

  test("kill -9 during a delivery: after a restart every event arrives, in order; only the one in flight may come twice, with the same Idempotency-Key", async () => {
    const setup = await rig();
    const yaml = config(setup);
    setup.legacy.respondWith({ delayMs: 1_500 });
    let gateway = await start(setup, yaml);
    const ids = setup.toolkit.enqueue(Array.from({ length: 10 }, (_, n) => contract(n)));
    await waitFor(() => setup.toolkit.acked.length === 10, 10_000, "stored and acknowledged");
    await waitFor(() => received(setup.legacy).length === 1, 10_000, "the first delivery in flight");
    gateway.child.kill("SIGKILL");
    await gateway.exited;
    setup.legacy.respondWith({});

    gateway = await start(setup, yaml);
    await waitFor(() => new Set(ns(received(setup.legacy))).size === 10, 15_000, "every event delivered");
    const arrivals = ns(received(setup.legacy));
    // The first arrival of each is in order; the event in flight at the kill came again.
    expect([...new Set(arrivals)]).toEqual(Array.from({ length: 10 }, (_, n) => n));
    expect(arrivals.slice(0, 2)).toEqual([0, 0]);
    expect(arrivals.length).toBe(11);
    const keys = received(setup.legacy).map((request) => request.headers["idempotency-key"]);
    expect(keys[0]).toBe(keys[1]);
    expect(setup.toolkit.acked).toEqual(ids);
    expect(await metric(gateway, "actiongate_poll_messages_total", { source: "feed", result: "stored" })).toBe(0);
  }, 60_000);

  test("a target down for one entity: that entity's events wait in order, the others flow", async () => {
    const setup = await rig();
    let down = true;
    setup.legacy.respondWith((request) =>
      down && request.json?.entity === "A" ? { status: 503, body: { error: "ERP locked" } } : {},
    );
    const gateway = await start(setup, config(setup, { contracts: "      order_key: payload.contract._id\n" }));
    const entities = ["A", "B", "A", "B", "A", "B", "C", "A"];
    setup.toolkit.enqueue(entities.map((entity, n) => contract(n, entity)));
    const ok = (entity: string) =>
      received(setup.legacy).filter((request) => request.json.entity === entity && request.json.n !== undefined);
    await waitFor(() => ok("B").length === 3 && ok("C").length === 1, 10_000, "B and C delivered");
    await new Promise((resolve) => setTimeout(resolve, 500));
    // While A's head fails, no later A event was tried.
    expect(new Set(ns(ok("A")))).toEqual(new Set([0]));
    expect(ns(ok("B"))).toEqual([1, 3, 5]);
    down = false;
    await waitFor(() => new Set(ns(ok("A"))).size === 4, 10_000, "A delivered once the target is back");
    expect([...new Set(ns(ok("A")))]).toEqual([0, 2, 4, 7]);
    expect(await metric(gateway, "actiongate_dead_letters", { route: "contracts" })).toBe(0);
  }, 60_000);

  test("a message no route takes is acknowledged and counted as unrouted, never retried", async () => {
    const setup = await rig();
    const gateway = await start(setup, config(setup));
    const ids = setup.toolkit.enqueue([contract(0), { event_name: "invoice.created", payload: { n: 1 } }, contract(2)]);
    await waitFor(() => setup.toolkit.acked.length === 3, 10_000, "acknowledged");
    await waitFor(() => received(setup.legacy).length === 2, 10_000, "delivered");
    expect(setup.toolkit.acked).toEqual(ids);
    expect(ns(received(setup.legacy))).toEqual([0, 2]);
    expect(setup.toolkit.leasesOf(ids[1]!)).toBe(1);
    expect(await metric(gateway, "actiongate_poll_messages_total", { source: "feed", result: "unrouted" })).toBe(1);
  }, 30_000);

  test("a 401 from the poll API shows in /readyz and the log, without a crash loop; a fixed token polls again", async () => {
    const setup = await rig();
    const right = setup.toolkit.consumerToken;
    setup.toolkit.consumerToken = "not-the-gateway-s-token";
    const gateway = await start(setup, config(setup), right);
    setup.toolkit.enqueue([contract(0)]);
    await waitFor(async () => (await admin(gateway, "/readyz")).status === 503, 5_000, "not ready");
    const report = (await (await admin(gateway, "/readyz")).json()) as any;
    expect(report.checks.poll.ok).toBe(false);
    expect(report.checks.poll.sources.feed).toMatchObject({ ok: false, state: "polling" });
    expect(report.checks.poll.sources.feed.config_problem).toContain("HTTP 401");
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(gateway.child.exitCode).toBeNull();
    // Polled again after the interval, doubling: a handful in 2.5 s, not a storm.
    expect(setup.toolkit.polls.length).toBeLessThanOrEqual(6);
    expect(gateway.logs().filter((line) => line.msg.startsWith("poll source refused by epilot"))).toHaveLength(1);
    expect(gateway.stdout()).not.toContain(right);

    setup.toolkit.consumerToken = right;
    await waitFor(() => setup.toolkit.acked.length === 1, 10_000, "polling again");
    await waitFor(async () => (await admin(gateway, "/readyz")).status === 200, 5_000, "ready again");
  }, 30_000);

  test("monitoring spans: success, warning for a retried attempt, error for a dead letter; never payload content", async () => {
    const setup = await rig();
    let firstOfOne = true;
    setup.legacy.respondWith((request) => {
      if (request.json?.n === 1 && firstOfOne) {
        firstOfOne = false;
        return { status: 503 };
      }
      return request.json?.n === 2 ? { status: 500, body: { error: "no" } } : {};
    });
    await start(
      setup,
      config(setup, {
        contracts: "      order_key: payload.contract._id\n",
      }).replace("max_attempts: 50", "max_attempts: 2"),
    );
    setup.toolkit.enqueue([contract(0), contract(1), contract(2)]);
    const levelsOf = (id: string) =>
      setup.toolkit.spans.filter((span) => span.correlation_id === id).map((span) => span.level);
    await waitFor(
      () => levelsOf("evt_000002").includes("success") && levelsOf("evt_000003").includes("error"),
      15_000,
      "the outcomes reported",
    );
    expect(levelsOf("evt_000001")).toEqual(["info", "success"]);
    expect(levelsOf("evt_000002")).toEqual(["info", "warning", "success"]);
    expect(levelsOf("evt_000003")).toEqual(["info", "warning", "error"]);
    const spansOf = (id: string) => setup.toolkit.spans.filter((span) => span.correlation_id === id);
    expect(spansOf("evt_000002")[1]).toMatchObject({
      detail: { route: "contracts", attempt: 1, outcome: "target_failed", target_status: 503 },
    });
    expect(spansOf("evt_000003")[2]).toMatchObject({
      level: "error",
      detail: { route: "contracts", attempt: 2, target_status: 500 },
    });
    expect(spansOf("evt_000003")[2]!.message).toContain("dead letters");
    expect(JSON.stringify(setup.toolkit.spans)).not.toContain("K-");
  }, 30_000);

  test("a monitoring API that is down changes nothing of the deliveries", async () => {
    const setup = await rig();
    setup.toolkit.monitoringFailure = "destroy";
    const gateway = await start(setup, config(setup));
    const started = Date.now();
    setup.toolkit.enqueue(Array.from({ length: 20 }, (_, n) => contract(n)));
    await waitFor(() => received(setup.legacy).length === 20, 10_000, "every delivery");
    expect(Date.now() - started).toBeLessThan(8_000);
    expect(ns(received(setup.legacy))).toEqual(Array.from({ length: 20 }, (_, n) => n));
    expect(setup.toolkit.spans).toEqual([]);
    setup.toolkit.monitoringFailure = undefined;
    setup.toolkit.enqueue([contract(20)]);
    await waitFor(
      () => setup.toolkit.spans.some((span) => span.correlation_id === "evt_000021" && span.level === "success"),
      15_000,
      "spans again once monitoring is back",
    );
    expect(await metric(gateway, "actiongate_monitoring_spans_total", { result: "sent" })).toBeGreaterThan(0);
  }, 40_000);
});

describe("Pollable Outbound on PostgreSQL with two replicas (compiled binaries)", () => {
  test("one replica polls; per entity one delivery at a time and in order; kill -9 of the poller hands over", async () => {
    const setup = await rig(1_500);
    const storeUrl = await (await testPostgres()).createDatabase("poll");
    const inFlight = new Map<string, number>();
    let overlap = 0;
    setup.legacy.respondWith(async (request) => {
      const entity = request.json?.entity;
      inFlight.set(entity, (inFlight.get(entity) ?? 0) + 1);
      if (inFlight.get(entity)! > 1) overlap++;
      await new Promise((resolve) => setTimeout(resolve, 15));
      inFlight.set(entity, inFlight.get(entity)! - 1);
      return {};
    });
    const yaml = config(setup, {
      store: `store: { url: "${storeUrl}", encryption_key: "${Buffer.alloc(32, 7).toString("base64")}", lease: 3s }`,
      contracts: "      order_key: payload.contract._id\n",
      monitoring: false,
    });
    const first = await start(setup, yaml);
    await waitFor(() => first.logs().some((line) => line.msg === "poll source started"), 5_000, "the first polls");
    const second = await start(setup, yaml);
    const entities = ["A", "B", "C"];
    setup.toolkit.enqueue(Array.from({ length: 60 }, (_, n) => contract(n, entities[n % 3])));
    await waitFor(() => new Set(ns(received(setup.legacy))).size === 60, 20_000, "every event delivered");

    const poller = first.logs().some((line) => line.msg === "poll source on standby: another replica polls it")
      ? second
      : first;
    const standby = poller === first ? second : first;
    expect(standby.logs().some((line) => line.msg === "poll source on standby: another replica polls it")).toBe(true);
    poller.child.kill("SIGKILL");
    await poller.exited;
    setup.toolkit.enqueue(Array.from({ length: 30 }, (_, n) => contract(60 + n, entities[n % 3])));
    await waitFor(() => new Set(ns(received(setup.legacy))).size === 90, 30_000, "the other replica takes over");

    expect(overlap).toBe(0);
    for (const entity of entities) {
      const mine = ns(received(setup.legacy).filter((request) => request.json.entity === entity));
      expect([...new Set(mine)]).toEqual(
        Array.from({ length: 90 }, (_, n) => n).filter((n) => n % 3 === entities.indexOf(entity)),
      );
    }
    expect(setup.toolkit.maxPollsInFlight()).toBe(1);
    expect(setup.toolkit.pending()).toEqual([]);
  }, 90_000);
});
