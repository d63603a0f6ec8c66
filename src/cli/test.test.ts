import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { captureOutput } from "../../test/support/capture-output.ts";
import { tempDir } from "../../test/support/gateway.ts";
import { type RecordingServer, startRecordingServer } from "../../test/support/recording-server.ts";
import { EXAMPLE_PAYLOAD_FILE } from "../../test/support/signing.ts";
import { testCommand } from "./test.ts";
import { validateCommand } from "./validate.ts";

/** The legacy systems the configs name: route tests must send them nothing. */
let legacy: RecordingServer;
beforeAll(async () => {
  legacy = await startRecordingServer();
});
afterAll(async () => {
  expect(legacy.requests).toEqual([]);
  await legacy.close();
});

const config = () => `
verification: { public_key_url: "${legacy.url}/public-key" }
store: { path: ./store.db }
routes:
  - name: erp-contract
    match: { component_id: erp-contract-sync }
    strip: [data.trigger_event, data.app_options.api_key]
    skip_when: data.entity.status != "approved"
    transform: '{ "contract": data.entity.contract_number, "status": data.entity.status }'
    target:
      type: http
      url: "${legacy.url}/api/contracts/{{ data.entity.contract_number }}"
      headers: { Authorization: "Bearer \${ERP_TOKEN}" }
    response:
      fail_when: body.success = false
      error_reason: '"ERP: " & body.message'
      transform: '{ "erp_id": body.id }'
  - name: crm-customer
    target:
      type: soap
      url: "${legacy.url}/crm"
      version: "1.2"
      operation: CreateCustomer
      namespace: "urn:crm"
      ws_security: { username: gw, password: "\${CRM_PASSWORD}" }
    transform: '{ "Name": data.entity._title, "Number": data.entity.customer_number }'
    response:
      transform: '{ "ref": body.CreateCustomerResponse.Ref }'
      error_reason: '"CRM: " & body.Fault.Reason.Text."#text"'
  - name: billing
    target: { type: http, url: "${legacy.url}/billing" }
    delivery: { mode: async }
`;

