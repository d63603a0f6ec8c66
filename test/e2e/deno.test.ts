import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DENO, denoCompileArguments, PROJECT_ROOT } from "../../scripts/deno-compile.ts";
import { type GatewayProcess, spawnGateway, tempDir } from "../support/gateway.ts";
import { type RecordingServer, startRecordingServer } from "../support/recording-server.ts";
import { fixturePayload, generateTestKeyPair, signedHeaders, type TestKeyPair } from "../support/signing.ts";

/**
 * The same source under Deno (DESIGN.md "Portability"): `deno run` from the repository, and the
 * binary `deno compile` builds, each serve one signed call end to end.
 *
 * Deno comes from npm (devDependency `deno`) and reads package.json + node_modules (deno.json:
 * `"nodeModulesDir": "manual"`), so nothing is fetched. `deno compile` also needs the `denort`
 * runtime, which Deno downloads from dl.deno.land unless DENORT_BIN names a local copy; no npm or
 * Debian package ships it. Without DENORT_BIN that one test is skipped with the reason printed,
 * never turned into a download attempt (tests contact no host outside 127.0.0.1).
 */

// Deno caches transpiled modules here; the spawned process gets no HOME to find its default cache.
const DENO_DIR = join(tmpdir(), "actiongate-test-deno-cache");
const DENORT_BIN = process.env.DENORT_BIN;
const denortMissingReason = !DENORT_BIN
  ? "DENORT_BIN is not set: deno compile would download denort from dl.deno.land, which is out of reach; no npm or Debian package ships denort"
  : !existsSync(DENORT_BIN)
    ? `DENORT_BIN=${DENORT_BIN} does not exist`
    : undefined;

let target: RecordingServer;
let keys: TestKeyPair;
let configDir: string;

beforeAll(async () => {
  target = await startRecordingServer({ body: { ok: true } });
  keys = generateTestKeyPair();
  configDir = tempDir({
    "config.yaml": `
server: { host: 127.0.0.1, port: 0 }
verification:
  public_key: "${keys.whpk}"
routes:
  - name: erp-contract
    strip: [data.app_options.api_key]
    transform: |
      { "contract": data.entity.contract_number, "status": data.entity.status, "runtime": "deno" }
    target:
      type: http
      url: ${target.url}/api/contracts
  - name: in-worker
    transform: '{ "distinct": $count($distinct(data.items)), "sorted": $sort(data.items.k) }'
    target:
      type: http
      url: ${target.url}/api/in-worker
`,
  });
  mkdirSync(DENO_DIR, { recursive: true });
});

afterAll(async () => {
  await target.close();
  rmSync(configDir, { recursive: true, force: true });
});

/** Sends the fixture payload, signed with Ed25519 (v1a) as epilot signs, to `gateway`'s route. */
async function sendSignedCall(gateway: GatewayProcess): Promise<Response> {
  const body = JSON.stringify(fixturePayload());
  return fetch(`${gateway.url}/actions/erp-contract`, {
    method: "POST",
    headers: signedHeaders(body, { privateKey: keys.privateKey }),
    body,
  });
}

/** One signed call through `gateway`: 200 {}, and the target got exactly the transformed body. */
async function expectOneCallDelivered(gateway: GatewayProcess): Promise<void> {
  const before = target.requests.length;
  const answer = await sendSignedCall(gateway);
  expect({ status: answer.status, body: await answer.json() }).toEqual({ status: 200, body: {} });
  expect(target.requests.length).toBe(before + 1);
  const received = target.requests.at(-1)!;
  expect(received.url).toBe("/api/contracts");
  expect(received.json).toEqual({ contract: "2026-0042", status: "approved", runtime: "deno" });
  expect(gateway.logs().find((line) => line.msg === "listening")?.runtime).toBe("deno");
}

