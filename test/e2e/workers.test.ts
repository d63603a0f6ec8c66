import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { type GatewayProcess, spawnGateway, tempDir, waitFor } from "../support/gateway.ts";
import { type RecordingServer, startRecordingServer } from "../support/recording-server.ts";
import { fixturePayload, generateTestKeyPair, signedHeaders, uniqueWebhookId } from "../support/signing.ts";

/**
 * End-to-end: `server.workers: 2` through the compiled binary. A supervisor starts two worker
 * processes that share the public port (SO_REUSEPORT) and one SQLite store.
 */
const keys = generateTestKeyPair();
const payloadText = JSON.stringify(fixturePayload());

function configYaml(legacyUrl: string): string {
  return `
server: { host: 127.0.0.1, port: 0, workers: 2, shutdown_timeout: 5s }
verification:
  public_key: "${keys.whpk}"
store: { path: ./state/actiongate.db }
routes:
  - name: erp-contract
    transform: '{ "contract": data.entity.contract_number }'
    target: { type: http, url: ${legacyUrl}/api/contracts, timeout: 2s }
  - name: erp-async
    target: { type: http, url: ${legacyUrl}/api/async, timeout: 2s }
    delivery: { mode: async }
`;
}

/**
 * POSTs on a connection of its own (no keep-alive), so that the kernel picks a worker for each call,
 * as it does for separate epilot calls.
 */
function postOnNewConnection(url: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "POST", headers: { ...headers, connection: "close" }, agent: false }, (res) => {
      let body = "";
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end(payloadText);
  });
}

