import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BINARY, type GatewayProcess, runBinary, spawnGateway, tempDir, waitFor } from "../support/gateway.ts";
import { closedPort } from "../support/recording-server.ts";
import { fixturePayload, generateTestKeyPair, signedHeaders } from "../support/signing.ts";

/**
 * The SQLite store's files as the compiled binary leaves them: nothing of a call at rest in clear,
 * private modes, and a store file that lost its content refused at the next start.
 */
const keys = generateTestKeyPair();
const RESUME_TOKEN = "resume-token-e2e-7c1d-never-at-rest";
const EPILOT_TOKEN = "x-epilot-token-e2e-5b2a-never-at-rest";
const API_KEY = "forwarded-api-key-e2e-9e3f-never-at-rest";
const CUSTOMER = "DE02120300000000202051-e2e-never-at-rest";
const NEEDLES = [RESUME_TOKEN, EPILOT_TOKEN, API_KEY, CUSTOMER];

let dir: string;
let gateway: GatewayProcess;
const storePath = () => join(dir, "var", "store.db");
const found = (file: string) => NEEDLES.filter((needle) => readFileSync(file).includes(Buffer.from(needle)));

beforeAll(async () => {
  if (!existsSync(BINARY)) throw new Error(`${BINARY} is missing: run \`npm run build\``);
  const downPort = await closedPort();
  dir = tempDir();
  // A route that strips nothing and sends the whole payload: the worst case for what rests on disk.
  writeFileSync(
    join(dir, "config.yaml"),
    `server: { host: 127.0.0.1, port: 0, shutdown_timeout: 2s }
verification: { public_key: "${keys.whpk}" }
store: { path: ./var/store.db }
epilot: { callback_hosts: ["127.0.0.1"] }
routes:
  - name: erp
    forward_headers: [x-api-key]
    target: { type: http, url: "http://127.0.0.1:${downPort}/api", timeout: 1s }
    delivery: { mode: async, max_attempts: 2, backoff: { initial: 50ms, max: 50ms } }
`,
  );
  gateway = await spawnGateway(["--config", "config.yaml"], { cwd: dir });
}, 30_000);

afterAll(async () => {
  if (gateway?.child.exitCode === null) await gateway.stop();
});

describe("the SQLite store on disk (compiled binary)", () => {
  test("an accepted call that waits for a callback rests nowhere in clear: not in the database, not in its WAL", async () => {
    const payload = fixturePayload();
    payload.data.resume_token = RESUME_TOKEN;
    payload.data.callback_post_url = "http://127.0.0.1:9/resume";
    payload.data.entity.customer_iban = CUSTOMER;
    const text = JSON.stringify(payload);
    const response = await fetch(`${gateway.url}/actions/erp`, {
      method: "POST",
      body: text,
      headers: {
        ...signedHeaders(text, { privateKey: keys.privateKey }),
        "x-epilot-token": EPILOT_TOKEN,
        "x-api-key": API_KEY,
      },
    });
    expect(response.status).toBe(202);
    // The target is down: two attempts, then the dead letters (a second copy of every column).
    await waitFor(() => gateway.logs().some((line) => line.msg === "dead letter"), 10_000, "the dead letter");
    for (const file of [storePath(), `${storePath()}-wal`]) {
      expect({ file, found: existsSync(file) ? found(file) : [] }).toEqual({ file, found: [] });
    }
    expect(gateway.stdout()).not.toContain(RESUME_TOKEN);
    expect(gateway.stdout()).not.toContain(API_KEY);
  }, 20_000);

  test("the folder is 0700 and every store file 0600", () => {
    expect((statSync(join(dir, "var")).mode & 0o777).toString(8)).toBe("700");
    for (const suffix of ["", "-wal", "-shm", ".key", ".marker"]) {
      const file = `${storePath()}${suffix}`;
      expect({ file, mode: (statSync(file).mode & 0o777).toString(8) }).toEqual({ file, mode: "600" });
    }
  });

  test("dlq show prints the history and the reason, nothing of the call", async () => {
    const list = await runBinary(["dlq", "list", "--config", "config.yaml"], { cwd: dir });
    expect(list.code).toBe(0);
    const id = list.stdout.split("\n")[1]!.split(/\s+/)[0]!;
    const show = await runBinary(["dlq", "show", id, "--config", "config.yaml"], { cwd: dir });
    expect(show.code).toBe(0);
    expect(JSON.parse(show.stdout)).toMatchObject({ route: "erp", history: [{ outcome: "target_unreachable" }, {}] });
    for (const needle of NEEDLES) expect(show.stdout + list.stdout).not.toContain(needle);
  });

  test("a store file emptied while the gateway was stopped: the next start exits 1 and names it, nothing is reset", async () => {
    expect(await gateway.stop()).toBe(0);
    truncateSync(storePath(), 0);
    const started = await runBinary(["--config", "config.yaml"], { cwd: dir });
    expect(started.code).toBe(1);
    expect(started.stderr).toContain(
      `cannot open the store: the store file ${storePath()} is empty (0 bytes), but ${storePath()}.marker shows that a store was created there`,
    );
    expect(statSync(storePath()).size).toBe(0);
  }, 20_000);
});
