import { afterEach, beforeAll, beforeEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { captureOutput } from "../../test/support/capture-output.ts";
import { type TestPostgres, testPostgres } from "../../test/support/postgres.ts";
import { closedPort } from "../../test/support/recording-server.ts";
import { openPostgresStore } from "../store/postgres-store.ts";
import { dlqCommand } from "./dlq.ts";

/** `actiongate dlq` against the shared PostgreSQL store, as an operator beside running replicas uses it. */

const STORE_KEY = Buffer.alloc(32, 5).toString("base64");
const TOKEN = "x-epilot-token-never-printed-4242";

let pg: TestPostgres;
let dir: string;
let configFile: string;
let url: string;

function writeConfig(storeUrl: string, withKey = true): void {
  writeFileSync(
    configFile,
    `verification:
  public_key_url: http://127.0.0.1:9/key
store:
  url: ${storeUrl}
${withKey ? `  encryption_key: "\${STORE_KEY}"\n` : ""}routes:
  - name: erp
    delivery: { mode: async }
    target: { type: http, url: http://127.0.0.1:9/api }
`,
  );
}

async function dlq(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const { result: code, stdout, stderr } = await captureOutput(() => dlqCommand(args, configFile, { STORE_KEY }));
  return { code, stdout, stderr };
}

beforeAll(async () => {
  pg = await testPostgres();
}, 120_000);

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "actiongate-dlq-pg-"));
  configFile = join(dir, "config.yaml");
  url = await pg.createDatabase("dlq");
  writeConfig(url);
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

test("list, show, replay and purge work on the PostgreSQL store; the token is never printed", async () => {
  const gateway = openPostgresStore({ url, encryptionKey: STORE_KEY, replayWindowMs: 600_000, maxConnections: 2 });
  try {
    for (const id of ["msg_a", "msg_b"]) {
      await gateway.outbox.add({
        id,
        route: "erp",
        stage: "deliver",
        data: JSON.stringify({ body: { id } }),
        secret: TOKEN,
        createdAt: Date.now(),
      });
      await gateway.outbox.claim("erp", 1, Date.now(), 30_000);
      await gateway.outbox.bury(
        id,
        { at: Date.now(), stage: "deliver", outcome: "target_failed", status: 422, error: "HTTP 422" },
        "target refused (422)",
      );
    }
    const list = await dlq("list");
    expect(list.code).toBe(0);
    expect(list.stdout).toContain("msg_a");
    expect(list.stdout).toContain("target refused (422)");
    const show = await dlq("show", "msg_b");
    expect(show.code).toBe(0);
    expect(JSON.parse(show.stdout)).toMatchObject({
      webhookId: "msg_b",
      route: "erp",
      history: [{ outcome: "target_failed", status: 422 }],
    });
    expect(show.stdout).not.toContain(TOKEN);

    expect(await dlq("replay", "msg_a")).toEqual({
      code: 0,
      stdout: `replayed 1 event: msg_a; no gateway is delivering from this store right now (none polled the outbox in the last 15 s): it waits in the outbox until one starts (actiongate outbox list)\n`,
      stderr: "",
    });
    const [replayed] = await gateway.outbox.claim("erp", 5, Date.now(), 30_000);
    expect(replayed?.id).toBe("msg_a");
    expect(gateway.outbox.secretOf(replayed!)).toBe(TOKEN);
    expect(await dlq("purge", "msg_b")).toEqual({ code: 0, stdout: "purged 1 event: msg_b\n", stderr: "" });
    expect(await dlq("list")).toEqual({ code: 0, stdout: "no dead letters\n", stderr: "" });
  } finally {
    await gateway.close();
  }
});

test("without store.encryption_key: exit 1, saying the replicas must share one", async () => {
  writeConfig(url, false);
  const result = await dlq("list");
  expect(result.code).toBe(1);
  expect(result.stderr).toContain("store.encryption_key is required with store.url (PostgreSQL)");
});

test("an unreachable database: exit 1 with the reason, never the password", async () => {
  writeConfig(`postgres://actiongate:pw-0815-secret@127.0.0.1:${await closedPort()}/actiongate`);
  const result = await dlq("list");
  expect(result.code).toBe(1);
  expect(result.stderr).toStartWith("actiongate dlq: the store failed: ");
  expect(result.stderr).toContain("ECONNREFUSED");
  expect(result.stderr).not.toContain("pw-0815-secret");
}, 20_000);