function childPids(parentPid: number): number[] {
  try {
    return execFileSync("ps", ["-o", "pid=", "--ppid", String(parentPid)], { encoding: "utf8" })
      .split("\n")
      .map((line) => Number(line.trim()))
      .filter((pid) => pid > 0);
  } catch {
    return []; // ps exits 1 when there is no child
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The `worker` field of the call log line for `webhookId` with `status`, from the workers' shared stdout. */
function workersThatAnswered(gateway: GatewayProcess, webhookId: string, status: number): number[] {
  return gateway
    .logs()
    .filter((line) => line.msg === "call" && line.webhook_id === webhookId && line.status === status)
    .map((line) => line.worker);
}

describe("server.workers: 2 (compiled binary)", () => {
  let legacy: RecordingServer;
  let gateway: GatewayProcess;
  let dir: string;
  const url = () => `${gateway.url}/actions/erp-contract`;
  const listeningWorkers = () => gateway.logs().filter((line) => line.msg === "listening");

  beforeAll(async () => {
    legacy = await startRecordingServer();
    dir = tempDir({ "config.yaml": configYaml(legacy.url) });
    gateway = await spawnGateway(["serve", "--config", join(dir, "config.yaml")], { cwd: dir });
    await waitFor(() => listeningWorkers().length === 2, 10_000, "both workers listening");
  });

  afterAll(async () => {
    if (gateway) await gateway.stop("SIGKILL");
    await legacy?.close();
  });

  test("a supervisor runs two worker processes on one port, each logging its index", () => {
    const listening = listeningWorkers();
    expect(listening.map((line) => line.worker).sort()).toEqual([0, 1]);
    expect(new Set(listening.map((line) => line.port))).toEqual(new Set([gateway.port]));
    const children = childPids(gateway.child.pid!);
    expect(children).toHaveLength(2);
    const started = gateway
      .logs()
      .filter((line) => line.msg === "worker started")
      .map((line) => line.pid);
    expect(children.sort()).toEqual(started.sort());
  });

  test("signed calls on separate connections are all answered 200 and forwarded, by both workers", async () => {
    const before = legacy.requests.length;
    const ids = Array.from({ length: 24 }, () => uniqueWebhookId());
    const answers = await Promise.all(
      ids.map((id) => postOnNewConnection(url(), signedHeaders(payloadText, { id, privateKey: keys.privateKey }))),
    );
    expect(answers.map((answer) => answer.status)).toEqual(ids.map(() => 200));
    expect(legacy.requests.length - before).toBe(ids.length);
    await waitFor(() => ids.every((id) => workersThatAnswered(gateway, id, 200).length === 1), 5_000, "call log lines");
    // 24 connections all hashed onto one worker would happen with probability 2^-23.
    const answeredBy = new Set(ids.flatMap((id) => workersThatAnswered(gateway, id, 200)));
    expect([...answeredBy].sort()).toEqual([0, 1]);
  });

  test("a replayed webhook-id is refused with 409 by either worker (shared SQLite replay guard)", async () => {
    const id = uniqueWebhookId();
    const headers = signedHeaders(payloadText, { id, privateKey: keys.privateKey });
    const first = await postOnNewConnection(url(), headers);
    expect(first.status).toBe(200);
    const forwarded = legacy.requests.length;
    const replays = await Promise.all(Array.from({ length: 16 }, () => postOnNewConnection(url(), headers)));
    expect(replays.map((answer) => answer.status)).toEqual(replays.map(() => 409));
    expect((JSON.parse(replays[0]!.body) as any).error_output.error_code).toBe("CUSTOM_ACTION_ERROR");
    expect(legacy.requests.length).toBe(forwarded);
    await waitFor(() => workersThatAnswered(gateway, id, 409).length === replays.length, 5_000, "replay log lines");
    const firstWorker = workersThatAnswered(gateway, id, 200)[0];
    // At least one replay landed on the worker that did not see the first call, and it refused it too.
    expect(workersThatAnswered(gateway, id, 409).some((worker) => worker !== firstWorker)).toBe(true);
  });

  test("an async call accepted by worker 1 is delivered by worker 0 at once, not at its next poll", async () => {
    // When the legacy system saw each event, by its Idempotency-Key (the webhook-id).
    const arrivedAt = new Map<string, number>();
    legacy.respondWith((request) => {
      const key = request.headers["idempotency-key"];
      if (typeof key === "string") arrivedAt.set(key, Date.now());
      return { status: 200 };
    });
    const delays: number[] = [];
    // One call at a time on its own connection, until worker 1 has accepted eight of them.
    for (let sent = 0; delays.length < 8 && sent < 80; sent++) {
      const id = uniqueWebhookId();
      const answer = await postOnNewConnection(
        `${gateway.url}/actions/erp-async`,
        signedHeaders(payloadText, { id, privateKey: keys.privateKey }),
      );
      const acceptedAt = Date.now();
      expect(answer.status).toBe(202);
      await waitFor(() => arrivedAt.has(id), 5_000, "the event delivered");
      await waitFor(() => workersThatAnswered(gateway, id, 202).length === 1, 5_000, "the call's log line");
      if (workersThatAnswered(gateway, id, 202)[0] === 1) delays.push(arrivedAt.get(id)! - acceptedAt);
    }
    expect(delays).toHaveLength(8);
    // Waiting for worker 0's 250 ms poll would average about 125 ms; the wake takes a few.
    const mean = delays.reduce((sum, delay) => sum + delay, 0) / delays.length;
    expect(mean).toBeLessThan(60);
    legacy.respondWith({ status: 200 });
  }, 30_000);

  test("SIGHUP to the supervisor reloads the config in every worker (systemctl reload)", async () => {
    const withNotes = `${configYaml(legacy.url)}  - name: crm-note
    target: { type: http, url: ${legacy.url}/api/notes, timeout: 2s }
`;
    writeFileSync(join(dir, "config.yaml"), withNotes);
    process.kill(gateway.child.pid!, "SIGHUP");
    await waitFor(
      () => gateway.logs().filter((line) => line.msg === "config reloaded").length === 2,
      10_000,
      "both workers reloaded",
    );
    const reloadedBy = gateway
      .logs()
      .filter((line) => line.msg === "config reloaded")
      .map((line) => line.worker);
    expect(reloadedBy.sort()).toEqual([0, 1]);
    const before = legacy.requests.length;
    const ids = Array.from({ length: 16 }, () => uniqueWebhookId());
    const answers = await Promise.all(
      ids.map((id) =>
        postOnNewConnection(
          `${gateway.url}/actions/crm-note`,
          signedHeaders(payloadText, { id, privateKey: keys.privateKey }),
        ),
      ),
    );
    expect(answers.map((answer) => answer.status)).toEqual(ids.map(() => 200));
    expect(legacy.requests.slice(before).map((seen) => seen.url)).toEqual(ids.map(() => "/api/notes"));
    // Both workers serve the new route: neither kept the old config.
    await waitFor(() => ids.every((id) => workersThatAnswered(gateway, id, 200).length === 1), 5_000, "call log lines");
    expect(new Set(ids.flatMap((id) => workersThatAnswered(gateway, id, 200)))).toEqual(new Set([0, 1]));
  });

  test("a crashed worker is restarted (logged) and the port keeps answering", async () => {
    const victim = childPids(gateway.child.pid!)[0]!;
    process.kill(victim, "SIGKILL");
    await waitFor(
      () => gateway.logs().some((line) => line.msg === "worker exited; restarting it" && line.pid === victim),
      5_000,
      "restart log",
    );
    await waitFor(() => listeningWorkers().length === 3, 10_000, "the restarted worker listening");
    const children = childPids(gateway.child.pid!);
    expect(children).toHaveLength(2);
    expect(children).not.toContain(victim);
    const answer = await postOnNewConnection(url(), signedHeaders(payloadText, { privateKey: keys.privateKey }));
    expect(answer.status).toBe(200);
  });

  test("SIGTERM to the supervisor stops every worker, then the supervisor exits 0", async () => {
    const children = childPids(gateway.child.pid!);
    expect(children).toHaveLength(2);
    const code = await gateway.stop("SIGTERM");
    expect(code).toBe(0);
    for (const pid of children) expect(isAlive(pid)).toBe(false);
    expect(gateway.logs().filter((line) => line.msg === "worker stopped")).toHaveLength(2);
  });
});

describe("server.workers: supervisor failures", () => {
  test("workers stop on their own when the supervisor is killed (no orphan keeps the port)", async () => {
    const legacy = await startRecordingServer();
    const dir = tempDir({ "config.yaml": configYaml(legacy.url) });
    const gateway = await spawnGateway(["serve", "--config", join(dir, "config.yaml")], { cwd: dir });
    await waitFor(
      () => gateway.logs().filter((line) => line.msg === "listening").length === 2,
      10_000,
      "both workers listening",
    );
    const children = childPids(gateway.child.pid!);
    expect(children).toHaveLength(2);
    await gateway.stop("SIGKILL");
    await waitFor(() => children.every((pid) => !isAlive(pid)), 5_000, "orphaned workers to exit");
    await legacy.close();
  }, 20_000);

  test("workers that cannot start make the supervisor give up with exit 1", async () => {
    // The store path is a folder that cannot be created: each worker exits 1 at once.
    const dir = tempDir({
      "config.yaml": configYaml("http://127.0.0.1:9").replace(
        "./state/actiongate.db",
        "/proc/actiongate-cannot-create/x.db",
      ),
    });
    const { spawn } = await import("node:child_process");
    const { BINARY } = await import("../support/gateway.ts");
    const child = spawn(BINARY, ["serve", "--config", join(dir, "config.yaml")], {
      cwd: dir,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (chunk) => (out += chunk));
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    expect(code).toBe(1);
    expect(out).toContain("worker keeps crashing right after its start; stopping all workers");
  }, 30_000);
});
