import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { captureOutput } from "../../test/support/capture-output.ts";
import { tempDir } from "../../test/support/gateway.ts";
import { type RecordingServer, startRecordingServer } from "../../test/support/recording-server.ts";
import { fixturePayload } from "../../test/support/signing.ts";
import type { ExplainArguments } from "./args.ts";
import { explainCommand, humanDuration, indentXml } from "./explain.ts";

/** A legacy system and a key URL that must hear nothing from explain. */
let legacy: RecordingServer;
beforeAll(async () => {
  legacy = await startRecordingServer();
});
afterAll(async () => {
  expect(legacy.requests).toEqual([]);
  await legacy.close();
});

async function explain(
  yaml: string,
  args: Partial<ExplainArguments> = {},
  env: Record<string, string> = {},
  payload: unknown = fixturePayload(),
) {
  const dir = tempDir({ "config.yaml": yaml });
  const payloadFile = join(dir, "payload.json");
  writeFileSync(payloadFile, typeof payload === "string" ? payload : JSON.stringify(payload));
  let stdout = "";
  let stderr = "";
  const code = await explainCommand(
    { payloadFile, json: false, ...args },
    join(dir, "config.yaml"),
    { ...env },
    { stdout: (text) => (stdout += text), stderr: (text) => (stderr += text) },
  );
  return { code, stdout, stderr, payloadFile };
}

const parseJson = (text: string): any => JSON.parse(text);

const keyUrl = () => `verification: { public_key_url: "${legacy.url}/public-key" }`;