/** A folder with config.yaml, the example payload and the given files (paths relative to it). */
function deployment(files: Record<string, string>): string {
  const dir = tempDir({ "config.yaml": config(), "payload.json": readFileSync(EXAMPLE_PAYLOAD_FILE, "utf8") });
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

async function run(dir: string, paths: string[] = []) {
  let stdout = "";
  let stderr = "";
  const code = await testCommand(
    paths.map((path) => join(dir, path)),
    join(dir, "config.yaml"),
    { stdout: (text) => (stdout += text), stderr: (text) => (stderr += text) },
  );
  // Paths are shown as given; the temp folder is replaced so the expectations read plainly.
  return { code, stdout: stdout.replaceAll(`${dir}/`, ""), stderr: stderr.replaceAll(`${dir}/`, "") };
}

const ENV = "env: { ERP_TOKEN: test-token, CRM_PASSWORD: test-password }\n";

describe("actiongate test: running route tests", () => {
  test("PASS and FAIL lines with each difference, then the count; exit 1 when any fails", async () => {
    const dir = deployment({
      "erp.test.yaml": `${ENV}tests:
  - name: an approved contract reaches the ERP
    payload: payload.json
    target_response: { status: 200, body: { id: "E-1" } }
    expect:
      route: erp-contract
      request:
        method: POST
        url: "${legacy.url}/api/contracts/2026-0042"
        headers: { Authorization: "Bearer test-token" }
        body: { contract: "2026-0042" }
      answer: { status: 200, body: { erp_id: "E-1" } }
  - name: the wrong contract
    payload: payload.json
    set: { data.entity.contract_number: "2026-0043" }
    expect:
      request: { body: { contract: "2026-0042", status: approved } }
      answer: { status: 200, body: { erp_id: "E-1" } }
  - name: a draft is skipped
    payload: payload.json
    set: { data.entity.status: draft }
    expect: { skipped: true, request: null, answer: { status: 200, body: { skip_reason: "skipped by route erp-contract" } } }
`,
    });
    expect(await run(dir)).toEqual({
      code: 1,
      stdout: `PASS erp.test.yaml: an approved contract reaches the ERP
FAIL erp.test.yaml: the wrong contract
  request.body.contract: expected "2026-0042", got "2026-0043"
  answer.body.erp_id: expected "E-1", got nothing (no such key)
PASS erp.test.yaml: a draft is skipped
2 passed, 1 failed
`,
      stderr: "",
    });
  });

  test("all pass: exit 0; with no paths every *.test.yaml of the config's folder and below, but not another deployment's", async () => {
    const passing = `${ENV}tests:
  - name: another component is not this route's business
    payload: { type: external_integration, data: { org_id: 1, entity: {}, action_config: { component_id: other } } }
    expect: { route: null, request: null, answer: { status: 404 } }
`;
    const dir = deployment({
      "a.test.yaml": passing,
      "nested/b.test.yml": passing,
      "other-site/config.yaml": "routes: []\n",
      "other-site/c.test.yaml": "not: a test file\n",
      "node_modules/d.test.yaml": "not: a test file\n",
      ".git/e.test.yaml": "not: a test file\n",
      "f.yaml": "not: a test file\n",
    });
    expect(await run(dir)).toEqual({
      code: 0,
      stdout: `PASS a.test.yaml: another component is not this route's business
PASS nested/b.test.yml: another component is not this route's business
2 passed, 0 failed
`,
      stderr: "",
    });
    expect((await run(dir, ["nested"])).stdout).toEndWith("1 passed, 0 failed\n");
  });

  test("SOAP: the request's operation content (soap_body), the answer read through response.transform, a fault mapped", async () => {
    const dir = deployment({
      "crm.test.yaml": `${ENV}tests:
  - name: created
    payload: payload.json
    route: crm-customer
    target_response: { body: { CreateCustomerResponse: { Ref: CRM-7 } } }
    expect:
      request:
        headers: { content-type: 'application/soap+xml; charset=utf-8' }
        soap_body: { Name: Contract 2026-0042, Number: C-100017 }
      answer: { status: 200, body: { ref: CRM-7 } }
  - name: refused
    payload: payload.json
    route: crm-customer
    target_response: { fault: { code: Sender, reason: exists already, subcode: Duplicate } }
    expect:
      answer:
        status: 502
        body: { error_output: { error_reason: "CRM: exists already", error_info: { fault_code: Sender, fault_subcode: Duplicate } } }
  - name: the envelope's text differs (nonce and time are new each call)
    payload: payload.json
    route: crm-customer
    expect: { request: { body: "<soap:Envelope/>" } }
`,
    });
    const result = await run(dir);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe(`PASS crm.test.yaml: created
PASS crm.test.yaml: refused
FAIL crm.test.yaml: the envelope's text differs (nonce and time are new each call)
  request.body: differs from character 2: expected "<soap:Envelope/>", got "<?xml version=\\"1.0\\" encoding=\\"utf-8\\"?><soap:Envelop"
2 passed, 1 failed
`);
    expect(result.stdout).not.toContain("test-password");
  });

  test("an async route answers 202; the request is what the first delivery attempt sends", async () => {
    const dir = deployment({
      "billing.test.yaml": `${ENV}tests:
  - name: stored, then sent
    payload: payload.json
    route: billing
    target_response: { status: 500 }
    expect:
      request: { url: "${legacy.url}/billing", headers: { idempotency-key: msg_local }, body: { type: external_integration } }
      answer: { status: 202, body: {} }
`,
    });
    expect(await run(dir)).toMatchObject({
      code: 0,
      stdout: "PASS billing.test.yaml: stored, then sent\n1 passed, 0 failed\n",
    });
  });

  test("a transform whose result is not data (a function) fails the test with the gateway's 500 transform_failed", async () => {
    const dir = deployment({
      "erp.test.yaml": `${ENV}tests:
  - name: expects a delivery
    payload: payload.json
    route: billing
    expect: { answer: { status: 200 } }
`,
    });
    writeFileSync(
      join(dir, "config.yaml"),
      config().replace("  - name: billing\n", "  - name: billing\n    transform: 'function($x) { $x }'\n"),
    );
    const result = await run(dir);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(
      /^FAIL erp\.test\.yaml: expects a delivery\n {2}answer\.status: expected 200, got 500/,
    );
  });

  test("credentials in a report are ***, whatever the header and however it differs", async () => {
    const dir = deployment({
      "erp.test.yaml": `${ENV}tests:
  - name: wrong token
    payload: payload.json
    expect: { request: { headers: { authorization: "Bearer other" } } }
`,
    });
    const result = await run(dir);
    expect(result.stdout).toContain('request.headers.authorization: expected "Bearer other", got "***"');
    expect(result.stdout).not.toContain("test-token");
  });

  test("the config sees the test file's env only, never the process's: a variable it lacks fails every test of the file", async () => {
    const dir = deployment({
      "erp.test.yaml": `env: { CRM_PASSWORD: x }
tests:
  - name: one
    payload: payload.json
    expect: { answer: { status: 200 } }
  - name: two
    payload: payload.json
    expect: { answer: { status: 200 } }
`,
    });
    process.env.ERP_TOKEN = "from-the-process";
    try {
      const result = await run(dir);
      expect(result.code).toBe(1);
      expect(result.stdout).toMatch(
        /^FAIL erp\.test\.yaml: .*config\.yaml does not load with this file's env\n {2}.*config\.yaml:\d+:\d+ routes\[0\] \(erp-contract\)\.target\.headers\.Authorization: environment variable ERP_TOKEN is not set/,
      );
      expect(result.stdout).toEndWith("0 passed, 2 failed\n");
    } finally {
      delete process.env.ERP_TOKEN;
    }
  });
});

describe("actiongate test: files that cannot be used (exit 2, nothing runs)", () => {
  test("unknown keys, missing keys and wrong types: every problem at once, as file:line:col key: message", async () => {
    const dir = deployment({
      "erp.test.yaml": `${ENV}tests:
  - name: typos
    payload: payload.json
    expcet: { answer: { status: 200 } }
  - name: more typos
    payload: payload.json
    target_response: { status: "ok", bdy: {} }
    expect: { answer: { stauts: 200 }, request: { header: {} } }
  - payload: payload.json
    target_response: { body: {}, fault: { code: Client, reason: x } }
    expect: {}
`,
    });
    expect(await run(dir)).toEqual({
      code: 2,
      stdout: "",
      stderr: `erp.test.yaml:3:5 tests[0].expect: is required
erp.test.yaml:5:5 tests[0].expcet: unknown key (known here: name, payload, set, route, target_response, expect)
erp.test.yaml:8:32 tests[1].target_response.status: must be a number
erp.test.yaml:8:38 tests[1].target_response.bdy: unknown key (known here: status, headers, body, fault)
erp.test.yaml:9:25 tests[1].expect.answer.stauts: unknown key (known here: status, body)
erp.test.yaml:9:51 tests[1].expect.request.header: unknown key (known here: method, url, headers, body, soap_body)
erp.test.yaml:10:5 tests[2].name: is required
erp.test.yaml:11:41 tests[2].target_response.fault: a SOAP answer holds a body or a fault, not both
`,
    });
  });

  test("YAML that does not parse: its line and column", async () => {
    const dir = deployment({ "erp.test.yaml": "tests:\n  - name: [unclosed\n" });
    const result = await run(dir);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^erp\.test\.yaml:\d+:\d+: /);
  });

  test("a set path, a payload file, a route or an expected route that does not exist; a payload that is no custom action", async () => {
    const dir = deployment({
      "erp.test.yaml": `${ENV}tests:
  - name: set
    payload: payload.json
    set: { data.entity.stauts: draft, data.entity.status: draft }
    expect: {}
  - name: file
    payload: missing.json
    expect: {}
  - name: not json
    payload: config.yaml
    expect: {}
  - name: route
    payload: payload.json
    route: erp-contarct
    expect: { route: crm }
  - name: not an action
    payload: { type: something }
    expect: {}
  - name: set
    payload: payload.json
    expect: {}
`,
    });
    const result = await run(dir);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
    const problems = result.stderr.split("\n").filter(Boolean);
    expect(problems).toEqual([
      'erp.test.yaml:5:12 tests[0].set.data.entity.stauts: does not exist in the payload (data.entity has no key "stauts")',
      "erp.test.yaml:8:14 tests[1].payload: cannot read missing.json (not found)",
      'erp.test.yaml:11:14 tests[2].payload: config.yaml is not valid JSON (JSON Parse error: Unexpected identifier "verification")',
      'erp.test.yaml:15:12 tests[3].route: config.yaml has no route "erp-contarct" (routes: erp-contract, crm-customer, billing)',
      'erp.test.yaml:16:22 tests[3].expect.route: config.yaml has no route "crm" (routes: erp-contract, crm-customer, billing)',
      'erp.test.yaml:18:14 tests[4].payload: not a custom action payload: type: Invalid input: expected "external_integration"; data: is required',
      'erp.test.yaml:20:11 tests[5].name: another test of this file is named "set"',
    ]);
  });

  test("a path that does not exist, or a folder without tests", async () => {
    const dir = deployment({});
    expect(await run(dir, ["nope.test.yaml"])).toMatchObject({ code: 2, stdout: "" });
    expect((await run(dir, ["nope.test.yaml"])).stderr).toContain("no such test file or folder");
    expect(await run(dir)).toMatchObject({
      code: 2,
      stderr: expect.stringContaining("no route tests (*.test.yaml) in"),
    });
  });
});

