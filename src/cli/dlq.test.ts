import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { captureOutput } from "../../test/support/capture-output.ts";
import { eventWithSecrets, secretsIn, TARGET_ANSWER_WITH_SECRETS } from "../../test/support/store-contract.ts";
import { openSqliteStore, type SqliteStore } from "../store/sqlite-store.ts";
import { parseCliArguments, UsageError } from "./args.ts";
import { dlqCommand } from "./dlq.ts";

const DAY = 86_400_000;
/** What a replay says while no gateway delivers from the store. */
const WAITS_ONE =
  "; no gateway is delivering from this store right now (none polled the outbox in the last 15 s): it waits in the outbox until one starts (actiongate outbox list)";
const TOKEN = "x-epilot-token-never-printed-0815";
const STORE_KEY = Buffer.alloc(32, 3).toString("base64");
const ENV = { STORE_KEY };

let dir: string;
let configFile: string;
let storePath: string;

function writeConfig(store: string | undefined): void {
  writeFileSync(
    configFile,
    `verification:
  public_key_url: http://127.0.0.1:9/key
routes:
  - name: erp
    delivery: { mode: ${store ? "async" : "sync"} }
    target: { type: http, url: http://127.0.0.1:9/api }
${store ?? ""}`,
  );
}

/** The store as the gateway would open it, with a clock for when things died. */
function openGatewayStore(now: () => number = Date.now): SqliteStore {
  return openSqliteStore({
    path: storePath,
    encryptionKey: STORE_KEY,
    synchronous: "full",
    replayWindowMs: 600_000,
    now,
  });
}

async function bury(
  id: string,
  options: { route?: string; diedAt?: number; reason?: string; secret?: string } = {},
): Promise<void> {
  const diedAt = options.diedAt ?? Date.now();
  const store = openGatewayStore(() => diedAt);
  try {
    const createdAt = diedAt - 60_000;
    await store.outbox.add({
      id,
      route: options.route ?? "erp",
      stage: "deliver",
      data: JSON.stringify({ body: { contract: "C-1" }, headers: { "webhook-id": id } }),
      ...(options.secret !== undefined ? { secret: options.secret } : {}),
      createdAt,
    });
    await store.outbox.claim(options.route ?? "erp", 10, createdAt, 30_000);
    await store.outbox.retryLater(
      id,
      { at: createdAt + 1_000, stage: "deliver", outcome: "target_unreachable", error: "connection refused" },
      createdAt,
    );
    await store.outbox.claim(options.route ?? "erp", 10, createdAt, 30_000);
    await store.outbox.bury(
      id,
      { at: diedAt, stage: "deliver", outcome: "target_failed", status: 422, error: "HTTP 422" },
      options.reason ?? "target refused (422)",
    );
  } finally {
    await store.close();
  }
}

/** Runs the command in-process and captures what it prints. */
async function dlq(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const { result: code, stdout, stderr } = await captureOutput(() => dlqCommand(args, configFile, ENV));
  return { code, stdout, stderr };
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "actiongate-dlq-"));
  configFile = join(dir, "config.yaml");
  storePath = join(dir, "var", "store.db");
  // A relative store.path is read from the config file's folder, not the working directory.
  writeConfig(`store:\n  path: ./var/store.db\n  encryption_key: "\${STORE_KEY}"\n`);
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("dlq list", () => {
  test("says so when there are none", async () => {
    await openGatewayStore().close();
    expect(await dlq("list")).toEqual({ code: 0, stdout: "no dead letters\n", stderr: "" });
  });

  test("prints a table, newest first", async () => {
    const older = Date.parse("2025-03-01T10:00:00.000Z");
    await bury("msg_old", { diedAt: older, reason: "gave up after 10 attempts:\nconnection refused" });
    await bury("msg_newer_and_longer", { route: "crm", diedAt: older + DAY });
    const { code, stdout, stderr } = await dlq("list");
    expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
    expect(stdout.split("\n")).toEqual([
      "WEBHOOK-ID            ROUTE  STAGE    ATTEMPTS  DIED AT                   REASON",
      "msg_newer_and_longer  crm    deliver  2         2025-03-02T10:00:00.000Z  target refused (422)",
      "msg_old               erp    deliver  2         2025-03-01T10:00:00.000Z  gave up after 10 attempts: connection refused",
      "",
    ]);
  });
});