describe("actiongate explain: what a route would send", () => {
  test("text: one section per stage in request-path order, the request as sent, credentials as ***", async () => {
    const result = await explain(
      `${keyUrl()}
routes:
  - name: crm
    match: { component_id: crm-sync }
    target: { type: http, url: "${legacy.url}/crm" }
  - name: manual
    target: { type: http, url: "${legacy.url}/manual" }
  - name: erp-contract
    match: { component_id: erp-contract-sync }
    strip: [data.app_options.api_key]
    skip_when: data.entity.status != "approved"
    transform: '{ "contract": data.entity.contract_number, "status": data.entity.status }'
    target:
      type: http
      url: "${legacy.url}/api/contracts/{{ data.entity.contract_number & ' A' }}"
      method: PUT
      headers: { Authorization: "Bearer \${ERP_TOKEN}", X-Company: "1000" }
      timeout: 5s
`,
      {},
      { ERP_TOKEN: "s3cret-token" },
    );
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: "" });
    expect(
      result.stdout,
    ).toBe(`payload: ${result.payloadFile}: a custom action of org 739224 on contract 3f2c1a90-5d7e-4b8a-9c11-2f6e8d0b7a41 (component_id erp-contract-sync, action "Sync contract to ERP")

route: erp-contract, the first route whose match holds
  crm           component_id: wants "crm-sync", the payload has "erp-contract-sync" (data.action_config.component_id)
  manual        no match: reachable only by name (POST /actions/manual, --route)
  erp-contract  match holds

strip: removed data.app_options.api_key, data.trigger_event.caller

skip_when: did not hold

transform: its result
  {
    "contract": "2026-0042",
    "status": "approved"
  }

request: what the http target would receive
  PUT ${legacy.url}/api/contracts/2026-0042%20A
  user-agent: actiongate/0.1.0
  authorization: ***
  x-company: 1000
  content-type: application/json
  idempotency-key: msg_local

  {"contract":"2026-0042","status":"approved"}

delivery: sync; epilot waits for the target's answer (timeout 5s); a failure is answered at once, not retried
`);
    expect(result.stdout).not.toContain("s3cret-token");
  });

  test("--json: the contract's keys (route, skipped, skip_reason, stripped, body, request) plus match and delivery", async () => {
    const result = await explain(
      `${keyUrl()}
routes:
  - name: erp
    strip: [data.app_options.api_key]
    transform: '{ "contract": data.entity.contract_number }'
    target: { type: http, url: "${legacy.url}/erp", headers: { Authorization: "Bearer \${ERP_TOKEN}" } }
`,
      { json: true, route: "erp" },
      { ERP_TOKEN: "s3cret-token" },
    );
    expect(result.code).toBe(0);
    expect(parseJson(result.stdout)).toEqual({
      route: "erp",
      skipped: false,
      skip_reason: null,
      stripped: ["data.app_options.api_key", "data.trigger_event.caller"],
      body: { contract: "2026-0042" },
      request: {
        method: "POST",
        url: `${legacy.url}/erp`,
        headers: {
          "user-agent": "actiongate/0.1.0",
          authorization: "***",
          "content-type": "application/json",
          "idempotency-key": "msg_local",
        },
        body: '{"contract":"2026-0042"}',
      },
      match: [{ route: "erp", verdict: "taken" }],
      delivery: { mode: "sync", timeout_ms: 10_000 },
    });
  });

  test("a skip: exit 0, the reason epilot would get, nothing after it", async () => {
    const yaml = `${keyUrl()}
routes:
  - name: erp
    skip_when: data.entity.status = "approved"
    skip_reason: '"contract " & data.entity.contract_number & " is done"'
    target: { type: http, url: "${legacy.url}/erp" }
`;
    const text = await explain(yaml, { route: "erp" });
    expect(text.code).toBe(0);
    expect(text.stdout).toEndWith(
      `skip_when: held, so nothing is sent\n  epilot gets 200 {"skip_reason":"contract 2026-0042 is done"}\n`,
    );
    const json = await explain(yaml, { route: "erp", json: true });
    expect(parseJson(json.stdout)).toMatchObject({
      route: "erp",
      skipped: true,
      skip_reason: "contract 2026-0042 is done",
      body: null,
      request: null,
    });
  });

  test("a transform that fails: exit 1, the JSONata error with its code and position, pointed at in the expression", async () => {
    const yaml = `${keyUrl()}
routes:
  - name: erp
    transform: |
      {
        "cents": data.entity.status * 100
      }
    target: { type: http, url: "${legacy.url}/erp" }
`;
    const text = await explain(yaml, { route: "erp" });
    expect(text.code).toBe(1);
    expect(
      text.stdout,
    ).toEndWith(`transform: failed: JSONata T2001 at character 33: The left side of the "*" operator must evaluate to a number
    "cents": data.entity.status * 100
                                ^

  the gateway answers 500; nothing is sent
`);
    const json = await explain(yaml, { route: "erp", json: true });
    expect(json.code).toBe(1);
    expect(parseJson(json.stdout)).toMatchObject({
      route: "erp",
      body: null,
      request: null,
      error: {
        stage: "transform",
        code: "T2001",
        position: 33,
        message: 'The left side of the "*" operator must evaluate to a number',
      },
    });
  });

  test("no route matches: exit 1 and every route with the first match key that did not hold", async () => {
    const result = await explain(`${keyUrl()}
routes:
  - name: a
    match: { component_id: erp-contract-sync, entity_schema: [order, invoice] }
    target: { type: http, url: "${legacy.url}/a" }
  - name: b
    match: { org_id: 1 }
    target: { type: http, url: "${legacy.url}/b" }
`);
    expect(result.code).toBe(1);
    expect(result.stdout).toEndWith(`route: none; no route's match holds, so POST /actions answers 404
  a  entity_schema: wants "order" or "invoice", the payload has "contract" (data.entity._schema)
  b  org_id: wants "1", the payload has "739224" (data.org_id)
`);
  });

  test("a payload the target cannot send (a placeholder without a value): exit 1, the reason", async () => {
    const result = await explain(
      `${keyUrl()}
routes:
  - name: erp
    target: { type: http, url: "${legacy.url}/erp/{{ data.entity.erp_number }}" }
`,
      { route: "erp" },
    );
    expect(result.code).toBe(1);
    expect(result.stdout).toContain("request: cannot be built: ");
    expect(result.stdout).toContain("the gateway answers 400; nothing is sent");
  });

  test("an async route shows its retry schedule: attempts and the backoff bounds before each", async () => {
    const result = await explain(
      `${keyUrl()}
store: { path: ./never-opened.db }
routes:
  - name: billing
    target: { type: http, url: "${legacy.url}/billing", timeout: 3s }
    delivery: { mode: async, max_attempts: 9, backoff: { initial: 500ms, max: 10s } }
`,
      { route: "billing" },
    );
    expect(result.code).toBe(0);
    expect(
      result.stdout,
    ).toEndWith(`delivery: async; epilot gets 202 once the call is stored, then up to 9 attempts (timeout 3s each)
  attempt 1     at once
  attempt 2     after a random wait of up to 500ms
  attempt 3     after a random wait of up to 1s
  attempt 4     after a random wait of up to 2s
  attempt 5     after a random wait of up to 4s
  attempt 6     after a random wait of up to 8s
  attempts 7-9  after a random wait of up to 10s each
  then the dead letters; a 4xx answer or a SOAP Client fault goes there at once, a Retry-After is honoured
`);
    const json = await explain(
      `store: { path: ./never-opened.db }
routes:
  - name: billing
    target: { type: http, url: "${legacy.url}/billing" }
    delivery: { mode: async, max_attempts: 4, backoff: { initial: 1s, max: 2s } }
`,
      { route: "billing", json: true },
    );
    expect(parseJson(json.stdout).delivery).toEqual({
      mode: "async",
      timeout_ms: 10_000,
      max_attempts: 4,
      backoff: { initial_ms: 1000, max_ms: 2000 },
      retries: [
        { from_attempt: 2, to_attempt: 2, max_delay_ms: 1000 },
        { from_attempt: 3, to_attempt: 4, max_delay_ms: 2000 },
      ],
    });
  });
});