describe("deno", () => {
  test("deno run -A src/main.ts serve answers a signed call and the target receives the transformed body", async () => {
    const gateway = await spawnGateway(
      ["run", "--allow-all", join(PROJECT_ROOT, "src", "main.ts"), "serve", "--config", join(configDir, "config.yaml")],
      {
        cwd: PROJECT_ROOT,
        executable: DENO,
        env: { DENO_DIR, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
      },
    );
    try {
      await expectOneCallDelivered(gateway);
      // A bad signature is still refused under Deno, and nothing reaches the target.
      const before = target.requests.length;
      const body = JSON.stringify(fixturePayload());
      const forged = await fetch(`${gateway.url}/actions/erp-contract`, {
        method: "POST",
        headers: signedHeaders(body, { privateKey: generateTestKeyPair().privateKey }),
        body,
      });
      expect(forged.status).toBe(401);
      expect(target.requests.length).toBe(before);
    } finally {
      expect(await gateway.stop()).toBe(0);
    }
  }, 60_000);

  test("deno run: expressions that can run long go to worker threads, and a runaway one stops at the limit", async () => {
    const gateway = await spawnGateway(
      ["run", "--allow-all", join(PROJECT_ROOT, "src", "main.ts"), "serve", "--config", join(configDir, "config.yaml")],
      { cwd: PROJECT_ROOT, executable: DENO, env: { DENO_DIR, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" } },
    );
    const send = (items: unknown[]) => {
      const payload = fixturePayload();
      payload.data.items = items;
      const body = JSON.stringify(payload);
      return fetch(`${gateway.url}/actions/in-worker`, {
        method: "POST",
        headers: signedHeaders(body, { privateKey: keys.privateKey }),
        body,
      });
    };
    try {
      expect((await send([{ k: "b" }, { k: "a" }, { k: "b" }])).status).toBe(200);
      expect(target.requests.at(-1)?.json).toEqual({ distinct: 2, sorted: ["a", "b", "b"] });

      // 40,000 distinct objects: $distinct would take many seconds. Deno cannot stop that thread
      // (its terminate() waits for the task), but the call is answered at the limit all the same
      // and other calls are served meanwhile, by the pool's other thread.
      const started = performance.now();
      const slow = send(Array.from({ length: 40_000 }, (_, i) => ({ k: `item-${i}` })));
      await new Promise((resolve) => setTimeout(resolve, 300));
      await expectOneCallDelivered(gateway);
      const answer = await slow;
      expect(answer.status).toBe(500);
      expect(((await answer.json()) as any).error_output.error_reason).toBe(
        "The transform expression of route in-worker failed (JSONata timeout)",
      );
      expect(performance.now() - started).toBeLessThan(3_500);
      expect((await send([{ k: "x" }])).status).toBe(200);
    } finally {
      expect(await gateway.stop()).toBe(0);
    }
  }, 60_000);

  if (denortMissingReason) console.warn(`skipping the deno compile test: ${denortMissingReason}`);
  test.skipIf(denortMissingReason !== undefined)(
    "the binary deno compile builds serves a signed call from a folder without node_modules",
    async () => {
      const buildDir = tempDir();
      const binary = join(buildDir, "actiongate-deno");
      try {
        const build = spawnSync(DENO, denoCompileArguments(binary), {
          cwd: PROJECT_ROOT,
          env: {
            PATH: process.env.PATH ?? "",
            DENO_DIR,
            DENORT_BIN: DENORT_BIN!,
            NO_COLOR: "1",
            DENO_NO_UPDATE_CHECK: "1",
          },
          encoding: "utf8",
          timeout: 240_000,
        });
        expect({ status: build.status, stderr: build.status === 0 ? "" : build.stderr }).toEqual({
          status: 0,
          stderr: "",
        });
        const gateway = await spawnGateway(["serve", "--config", join(configDir, "config.yaml")], {
          cwd: buildDir,
          executable: binary,
        });
        try {
          await expectOneCallDelivered(gateway);
        } finally {
          expect(await gateway.stop()).toBe(0);
        }
      } finally {
        rmSync(buildDir, { recursive: true, force: true });
      }
    },
    300_000,
  );
});
