import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { captureOutput } from "../../test/support/capture-output.ts";
import { type InProcessGateway, startInProcessGateway, tempDir } from "../../test/support/gateway.ts";
import { closedPort, type RecordingServer, startRecordingServer } from "../../test/support/recording-server.ts";
import { sendablePayloadFile } from "../../test/support/signing.ts";
import { generateSigningKeyPair } from "../verify/sign.ts";
import { parseCliArguments, type SendArguments, UsageError } from "./args.ts";
import { gatewayUrlFromConfig, sendCommand } from "./send.ts";

const PAYLOAD_FILE = sendablePayloadFile();
const HMAC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const pair = generateSigningKeyPair();

let target: RecordingServer;
let gateway: InProcessGateway;
let dir: string;

beforeAll(async () => {
  target = await startRecordingServer({ body: { ok: true } });
  gateway = await startInProcessGateway(`
server: { host: 127.0.0.1, port: 0 }
verification:
  public_key: "${pair.publicKey}"
  secrets: ["${HMAC_SECRET}"]
routes:
  - name: erp-contract
    transform: '{ "contract": data.entity.contract_number }'
    target: { type: http, url: "${target.url}/api/contracts" }
`);
  dir = tempDir({ "private.pem": pair.privateKeyPem, "whsk.txt": `${pair.secretKey}\n` });
});

afterAll(async () => {
  await gateway.stop();
  await target.close();
});

/** Runs `send` and returns the exit code and what it printed. */
async function send(args: Partial<SendArguments>, configFile = "unused.yaml") {
  let stdout = "";
  let stderr = "";
  const code = await sendCommand(
    { route: "erp-contract", payloadFile: PAYLOAD_FILE, ...args },
    configFile,
    {},
    {
      stdout: (text) => (stdout += text),
      stderr: (text) => (stderr += text),
    },
  );
  return { code, stdout, stderr };
}

async function sendWithEnv(args: Partial<SendArguments>, configFile: string, env: Record<string, string>) {
  let stdout = "";
  const code = await sendCommand({ route: "erp-contract", payloadFile: PAYLOAD_FILE, ...args }, configFile, env, {
    stdout: (text) => (stdout += text),
    stderr: () => {},
  });
  return { code, stdout };
}

describe("actiongate send", () => {
  test.each([
    ["an inline whsk_ key (v1a)", { key: pair.secretKey }, "v1a"],
    ["a file holding the whsk_ key", { key: "whsk.txt" }, "v1a"],
    ["a PEM private key file", { key: "private.pem" }, "v1a"],
    ["a whsec_ secret (v1)", { secret: HMAC_SECRET }, "v1"],
  ])(
    "signs with %s: exit 0, the answer printed, the target got the transformed call",
    async (_what, signing, scheme) => {
      const resolved =
        "key" in signing && !signing.key!.startsWith("whsk_") ? { key: join(dir, signing.key!) } : signing;
      const before = target.requests.length;
      const result = await send({ ...resolved, url: gateway.url });
      expect(result).toEqual({
        code: 0,
        stdout: expect.stringMatching(
          new RegExp(
            `^POST ${gateway.url}/actions/erp-contract \\(webhook-id msg_[A-Za-z0-9_-]{24}, signed ${scheme}\\)\\n200 OK\\n\\{\\}\\n$`,
          ),
        ),
        stderr: "",
      });
      expect(target.requests.length).toBe(before + 1);
      expect(target.requests.at(-1)!.json).toEqual({ contract: "2026-0042" });
    },
  );

  test("a key the gateway does not know: 401 and epilot's error printed, exit 1, nothing forwarded", async () => {
    const before = target.requests.length;
    const result = await send({ key: generateSigningKeyPair().secretKey, url: gateway.url });
    expect(result.code).toBe(1);
    expect(result.stdout).toContain("\n401 Unauthorized\n");
    expect(target.requests.length).toBe(before);
  });

  test("without --url the address comes from the config's server.host and server.port", async () => {
    const configFile = join(dir, "config.yaml");
    writeFileSync(
      configFile,
      `server: { host: 0.0.0.0, port: ${new URL(gateway.url).port} }\nroutes:\n  - name: erp-contract\n    target: { type: http, url: "http://127.0.0.1:9/x" }\n`,
    );
    const result = await send({ key: pair.secretKey }, configFile);
    expect(result.code).toBe(0);
    expect(result.stdout).toStartWith(`POST http://127.0.0.1:${new URL(gateway.url).port}/actions/erp-contract `);

    const unknown = await send({ key: pair.secretKey, route: "nope" }, configFile);
    expect(unknown).toEqual({
      code: 1,
      stdout: "",
      stderr: `actiongate: ${configFile} has no route "nope" (routes: erp-contract)\n`,
    });
  });

  test("the variables the routes read (ERP_TOKEN) need not be set for send; the server's must be", async () => {
    const port = new URL(gateway.url).port;
    const configFile = join(dir, "needs-token.yaml");
    writeFileSync(
      configFile,
      `server: { host: 127.0.0.1, port: "\${GATEWAY_PORT}" }
routes:
  - name: erp-contract
    target:
      type: http
      url: http://127.0.0.1:9/x
      headers: { Authorization: "Bearer \${ERP_TOKEN}" }
`,
    );
    const sent = await sendWithEnv({ key: pair.secretKey }, configFile, { GATEWAY_PORT: port });
    expect(sent.code).toBe(0);
    expect(sent.stdout).toStartWith(`POST http://127.0.0.1:${port}/actions/erp-contract `);

    const before = target.requests.length;
    const { result, stderr } = await captureOutput(() => sendWithEnv({ key: pair.secretKey }, configFile, {}));
    expect(result.code).toBe(1);
    expect(stderr).toBe(
      `${configFile}:1:34 server.port: environment variable GATEWAY_PORT is not set (set it, or write \${GATEWAY_PORT:-default} where a default is safe)\n`,
    );
    expect(target.requests.length).toBe(before);
  });

  test("a gateway that is not running: exit 1 with connection refused", async () => {
    const result = await send({ key: pair.secretKey, url: `http://127.0.0.1:${await closedPort()}` });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("connection refused");
    expect(result.stderr).toContain('Is "actiongate serve" running there?');
  });

  test.each([
    [
      "a payload file that does not exist",
      { key: pair.secretKey, payloadFile: "/nonexistent/payload.json" },
      "cannot read the payload file /nonexistent/payload.json (ENOENT)",
    ],
    [
      "a --key that is neither a key nor a file",
      { key: "/nonexistent/key" },
      "--key is neither a whsk_ key nor a readable file (/nonexistent/key: ENOENT)",
    ],
    [
      "a --key holding the public key",
      { key: pair.publicKey },
      "--key needs the secret key (whsk_...), not the public key (whpk_...)",
    ],
    ["a --secret that is not base64", { secret: "whsec_not*base64" }, "HMAC secret must be whsec_ followed by base64"],
  ])("%s: exit 2 with the reason, nothing sent", async (_what, args, message) => {
    const before = target.requests.length;
    const result = await send({ ...args, url: gateway.url });
    expect(result).toEqual({ code: 2, stdout: "", stderr: `actiongate: ${message}\n` });
    expect(target.requests.length).toBe(before);
  });
});