describe("actiongate explain: secrets never show", () => {
  const secrets = {
    ERP_TOKEN: "env-token-1",
    SVC_PASSWORD: "url-password-2",
    QUERY_TOKEN: "query-token-3",
    ORG_HEADER: "env-org-4",
    CRM_PASSWORD: "ws&<password>5",
    CRM_KEY: "soap-header&key-6",
    BASIC_PASSWORD: "basic-password-7",
  };

  test("http: ${ENV} header values, credential headers by name, the URL's password and secret query parameters", async () => {
    const yaml = `${keyUrl()}
routes:
  - name: erp
    target:
      type: http
      url: "http://svc:\${SVC_PASSWORD}@127.0.0.1:${legacy.port}/erp?api_key=\${QUERY_TOKEN}&page=1"
      headers:
        Authorization: "Bearer \${ERP_TOKEN}"
        X-Org: "\${ORG_HEADER}"
        X-Api-Key: literal-key-in-config
        X-Plain: shown
`;
    for (const json of [false, true]) {
      const result = await explain(yaml, { route: "erp", json }, secrets);
      expect(result.code).toBe(0);
      for (const secret of [...Object.values(secrets), "literal-key-in-config"])
        expect(result.stdout).not.toContain(secret);
      expect(result.stdout).toContain(`http://svc:***@127.0.0.1:${legacy.port}/erp?api_key=***&page=1`);
      expect(result.stdout).toContain("shown");
    }
    const json = parseJson((await explain(yaml, { route: "erp", json: true }, secrets)).stdout);
    expect(json.request.headers).toMatchObject({
      authorization: "***",
      "x-org": "***",
      "x-api-key": "***",
      "x-plain": "shown",
    });
  });

  test("soap: the whole envelope, WS-Security password (text or digest), basic auth and ${ENV} header blocks masked", async () => {
    for (const passwordType of ["PasswordText", "PasswordDigest"]) {
      const yaml = `${keyUrl()}
routes:
  - name: crm
    target:
      type: soap
      url: "${legacy.url}/crm"
      operation: CreateCustomer
      namespace: "urn:crm"
      basic_auth: { username: gw, password: "\${BASIC_PASSWORD}" }
      soap_headers:
        - { name: ApiKey, value: "\${CRM_KEY}" }
        - { name: Channel, value: epilot }
      ws_security: { username: crm-gateway, password: "\${CRM_PASSWORD}", password_type: ${passwordType} }
`;
      for (const json of [false, true]) {
        const result = await explain(yaml, { route: "crm", json }, secrets);
        expect(result.code).toBe(0);
        for (const secret of Object.values(secrets)) expect(result.stdout).not.toContain(secret);
        expect(result.stdout).not.toContain("ws&amp;&lt;password&gt;5");
        expect(result.stdout).not.toContain("soap-header&amp;key-6");
        expect(result.stdout).not.toContain(Buffer.from(`gw:${secrets.BASIC_PASSWORD}`).toString("base64"));
        expect(result.stdout).toContain("crm-gateway");
        expect(result.stdout).toContain("epilot</h1:Channel>");
      }
      const json = parseJson((await explain(yaml, { route: "crm", json: true }, secrets)).stdout);
      expect(json.request.headers.authorization).toBe("***");
      expect(json.request.body).toStartWith('<?xml version="1.0" encoding="utf-8"?><soap:Envelope');
      expect(json.request.body).toMatch(/<wsse:Password Type="[^"]+#[A-Za-z]+">\*\*\*<\/wsse:Password>/);
      expect(json.request.body).toContain('<h0:ApiKey xmlns:h0="urn:crm">***</h0:ApiKey>');
    }
  });
});