describe("dlq show", () => {
  test("prints the dead letter with its history and what is stored as JSON, never the token or the data", async () => {
    await bury("msg_1", { diedAt: Date.parse("2025-03-01T10:00:00.000Z"), secret: TOKEN });
    const { code, stdout, stderr } = await dlq("show", "msg_1");
    expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
    expect(stdout).not.toContain(TOKEN);
    expect(JSON.parse(stdout)).toEqual({
      webhookId: "msg_1",
      route: "erp",
      stage: "deliver",
      attempts: 2,
      createdAt: "2025-03-01T09:59:00.000Z",
      diedAt: "2025-03-01T10:00:00.000Z",
      reason: "target refused (422)",
      history: [
        {
          at: "2025-03-01T09:59:01.000Z",
          stage: "deliver",
          outcome: "target_unreachable",
          error: "connection refused",
        },
        { at: "2025-03-01T10:00:00.000Z", stage: "deliver", outcome: "target_failed", status: 422, error: "HTTP 422" },
      ],
      stored: { dataBytes: 60, secrets: true, stageData: false },
    });
  });

  test("show and list print no token, no forwarded secret and nothing of the payload or the target's answer", async () => {
    const diedAt = Date.parse("2025-03-01T10:00:00.000Z");
    const store = openGatewayStore(() => diedAt);
    try {
      await store.outbox.add(eventWithSecrets("msg_secret", diedAt - 60_000));
      await store.outbox.claim("erp", 10, diedAt, 30_000);
      await store.outbox.advance(
        "msg_secret",
        { at: diedAt - 1, stage: "deliver", outcome: "delivered", status: 200 },
        "write_back",
        TARGET_ANSWER_WITH_SECRETS,
      );
      await store.outbox.claim("erp", 10, diedAt, 30_000);
      await store.outbox.bury(
        "msg_secret",
        { at: diedAt, stage: "write_back", outcome: "write_back_failed", status: 400, error: "HTTP 400" },
        "epilot refused the write-back (400)",
      );
    } finally {
      await store.close();
    }
    const show = await dlq("show", "msg_secret");
    const list = await dlq("list");
    expect({ show: show.code, list: list.code }).toEqual({ show: 0, list: 0 });
    for (const output of [show.stdout, list.stdout]) expect(secretsIn(Buffer.from(output))).toEqual([]);
    expect(JSON.parse(show.stdout)).toMatchObject({
      webhookId: "msg_secret",
      stage: "write_back",
      reason: "epilot refused the write-back (400)",
      history: [{ outcome: "delivered" }, { outcome: "write_back_failed", status: 400, error: "HTTP 400" }],
      stored: { secrets: true, stageData: true },
    });
    expect(Object.keys(JSON.parse(show.stdout) as object)).not.toContain("data");
  });

  test("an unknown webhook-id exits 1", async () => {
    await openGatewayStore().close();
    expect(await dlq("show", "nope")).toEqual({
      code: 1,
      stdout: "",
      stderr: 'actiongate dlq: no dead letter with webhook-id "nope"\n',
    });
  });
});

describe("dlq replay", () => {
  test("one: back in the outbox, due now, with its token", async () => {
    await bury("msg_1", { secret: TOKEN });
    await bury("msg_2");
    expect(await dlq("replay", "msg_1")).toEqual({
      code: 0,
      stdout: `replayed 1 event: msg_1${WAITS_ONE}\n`,
      stderr: "",
    });
    expect(await dlq("replay", "msg_1")).toEqual({
      code: 1,
      stdout: "",
      stderr: 'actiongate dlq: no dead letter with webhook-id "msg_1"\n',
    });

    const store = openGatewayStore();
    try {
      const [event, ...rest] = await store.outbox.claim("erp", 10, Date.now(), 30_000);
      expect(rest).toEqual([]);
      expect(event).toMatchObject({ id: "msg_1", stage: "deliver", attempts: 0 });
      expect(event?.history.map((h) => h.outcome)).toEqual(["target_unreachable", "target_failed"]);
      expect(store.outbox.secretOf(event!)).toBe(TOKEN);
      expect((await store.deadLetters.list()).map((d) => d.id)).toEqual(["msg_2"]);
    } finally {
      await store.close();
    }
  });

  test("--all, beside a running gateway whose events in flight keep their lease", async () => {
    await bury("msg_1");
    await bury("msg_2");
    const gateway = openGatewayStore();
    try {
      await gateway.outbox.add({
        id: "in-flight",
        route: "erp",
        stage: "deliver",
        data: "{}",
        createdAt: Date.now() - 1,
      });
      expect((await gateway.outbox.claim("erp", 10, Date.now(), 60_000)).map((e) => e.id)).toEqual(["in-flight"]);
      await gateway.outbox.markDelivering("the-gateway's-loop", Date.now());

      // The running gateway's delivery loop has marked the store: the replayed events are delivered.
      expect(await dlq("replay", "--all")).toEqual({
        code: 0,
        stdout: "replayed 2 events; a running gateway delivers from the outbox within its poll interval\n",
        stderr: "",
      });

      const claimed = await gateway.outbox.claim("erp", 10, Date.now(), 60_000);
      expect(claimed.map((e) => e.id).sort()).toEqual(["msg_1", "msg_2"]);
      expect(await gateway.deadLetters.list()).toEqual([]);
    } finally {
      await gateway.close();
    }
    expect(await dlq("replay", "--all")).toEqual({ code: 0, stdout: "replayed 0 events\n", stderr: "" });
  });
});

