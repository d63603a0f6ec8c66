import { chmodSync, existsSync, mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import examplePayload from "../../examples/payloads/custom-action.json" with { type: "json" };
import { generateSigningKeyPair } from "../verify/sign.ts";

/** Where `init` writes; replaceable in tests. */
export interface InitOutput {
  stdout(text: string): void;
  stderr(text: string): void;
}

const processOutput: InitOutput = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

/** The files `init` writes, by name inside the folder. */
export const INIT_FILES = {
  config: "config.yaml",
  signingKey: "signing-key",
  payload: "custom-action.json",
  routeTest: "erp-contract.test.yaml",
} as const;

export interface InitOptions {
  /** Folder to write into (created when missing); `.` by default. */
  readonly folder: string;
  /** The working directory the printed commands are relative to. */
  readonly cwd?: string;
  /** How the user runs actiongate: `npx actiongate` from a clone, `actiongate` when installed. */
  readonly command?: string;
}

/**
 * `actiongate init [folder]`: a starter gateway a newcomer can serve, send to and test within
 * minutes, without an epilot account: `config.yaml` with one route, a fresh Ed25519 key pair (the
 * public half trusted in the config, the secret half in `signing-key`, mode 0600, never printed), the
 * example payload and a route test. Prints the commands to serve, send and test it. Refuses, with
 * exit 2 and writing nothing, when any of its files exists already; 1 when the folder cannot be written.
 *
 * @example
 * initCommand({ folder: "my-gateway" }); // writes my-gateway/config.yaml, signing-key, ...
 */
export function initCommand(options: InitOptions, output: InitOutput = processOutput): number {
  const cwd = options.cwd ?? process.cwd();
  const command = options.command ?? "actiongate";
  const folder = resolve(cwd, options.folder);
  // Paths as the user will type them: relative to here, unless the folder is elsewhere.
  const shown = (name: string) => {
    const path = relative(cwd, join(folder, name));
    return path.startsWith("..") ? join(folder, name) : path || name;
  };

  const pair = generateSigningKeyPair();
  const files: { name: string; content: string; secret?: boolean }[] = [
    { name: INIT_FILES.config, content: starterConfig(pair.publicKey) },
    { name: INIT_FILES.signingKey, content: `${pair.secretKey}\n`, secret: true },
    { name: INIT_FILES.payload, content: `${JSON.stringify(payloadToTryWith(), null, 2)}\n` },
    { name: INIT_FILES.routeTest, content: starterRouteTest() },
  ];
  if (existsSync(folder) && !statSync(folder).isDirectory()) {
    output.stderr(`actiongate: ${shown(".")} is a file, not a folder: init writes into a folder\n`);
    return 2;
  }
  const existing = files.filter((file) => existsSync(join(folder, file.name))).map((file) => shown(file.name));
  if (existing.length > 0) {
    output.stderr(
      `actiongate: init writes nothing over existing files: ${existing.join(", ")} (move them away, or init another folder)\n`,
    );
    return 2;
  }
  // A .gitignore keeps the secret key out of a repository; one that exists is the user's own.
  const gitignore = !existsSync(join(folder, ".gitignore"));
  if (gitignore) files.push({ name: ".gitignore", content: `${INIT_FILES.signingKey}\n*.db\n*.db-*\n*.db.key\n` });

  const written: string[] = [];
  try {
    mkdirSync(folder, { recursive: true });
    for (const file of files) {
      const path = join(folder, file.name);
      // "wx": never over a file that appeared since the check above.
      writeFileSync(path, file.content, { flag: "wx", mode: file.secret ? 0o600 : 0o644 });
      written.push(path);
      if (file.secret) chmodSync(path, 0o600);
    }
  } catch (error) {
    for (const path of written) rmSync(path, { force: true });
    const code = (error as { code?: string }).code ?? "error";
    output.stderr(`actiongate: cannot write the starter files in ${shown(".")} (${code})\n`);
    return code === "EEXIST" ? 2 : 1;
  }

  const config = shown(INIT_FILES.config);
  const described: Record<string, string> = {
    [INIT_FILES.config]: "one route, erp-contract, to an ERP at http://127.0.0.1:8081 (or $ERP_URL)",
    [INIT_FILES.signingKey]: "the secret half of a new key pair (mode 0600); config.yaml trusts its public half",
    [INIT_FILES.payload]: "a custom action call as epilot sends it (one that resumes no workflow)",
    [INIT_FILES.routeTest]: "a route test: what the ERP receives for that call, and what epilot gets back",
    ".gitignore": "keeps signing-key (and store files) out of git",
  };
  const width = Math.max(...files.map((file) => shown(file.name).length));
  output.stdout(
    [
      `Wrote a starter gateway:`,
      ...files.map((file) => `  ${shown(file.name).padEnd(width)}  ${described[file.name]}`),
      "",
      `Serve it (ERP_TOKEN is the token it sends the ERP as "Bearer \${ERP_TOKEN}"):`,
      `  ERP_TOKEN=test-token ${command} serve --config ${config}`,
      "Send it the example call, signed as epilot signs, from a second terminal:",
      `  ${command} send --config ${config} --route erp-contract --payload ${shown(INIT_FILES.payload)} --key ${shown(INIT_FILES.signingKey)}`,
      "Test the route without a server or an ERP:",
      `  ${command} test --config ${config}`,
      "",
    ].join("\n"),
  );
  return 0;
}

/** The starter config: the example route, trusting the new key only (no internet, no epilot account needed). */
function starterConfig(publicKey: string): string {
  return `# A starter actiongate config, written by \`actiongate init\`. Every key: docs/configuration.md.
# Check it:  actiongate validate --config config.yaml  (needs ERP_TOKEN set, as serve does)

server:
  host: 127.0.0.1             # this machine only; 0.0.0.0 takes calls from other hosts
  port: \${PORT:-8080}

verification:
  # The public half of the key pair init made: \`actiongate send --key signing-key\` signs with its
  # secret half, as epilot signs with its own. Only this key is trusted, so nothing is fetched.
  public_key: "${publicKey}"
  # When epilot calls this gateway, trust epilot's key too (fetched from epilot's URLs):
  # public_key_url: epilot

routes:
  # Called as POST /actions/erp-contract, or POST /actions (then the first route whose match holds).
  - name: erp-contract
    match:
      component_id: erp-contract-sync
    strip: [data.app_options.api_key]     # removed before anything else sees the payload
    # A contract that is not approved is answered 200 {"skip_reason": ...}; nothing is sent.
    skip_when: data.entity.status != "approved"
    skip_reason: '"contract " & data.entity.contract_number & " is not approved yet"'
    # JSONata over the payload: its result is the JSON body the ERP receives.
    transform: |
      {
        "contract": data.entity.contract_number,
        "status": data.entity.status
      }
    target:
      type: http
      url: \${ERP_URL:-http://127.0.0.1:8081}/api/contracts/{{ data.entity.contract_number }}
      headers:
        Authorization: Bearer \${ERP_TOKEN}   # no default: a token that is not set is an error
      timeout: 10s
    response:
      # What epilot gets back when the ERP answers 2xx (shown in the workflow's execution details).
      transform: '{ "erp_contract_id": body.id }'
`;
}

/** A route test for the starter route, in the route-test format (run by `actiongate test`). */
function starterRouteTest(): string {
  return `# Route tests for config.yaml: each sends a payload through the route with a stand-in ERP
# and checks what the ERP received and what epilot got back. Run:  actiongate test --config config.yaml
env: { ERP_TOKEN: test-token }          # the variables config.yaml reads, for these tests only
tests:
  - name: an approved contract reaches the ERP
    payload: custom-action.json          # relative to this file; or the payload inline (a mapping)
    route: erp-contract                  # optional: else the route is chosen by match
    target_response: { status: 200, body: { id: "E-1" } }   # what the stand-in ERP answers
    expect:
      route: erp-contract
      request:
        method: POST
        url: "http://127.0.0.1:8081/api/contracts/2026-0042"
        headers: { authorization: "Bearer test-token" }
        body: { contract: "2026-0042", status: "approved" }
      answer: { status: 200, body: { erp_contract_id: "E-1" } }

  - name: a contract that is not approved yet is skipped, and nothing is sent
    payload: custom-action.json
    set: { data.entity.status: draft }   # dot paths overridden in the payload
    expect:
      route: erp-contract
      answer: { status: 200, body: { skip_reason: "contract 2026-0042 is not approved yet" } }
`;
}

/**
 * The example call without the fields that make the gateway resume a workflow (`resume_token`,
 * `callback_post_url`): while someone tries the gateway with it, nothing goes to epilot, whose resume
 * endpoint would only refuse the example's token. A real call from epilot carries them.
 */
function payloadToTryWith(): unknown {
  const { resume_token: _token, callback_post_url: _url, ...data } = examplePayload.data;
  return { ...examplePayload, data: { ...data, app_config: { ...data.app_config, wait_for_callback: false } } };
}