describe("actiongate explain: bad input", () => {
  const yaml = (headers = "") => `${keyUrl()}
routes:
  - name: erp
    target: { type: http, url: "${legacy.url}/erp"${headers} }
`;

  test("exit 2: a payload that is not JSON, not a custom action, a Pollable Outbound message, or not there", async () => {
    const notJson = await explain(yaml(), {}, {}, "{ not json");
    expect(notJson.code).toBe(2);
    expect(notJson.stderr).toStartWith(`actiongate: ${notJson.payloadFile} is not valid JSON (`);
    expect(notJson.stdout).toBe("");

    const notAction = await explain(yaml(), {}, {}, { type: "something" });
    expect(notAction).toMatchObject({ code: 2, stdout: "" });
    expect(notAction.stderr).toContain("not a custom action payload: type: ");

    const poll = await explain(yaml(), {}, {}, { id: "1", event_id: "e", payload: {} });
    expect(poll.code).toBe(2);
    expect(poll.stderr).toContain("a Pollable Outbound message");

    let stderr = "";
    const missing = await explainCommand(
      { payloadFile: "/nonexistent/payload.json", json: false },
      "config.yaml",
      {},
      { stdout: () => {}, stderr: (text) => (stderr += text) },
    );
    expect({ missing, stderr }).toEqual({
      missing: 2,
      stderr: "actiongate: cannot read the payload file /nonexistent/payload.json (not found)\n",
    });
  });

  test("exit 2: a --route the config does not have, named with the routes it has", async () => {
    const result = await explain(yaml(), { route: "nope" });
    expect(result.code).toBe(2);
    expect(result.stderr).toEndWith(`config.yaml has no route "nope" (routes: erp)\n`);
  });

  test("exit 1: a config with problems (a variable not set), printed as validate prints them; nothing on stdout", async () => {
    const { result, stderr } = await captureOutput(() =>
      explain(yaml(', headers: { Authorization: "Bearer ${ERP_TOKEN}" }'), { route: "erp" }),
    );
    expect(result).toMatchObject({ code: 1, stdout: "" });
    expect(stderr).toMatch(
      /config\.yaml:\d+:\d+ routes\[0\] \(erp\)\.target\.headers\.Authorization: environment variable ERP_TOKEN is not set/,
    );
  });
});

describe("helpers", () => {
  test.each([
    [500, "500ms"],
    [1000, "1s"],
    [256_000, "4m16s"],
    [5_400_000, "1h30m"],
  ])("humanDuration(%p) = %p", (ms, text) => {
    expect(humanDuration(ms)).toBe(text);
  });

  test("indentXml: one element a line, text-only elements on theirs; comments left as they are", () => {
    expect(indentXml('<?xml version="1.0"?><a x="1"><b>1</b><c/><d></d><e><f>2</f></e></a>')).toBe(
      '<?xml version="1.0"?>\n<a x="1">\n  <b>1</b>\n  <c/>\n  <d></d>\n  <e>\n    <f>2</f>\n  </e>\n</a>',
    );
    expect(indentXml("<a><!-- c --></a>")).toBeUndefined();
  });
});
