import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { captureOutput } from "../../test/support/capture-output.ts";
import { openSqliteStore } from "../store/sqlite-store.ts";
import { parseCliArguments } from "./args.ts";
import { outboxCommand } from "./outbox.ts";

const STORE_KEY = Buffer.alloc(32, 5).toString("base64");
let dir: string;
let configFile: string;

const openGatewayStore = () =>
  openSqliteStore({
    path: join(dir, "var", "store.db"),
    encryptionKey: STORE_KEY,
    synchronous: "full",
    replayWindowMs: 600_000,
  });

async function outbox(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const { result: code, stdout, stderr } = await captureOutput(() => outboxCommand(args, configFile, { STORE_KEY }));
  return { code, stdout, stderr };
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "actiongate-outbox-"));
  configFile = join(dir, "config.yaml");
  writeFileSync(
    configFile,
    `verification:
  public_key_url: http://127.0.0.1:9/key
store: { path: ./var/store.db, encryption_key: "\${STORE_KEY}" }
routes:
  - name: erp
    delivery: { mode: async }
    target: { type: http, url: http://127.0.0.1:9/api }
`,
  );
  const store = openGatewayStore();
  const now = Date.now();
  await store.outbox.add({ id: "msg_erp", route: "erp", stage: "deliver", data: "{}", createdAt: now - 2_000 });
  await store.outbox.add({ id: "msg_old_1", route: "old", stage: "deliver", data: "{}", createdAt: now - 1_000 });
  await store.outbox.add({ id: "msg_old_2", route: "old", stage: "resume", data: "{}", createdAt: now });
  await store.outbox.claim("erp", 1, now, 30_000);
  await store.outbox.retryLater(
    "msg_erp",
    { at: now, stage: "deliver", outcome: "target_failed", status: 503, error: "target answered HTTP 503" },
    now + 60_000,
  );
  await store.close();
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("outbox list", () => {
  test("prints what waits, the next due first, says that no gateway delivers and names routes not in the config", async () => {
    const { code, stdout, stderr } = await outbox("list");
    expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
    const lines = stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^WEBHOOK-ID\s+ROUTE\s+STAGE\s+ATTEMPTS\s+NEXT ATTEMPT\s+LAST ERROR$/);
    expect(lines.slice(1, 4).map((line) => line.split(/\s{2,}/).slice(0, 4))).toEqual([
      ["msg_old_1", "old (not configured)", "deliver", "0"],
      ["msg_old_2", "old (not configured)", "resume", "0"],
      ["msg_erp", "erp", "deliver", "1"],
    ]);
    expect(lines[3]).toEndWith("target answered HTTP 503");
    expect(lines[4]).toBe("no gateway is delivering from this store right now: these events wait until one starts");
    expect(lines[5]).toBe(
      "routes not in the config: old; their events wait until the route is back, or: actiongate outbox dead-letter --route <route>",
    );
  });

  test("--json --route gives the API's fields, and whether a gateway delivers", async () => {
    const store = openGatewayStore();
    await store.outbox.markDelivering("loop", Date.now());
    await store.close();
    const { code, stdout } = await outbox("list", "--json", "--route", "erp");
    expect(code).toBe(0);
    const listed = JSON.parse(stdout) as any;
    expect(listed.delivery.running).toBe(true);
    expect(listed.events).toEqual([
      {
        id: "msg_erp",
        webhook_id: "msg_erp",
        route: "erp",
        route_configured: true,
        stage: "deliver",
        attempts: 1,
        created_at: expect.any(String),
        next_attempt_at: expect.any(String),
        leased: false,
        last_error: "target answered HTTP 503",
        last_status: 503,
      },
    ]);
  });
});

describe("outbox dead-letter", () => {
  test("moves the waiting events of a route the config no longer has; refuses a configured one", async () => {
    expect(await outbox("dead-letter", "--route", "erp")).toEqual({
      code: 1,
      stdout: "",
      stderr:
        'actiongate outbox: route "erp" is in the config: its events are being delivered. Only the events of a route that is no longer configured are moved\n',
    });
    expect(await outbox("dead-letter", "--route", "old")).toEqual({
      code: 0,
      stdout: "moved 2 events of route old to the dead letters\n",
      stderr: "",
    });
    const store = openGatewayStore();
    try {
      expect(await store.outbox.depth()).toEqual({ erp: 1 });
      expect(await store.deadLetters.countByRoute()).toEqual({ old: 2 });
    } finally {
      await store.close();
    }
  });

  test("wrong arguments exit 2 with the usage", async () => {
    for (const args of [[], ["dead-letter"], ["list", "extra"], ["dead-letter", "--route", "old", "--json"], ["nap"]]) {
      const result = await outbox(...args);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain("Usage:\n  actiongate outbox list");
    }
  });
});

test("parseCliArguments passes what follows outbox to the command", () => {
  expect(parseCliArguments(["outbox", "list", "--json", "--route", "erp", "-c", "prod.yaml"], {})).toEqual({
    command: "outbox",
    configFile: "prod.yaml",
    commandArguments: ["list", "--json", "--route", "erp"],
  });
  expect(() => parseCliArguments(["serve", "--json"], {})).toThrow("Unknown option '--json'");
});