describe("gatewayUrlFromConfig", () => {
  const server = (host: string, port: number, tls?: object) =>
    ({ server: { host, port, ...(tls ? { tls } : {}) } }) as Parameters<typeof gatewayUrlFromConfig>[0];
  test.each([
    ["0.0.0.0", 8080, undefined, "http://127.0.0.1:8080"],
    ["::", 8080, undefined, "http://[::1]:8080"],
    ["10.1.2.3", 80, undefined, "http://10.1.2.3:80"],
    ["fd00::1", 8443, undefined, "http://[fd00::1]:8443"],
    ["gateway.local", 8443, { cert_file: "c", key_file: "k" }, "https://gateway.local:8443"],
  ])("%s:%d (tls %o) -> %s", (host, port, tls, url) => {
    expect(gatewayUrlFromConfig(server(host, port, tls))).toEqual({ ok: true, url });
  });
  test("port 0 cannot be known in advance", () => {
    expect(gatewayUrlFromConfig(server("127.0.0.1", 0))).toEqual({
      ok: false,
      reason: expect.stringContaining("pass --url"),
    });
  });
});

describe("parseCliArguments for the tools", () => {
  test("send takes its options; --config as usual", () => {
    expect(
      parseCliArguments(
        [
          "send",
          "--route",
          "r",
          "--payload",
          "p.json",
          "--key",
          "whsk_x",
          "--url",
          "http://127.0.0.1:1",
          "-c",
          "c.yaml",
        ],
        {},
      ),
    ).toEqual({
      command: "send",
      configFile: "c.yaml",
      send: { route: "r", payloadFile: "p.json", key: "whsk_x", url: "http://127.0.0.1:1" },
    });
    expect(parseCliArguments(["keygen", "--json"], {})).toEqual({
      command: "keygen",
      configFile: "config.yaml",
      json: true,
    });
    expect(parseCliArguments(["routes"], { ACTIONGATE_CONFIG: "env.yaml" })).toEqual({
      command: "routes",
      configFile: "env.yaml",
    });
    expect(parseCliArguments(["send", "--help"], {}).command).toBe("help");
  });

  test.each([
    [["send", "--payload", "p.json", "--key", "k"], "send needs --route <name>"],
    [["send", "--route", "r", "--key", "k"], "send needs --payload <file.json>"],
    [["send", "--route", "r", "--payload", "p.json"], "send needs --key"],
    [
      ["send", "--route", "r", "--payload", "p.json", "--key", "k", "--url", "127.0.0.1:8080"],
      "--url must be an http(s) URL",
    ],
    [["keygen", "--route", "r"], "Unknown option '--route'"],
    [["routes", "extra"], 'unexpected argument "extra"'],
    [["validate", "--json"], "Unknown option '--json'"],
  ])("%j is refused: %s", (argv, message) => {
    expect(() => parseCliArguments(argv, {})).toThrow(UsageError);
    expect(() => parseCliArguments(argv, {})).toThrow(message);
  });
});
