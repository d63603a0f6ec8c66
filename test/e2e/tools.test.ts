import { afterAll, beforeAll, expect, test } from "bun:test";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type GatewayProcess, runBinary, spawnGateway, tempDir } from "../support/gateway.ts";
import { type RecordingServer, startRecordingServer } from "../support/recording-server.ts";
import { sendablePayloadFile } from "../support/signing.ts";

/**
 * The newcomer's path without an epilot account, through the compiled binary: keygen, put the
 * whpk_ into the config, serve, send the fixture payload signed with the whsk_, list the routes.
 */

let target: RecordingServer;
let dir: string;
let gateway: GatewayProcess | undefined;

beforeAll(async () => {
  target = await startRecordingServer({ body: { ok: true } });
  dir = tempDir();
});

afterAll(async () => {
  await gateway?.stop();
  await target.close();
  rmSync(dir, { recursive: true, force: true });
});

test("keygen -> config -> serve -> send with the whsk_: exit 0, the answer printed, the target received the call; routes lists it", async () => {
  const keygen = await runBinary(["keygen", "--json"], { cwd: dir });
  expect({ code: keygen.code, stderr: keygen.stderr }).toEqual({ code: 0, stderr: "" });
  const keys = JSON.parse(keygen.stdout) as { secret_key: string; public_key: string };
  expect(keys.secret_key).toStartWith("whsk_");

  const config = (port: number) => `
server: { host: 0.0.0.0, port: ${port} }
verification:
  public_key: "${keys.public_key}"
routes:
  - name: erp-contract
    match: { component_id: erp-contract-sync }
    strip: [data.app_options.api_key]
    transform: '{ "contract": data.entity.contract_number, "status": data.entity.status }'
    target:
      type: http
      url: "http://erp:\${ERP_PASSWORD}@127.0.0.1:${target.port}/api/contracts/{{ data.entity.contract_number }}"
`;
  writeFileSync(join(dir, "config.yaml"), config(0));
  const env = { ERP_PASSWORD: "s3cret-pw" };
  gateway = await spawnGateway(["serve", "--config", "config.yaml"], { cwd: dir, env });
  // send reads the address from the config: write the port the gateway picked, as an operator would have it.
  writeFileSync(join(dir, "config.yaml"), config(gateway.port));

  const payload = sendablePayloadFile();
  const send = await runBinary(
    ["send", "--config", "config.yaml", "--route", "erp-contract", "--payload", payload, "--key", keys.secret_key],
    { cwd: dir, env },
  );
  expect(send).toEqual({
    code: 0,
    stdout: expect.stringMatching(
      new RegExp(
        `^POST http://127\\.0\\.0\\.1:${gateway.port}/actions/erp-contract \\(webhook-id msg_\\S+, signed v1a\\)\\n200 OK\\n\\{\\}\\n$`,
      ),
    ),
    stderr: "",
  });
  expect(target.requests).toHaveLength(1);
  expect(target.requests[0]!.url).toBe("/api/contracts/2026-0042");
  expect(target.requests[0]!.json).toEqual({ contract: "2026-0042", status: "approved" });
  const webhookId = /webhook-id (msg_\S+),/.exec(send.stdout)![1];
  // The fresh webhook-id send printed is the one the call carried (the target gets it as idempotency key).
  expect(target.requests[0]!.headers["idempotency-key"]).toBe(webhookId!);

  // The same call again with another key: the gateway refuses it and send says so with exit 1.
  const other = JSON.parse((await runBinary(["keygen", "--json"], { cwd: dir })).stdout) as { secret_key: string };
  const refused = await runBinary(
    ["send", "--route", "erp-contract", "--payload", payload, "--key", other.secret_key, "--url", gateway.url],
    { cwd: dir },
  );
  expect(refused.code).toBe(1);
  expect(refused.stdout).toContain("\n401 Unauthorized\n");
  expect(target.requests).toHaveLength(1);

  const routes = await runBinary(["routes", "--config", "config.yaml"], { cwd: dir, env });
  expect(routes.code).toBe(0);
  expect(routes.stdout.split("\n")[0]).toMatch(/^ROUTE +MATCH +TARGET +OUTBOUND +DELIVERY$/);
  expect(routes.stdout.split("\n")[1]).toMatch(
    new RegExp(
      `^erp-contract +component_id=erp-contract-sync +http POST http://erp:\\*\\*\\*@127\\.0\\.0\\.1:${target.port}/api/contracts/\\{\\{ data\\.entity\\.contract_number \\}\\} +- +sync$`,
    ),
  );
  expect(routes.stdout).not.toContain("s3cret-pw");

  const help = await runBinary(["--help"], { cwd: dir });
  for (const command of ["[serve]", "validate", "dlq", "routes", "keygen", "send"])
    expect(help.stdout).toContain(`\n  actiongate ${command} `);
}, 60_000);

test("send with missing arguments: exit 2 with what is missing", async () => {
  const result = await runBinary(["send", "--route", "erp-contract"], { cwd: dir });
  expect(result).toEqual({
    code: 2,
    stdout: "",
    stderr: 'actiongate: send needs --payload <file.json>\nRun "actiongate --help" for usage.\n',
  });
});