describe("dlq purge", () => {
  test("one by webhook-id", async () => {
    await bury("msg_1");
    expect(await dlq("purge", "msg_1")).toEqual({ code: 0, stdout: "purged 1 event: msg_1\n", stderr: "" });
    expect(await dlq("purge", "msg_1")).toEqual({
      code: 1,
      stdout: "",
      stderr: 'actiongate dlq: no dead letter with webhook-id "msg_1"\n',
    });
    expect((await dlq("list")).stdout).toBe("no dead letters\n");
  });

  test("--older-than removes only those that died before", async () => {
    await bury("ancient", { diedAt: Date.now() - 40 * DAY });
    await bury("old", { diedAt: Date.now() - 31 * DAY });
    await bury("recent", { diedAt: Date.now() - 2 * DAY });
    expect(await dlq("purge", "--older-than", "30d")).toEqual({
      code: 0,
      stdout: "purged 2 events older than 30d\n",
      stderr: "",
    });
    expect((await dlq("list")).stdout).toContain("recent");
    expect((await dlq("list")).stdout).not.toContain("old ");
  });
});

describe("dlq failures", () => {
  test.each([
    [[], "which action? list, show, replay or purge"],
    [["frobnicate"], 'unknown action "frobnicate"'],
    [["show"], "show needs a webhook-id"],
    [["list", "extra"], 'unexpected argument "extra"'],
    [["show", "a", "b"], 'unexpected argument "b"'],
    [["replay"], "replay needs a webhook-id or --all"],
    [["replay", "a", "--all"], "give a webhook-id or --all, not both"],
    [["purge"], "purge needs a webhook-id or --older-than <duration>"],
    [["purge", "--older-than", "soon"], '--older-than must be a duration such as 30d, 12h or 90m (got "soon")'],
    [["purge", "a", "--older-than", "1d"], "give a webhook-id or --older-than, not both"],
    [["list", "--all"], "--all is for replay"],
    [["replay", "--older-than", "1d"], "--older-than is for purge"],
    [["list", "--bogus"], "Unknown option '--bogus'"],
  ])("bad usage %j exits 2", async (args, message) => {
    const { code, stdout, stderr } = await dlq(...(args as string[]));
    expect({ code, stdout }).toEqual({ code: 2, stdout: "" });
    expect(stderr.split("\n")[0]).toBe(`actiongate dlq: ${message}`);
    expect(stderr).toContain("Usage:");
  });

  test("a config without a store exits 1", async () => {
    writeConfig(undefined);
    expect(await dlq("list")).toEqual({
      code: 1,
      stdout: "",
      stderr: `actiongate dlq: ${configFile} has no store (store.path or store.url); the outbox and dead letters exist only with a store\n`,
    });
  });

  test("a store that was created and is now lost exits 1 with the store's reason, and nothing is created", async () => {
    await bury("msg_1");
    rmSync(storePath);
    for (const file of [`${storePath}-wal`, `${storePath}-shm`]) rmSync(file, { force: true });
    const { code, stdout, stderr } = await dlq("list");
    expect({ code, stdout }).toEqual({ code: 1, stdout: "" });
    expect(stderr).toStartWith(
      `actiongate dlq: the store file ${storePath} does not exist, but ${storePath}.marker shows that a store was created there`,
    );
    expect(existsSync(storePath)).toBe(false);
  });

  test("a store file that does not exist exits 1 and is not created", async () => {
    const { code, stderr } = await dlq("list");
    expect(code).toBe(1);
    expect(stderr).toBe(
      `actiongate dlq: no store at ${storePath} (store.path); the gateway creates it when it starts\n`,
    );
  });

  test("an invalid config exits 1 with its problems", async () => {
    writeFileSync(configFile, "routes: []\n");
    const { code, stderr } = await dlq("list");
    expect(code).toBe(1);
    expect(stderr).toContain("routes: must list at least one route");
  });

  test("a wrong-length encryption key exits 1 with a clear message", async () => {
    await openGatewayStore().close();
    writeConfig(`store:\n  path: ./var/store.db\n  encryption_key: "${Buffer.alloc(8).toString("base64")}"\n`);
    expect(await dlq("list")).toEqual({
      code: 1,
      stdout: "",
      stderr:
        "actiongate dlq: store.encryption_key must be base64 of 32 bytes (got 8 bytes); make one with: openssl rand -base64 32\n",
    });
  });
});