describe("actiongate validate --with-tests", () => {
  /** The deployment's own environment, which validate reads (the tests read their file's env). */
  const DEPLOYED_ENV = { ERP_TOKEN: "prod-token", CRM_PASSWORD: "prod-password" };
  const passing = `${ENV}tests:
  - name: approved
    payload: payload.json
    expect: { route: erp-contract, answer: { status: 200 } }
`;

  async function validate(dir: string) {
    const output = { stdout: "", stderr: "" };
    const { result: code, stderr } = await captureOutput(() =>
      validateCommand(
        join(dir, "config.yaml"),
        DEPLOYED_ENV,
        { withTests: true },
        { stdout: (text) => (output.stdout += text), stderr: (text) => (output.stderr += text) },
      ),
    );
    return { code, stdout: output.stdout.replaceAll(`${dir}/`, ""), stderr: output.stderr + stderr };
  }

  test("a valid config whose tests pass: exit 0, the summary line, then the tests", async () => {
    const result = await validate(deployment({ "erp.test.yaml": passing }));
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      /^.*config\.yaml: valid, 3 routes: erp-contract \(http\), crm-customer \(soap\), billing \(http\)\n.*config\.yaml: trusts v1a \(Ed25519\) with the key fetched from \S+; not epilot's key \(add public_key_url: epilot for calls from epilot\)\nPASS erp\.test\.yaml: approved\n1 passed, 0 failed\n$/,
    );
  });

  test("a failing test, an unusable test file or no tests at all: exit 1", async () => {
    const failing = passing.replace("status: 200", "status: 201");
    expect((await validate(deployment({ "erp.test.yaml": failing }))).code).toBe(1);
    expect((await validate(deployment({ "erp.test.yaml": "tests: []\n" }))).code).toBe(1);
    const none = await validate(deployment({}));
    expect(none.code).toBe(1);
    expect(none.stderr).toContain("no route tests (*.test.yaml)");
  });

  test("without --with-tests the tests are not run (an invalid one does not matter)", async () => {
    const dir = deployment({ "erp.test.yaml": "tests: []\n" });
    const { result: code } = await captureOutput(() => validateCommand(join(dir, "config.yaml"), DEPLOYED_ENV));
    expect(code).toBe(0);
  });
});