describe("dlq and routes the config no longer has", () => {
  test("replay of one refuses, exit 1; replay --all leaves them and says so; list --json --route selects", async () => {
    await bury("msg_erp");
    await bury("msg_old", { route: "old-route" });
    expect(await dlq("replay", "msg_old")).toEqual({
      code: 1,
      stdout: "",
      stderr:
        'actiongate dlq: route "old-route" is not in the config: a replay would wait in the outbox for it. Add the route back, or purge the dead letter\n',
    });
    expect((await dlq("replay", "--all", "--route", "old-route")).code).toBe(1);

    const listed = await dlq("list", "--json", "--route", "old-route");
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual([
      {
        id: "msg_old",
        webhook_id: "msg_old",
        route: "old-route",
        route_configured: false,
        stage: "deliver",
        attempts: 2,
        created_at: expect.any(String),
        dead_at: expect.any(String),
        reason: "target refused (422)",
        last_error: "HTTP 422",
        last_status: 422,
      },
    ]);
    expect((JSON.parse((await dlq("list", "--json")).stdout) as any[]).map((entry: any) => entry.id).sort()).toEqual([
      "msg_erp",
      "msg_old",
    ]);

    expect(await dlq("replay", "--all")).toEqual({
      code: 0,
      stdout: `replayed 1 event${WAITS_ONE}\nleft as dead letters, their routes are not in the config: old-route: 1\n`,
      stderr: "",
    });
  });

  test("show prints each attempt's status, URL and the target's answer as recorded", async () => {
    const store = openGatewayStore();
    try {
      await store.outbox.add({ id: "msg_answer", route: "erp", stage: "deliver", data: "{}", createdAt: Date.now() });
      await store.outbox.claim("erp", 1, Date.now(), 30_000);
      await store.outbox.bury(
        "msg_answer",
        {
          at: Date.now(),
          stage: "deliver",
          outcome: "target_failed",
          status: 400,
          error: "target answered HTTP 400",
          url: "http://erp.internal:8081/api/contracts/2026-0042",
          answer: '{"error":"contract number unknown"}',
        },
        "the target refused the event: target answered HTTP 400",
      );
    } finally {
      await store.close();
    }
    const shown = JSON.parse((await dlq("show", "msg_answer")).stdout) as any;
    expect(shown.history).toEqual([
      {
        at: expect.any(String),
        stage: "deliver",
        outcome: "target_failed",
        status: 400,
        error: "target answered HTTP 400",
        url: "http://erp.internal:8081/api/contracts/2026-0042",
        answer: '{"error":"contract number unknown"}',
      },
    ]);
  });

  test("usage: --json only for list, --route only for list and replay --all", async () => {
    expect((await dlq("show", "x", "--json")).code).toBe(2);
    expect((await dlq("purge", "x", "--route", "erp")).code).toBe(2);
    expect((await dlq("list", "--route", "")).code).toBe(2);
  });
});

describe("parseCliArguments: dlq", () => {
  test("passes what follows dlq to the command, wherever --config stands", () => {
    expect(parseCliArguments(["dlq", "purge", "--older-than", "30d", "--config", "prod.yaml"], {})).toEqual({
      command: "dlq",
      configFile: "prod.yaml",
      commandArguments: ["purge", "--older-than", "30d"],
    });
    expect(parseCliArguments(["-c", "prod.yaml", "dlq", "replay", "--all"], { ACTIONGATE_CONFIG: "env.yaml" })).toEqual(
      {
        command: "dlq",
        configFile: "prod.yaml",
        commandArguments: ["replay", "--all"],
      },
    );
    expect(parseCliArguments(["dlq", "show", "msg_1"], { ACTIONGATE_CONFIG: "env.yaml" })).toEqual({
      command: "dlq",
      configFile: "env.yaml",
      commandArguments: ["show", "msg_1"],
    });
  });

  test("other commands still refuse the dlq options and extra arguments", () => {
    expect(() => parseCliArguments(["serve", "--all"], {})).toThrow(new UsageError("Unknown option '--all'"));
    expect(() => parseCliArguments(["validate", "--older-than", "1d"], {})).toThrow(UsageError);
    expect(() => parseCliArguments(["validate", "dlq"], {})).toThrow(new UsageError('unexpected argument "dlq"'));
    expect(parseCliArguments(["--config", "dlq"], {})).toEqual({ command: "serve", configFile: "dlq" });
  });
});
