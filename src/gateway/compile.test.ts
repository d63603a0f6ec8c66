import { afterAll, describe, expect, test } from "bun:test";
import { generateKeyPairSync } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parsedCallOf, parsedMessageOf } from "../../test/support/calls.ts";
import { checkedFixture } from "../../test/support/payloads.ts";
import { loadConfigText } from "../config/load.ts";
import { ConfigError } from "../kit/config-errors.ts";
import { silentLogger } from "../log/logger.ts";
import { stripPaths } from "../transform/strip.ts";
import { EPILOT_PUBLIC_KEY_URLS } from "../verify/schema.ts";
import { type CompiledConfig, compileConfig, describeTrustedKeys } from "./compile.ts";

const dir = mkdtempSync(join(tmpdir(), "actiongate-compile-"));
const file = join(dir, "config.yaml");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ed25519 = generateKeyPairSync("ed25519");
const pem = ed25519.publicKey.export({ type: "spki", format: "pem" }).toString();
const whpk = `whpk_${Buffer.from(ed25519.publicKey.export({ format: "jwk" }).x!, "base64url").toString("base64")}`;
writeFileSync(join(dir, "epilot.pem"), pem);
writeFileSync(join(dir, "epilot-key.json"), JSON.stringify({ public_key: pem, algorithm: "EdDSA" }));
writeFileSync(join(dir, "garbage.pem"), "this is not a key\n");
writeFileSync(
  join(dir, "rsa.pem"),
  generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "pem" }),
);
mkdirSync(join(dir, "a-folder.pem"));

const SECRET = `whsec_${Buffer.from("0123456789abcdef0123456789abcdef").toString("base64")}`;
const payload = checkedFixture();

const ROUTE = `routes:
  - name: erp
    target: { type: http, url: "http://127.0.0.1:8081/api" }
`;

const open: CompiledConfig[] = [];
afterAll(() => Promise.all(open.map((compiled) => compiled.close())));

function compile(text: string, env: Record<string, string> = {}): CompiledConfig {
  const compiled = compileConfig(loadConfigText(file, text, env), {
    logger: silentLogger,
    userAgent: "actiongate-test",
  });
  open.push(compiled);
  return compiled;
}

/** The lines `actiongate validate` would print, with the temp folder written as `config.yaml`'s own. */
function problemsOf(text: string): string[] {
  try {
    compile(text);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    expect(error.file).toBe(file);
    return error.message.split("\n").map((line) => line.replaceAll(dir, "<dir>"));
  }
  throw new Error("expected the config to be refused");
}

describe("compileConfig: a valid config", () => {
  const compiled = compile(
    `verification:
  secrets: ["\${WEBHOOK_SECRET}"]
routes:
  - name: erp-contract
    match:
      component_id: erp-contract-sync
      org_id: 739224
    strip: [data.app_options.api_key]
    forward_headers: [X-Epilot-Token]
    skip_when: data.entity.status != "approved"
    skip_reason: '"not approved: " & data.entity.contract_number'
    transform: '{ "contract": data.entity.contract_number }'
    target:
      type: http
      url: http://127.0.0.1:8081/api/contracts/{{ data.entity.contract_number }}
      headers: { X-Org: "{{ data.org_id }}" }
    response:
      transform: '{ "id": body.id }'
      fail_when: body.success = false
      error_reason: body.message
  - name: crm
    forward_caller: true
    target: { type: http, url: "http://127.0.0.1:8082/crm" }
`,
    { WEBHOOK_SECRET: SECRET },
  );

  test("exposes the routes in file order, with their target type", () => {
    expect(compiled.routes.map((route) => [route.name, route.targetType])).toEqual([
      ["erp-contract", "http"],
      ["crm", "http"],
    ]);
    expect(compiled.routes[0]!.target.type).toBe("http");
    expect(compiled.source.routes[0]!.name).toBe("erp-contract");
  });

  test("compiles match rules into a predicate; a route without match has none", async () => {
    const [erp, crm] = compiled.routes;
    expect(erp!.matches?.(await parsedCallOf())).toBe(true);
    const otherOrg = await parsedCallOf((raw) => {
      raw.data.org_id = "1";
    });
    expect(erp!.matches?.(otherOrg)).toBe(false);
    expect(crm!.matches).toBeUndefined();
  });

  test("strips data.trigger_event.caller by default, after the configured paths", () => {
    const erp = compiled.routes[0]!;
    expect(erp.shaping.strip).toEqual([
      ["data", "app_options", "api_key"],
      ["data", "trigger_event", "caller"],
    ]);
    const stripped = stripPaths(payload, erp.shaping.strip) as typeof payload & {
      data: { trigger_event: Record<string, unknown> };
    };
    expect(stripped.data.trigger_event.caller).toBeUndefined();
    expect(stripped.data.trigger_event.entity_id).toBe("3f2c1a90-5d7e-4b8a-9c11-2f6e8d0b7a41");
    expect(stripped.data.app_options).toEqual({ erp_client: "100" });
  });

  test("forward_caller: true keeps the caller", () => {
    expect(compiled.routes[1]!.shaping.strip).toEqual([]);
  });

  test("forward_headers are lower-cased", () => {
    expect(compiled.routes[0]!.forwardHeaders).toEqual(["x-epilot-token"]);
    expect(compiled.routes[1]!.forwardHeaders).toEqual([]);
  });

  test("every expression is compiled once and evaluates", async () => {
    const erp = compiled.routes[0]!;
    expect(await erp.shaping.transform?.evaluate(payload)).toEqual({ contract: "2026-0042" });
    expect(await erp.shaping.skipWhen?.evaluate(payload)).toBe(false);
    expect(await erp.shaping.skipReason?.evaluate(payload)).toBe("not approved: 2026-0042");
    const answer = { status: 200, headers: {}, body: { id: 7, success: false, message: "closed" } };
    expect(await erp.response.transform?.evaluate(answer)).toEqual({ id: 7 });
    expect(await erp.response.failWhen?.evaluate(answer)).toBe(true);
    expect(await erp.response.errorReason?.evaluate(answer)).toBe("closed");
  });

  test("a route without expressions has none", () => {
    const crm = compiled.routes[1]!;
    expect(crm.shaping.transform).toBeUndefined();
    expect(crm.shaping.skipWhen).toBeUndefined();
    expect(crm.response).toEqual({});
  });

  test("verification: secrets only fetch no key (nothing to wait for), secrets decoded, tolerance in ms", () => {
    expect(compiled.verification.remoteKeySource).toBeUndefined();
    expect(compiled.verification.keySource).toBeUndefined();
    expect(compiled.verification.hmacSecrets.map((secret) => secret.toString())).toEqual([
      "0123456789abcdef0123456789abcdef",
    ]);
    expect(compiled.verification.toleranceMs).toBe(300_000);
    expect(describeTrustedKeys(compiled.verification.trusted)).toBe(
      "trusts v1 (HMAC) with 1 secret (verification.secrets); not epilot's key (add public_key_url: epilot for calls from epilot)",
    );
  });

  test("routes of polled messages: matched on the message, ordered by their order key; no key is fetched without call routes", async () => {
    const polled = compile(`store: { path: store.db }
poll: [{ name: feed, integration_id: i, token: t }]
routes:
  - name: contracts
    match: { source: feed, event_name: contract.updated }
    use_case_slug: contract_sync
    target: { type: http, url: "http://127.0.0.1:8081/api" }
    delivery: { order_key: payload.contract._id }
`);
    const [route] = polled.routes;
    expect(route?.matches).toBeUndefined();
    expect(route?.matchesMessage?.(parsedMessageOf(() => {}, "feed"))).toBe(true);
    expect(route?.matchesMessage?.(parsedMessageOf(() => {}, "other"))).toBe(false);
    expect(route?.matchesMessage?.(parsedMessageOf((raw) => (raw.event_name = "contract.created"), "feed"))).toBe(
      false,
    );
    expect(route?.delivery.mode).toBe("async");
    expect(await route?.delivery.orderKey?.evaluate({ payload: { contract: { _id: "c-1" } } })).toBe("c-1");
    expect(route?.useCaseSlug).toBe("contract_sync");
    // A message has no caller: nothing of one is stripped.
    expect(route?.shaping.strip).toEqual([]);
    expect(polled.verification.remoteKeySource).toBeUndefined();
    expect(polled.verification.keySource).toBeUndefined();
  });

  test("close() resolves, and may be called again", async () => {
    const other = compile(ROUTE);
    await other.close();
    await other.close();
  });
});

describe("compileConfig: public keys", () => {
  test.each([
    ["an inline whpk_ key", `public_key: "${whpk}"`],
    ["an inline PEM", `public_key: |\n    ${pem.trim().split("\n").join("\n    ")}`],
    ["a PEM file, relative to the config's folder", "public_key_file: ./epilot.pem"],
    ["epilot's JSON key document in a file", "public_key_file: epilot-key.json"],
  ])("%s is imported at load, with no URL to fetch", (_, line) => {
    const compiled = compile(`verification:\n  ${line}\n${ROUTE}`);
    expect(compiled.verification.remoteKeySource).toBeUndefined();
    const keys = compiled.verification.keySource!.current();
    expect(keys).toHaveLength(1);
    expect(keys[0]!.asymmetricKeyType).toBe("ed25519");
    expect(keys[0]!.equals(ed25519.publicKey)).toBe(true);
    expect(compiled.verification.keySource!.awaitingKey()).toBe(false);
  });

  test("no key configured at all: epilot's two key URLs, fetched once started, waited for", () => {
    const compiled = compile(ROUTE);
    expect(compiled.verification.remoteKeySource!.urls).toEqual([...EPILOT_PUBLIC_KEY_URLS]);
    expect(compiled.verification.remoteKeySource!.fetchedAt()).toBeUndefined();
    expect(compiled.verification.keySource!.current()).toEqual([]);
    expect(compiled.verification.keySource!.awaitingKey()).toBe(true);
    expect(describeTrustedKeys(compiled.verification.trusted)).toBe(
      "trusts v1a (Ed25519) with the keys fetched from https://cdn.app.sls.epilot.io/v1/.well-known/public-key and https://app.sls.epilot.io/v1/public/.well-known/public-key (epilot's, by default)",
    );
  });

  test("a local key alone: epilot's key is not fetched, nothing is waited for, and the summary says so", () => {
    const compiled = compile(`verification:\n  public_key: "${whpk}"\n${ROUTE}`);
    expect(compiled.verification.remoteKeySource).toBeUndefined();
    expect(describeTrustedKeys(compiled.verification.trusted)).toBe(
      "trusts v1a (Ed25519) with verification.public_key; not epilot's key (add public_key_url: epilot for calls from epilot)",
    );
  });

  test("public_key and public_key_file together: both keys are trusted", () => {
    const other = generateKeyPairSync("ed25519");
    const otherWhpk = `whpk_${Buffer.from(other.publicKey.export({ format: "jwk" }).x!, "base64url").toString("base64")}`;
    const compiled = compile(`verification:\n  public_key: "${otherWhpk}"\n  public_key_file: ./epilot.pem\n${ROUTE}`);
    const keys = compiled.verification.keySource!.current();
    expect(keys.map((key) => key.equals(other.publicKey) || key.equals(ed25519.publicKey))).toEqual([true, true]);
    expect(keys).toHaveLength(2);
  });

  test("public_key_url: epilot beside a local key and secrets: every one is trusted, epilot's URLs waited for", () => {
    const compiled = compile(
      `verification:\n  public_key: "${whpk}"\n  public_key_url: epilot\n  secrets: ["${SECRET}"]\n${ROUTE}`,
    );
    expect(compiled.verification.remoteKeySource!.urls).toEqual([...EPILOT_PUBLIC_KEY_URLS]);
    expect(compiled.verification.keySource!.current()).toHaveLength(1);
    expect(compiled.verification.keySource!.awaitingKey()).toBe(true);
    expect(compiled.verification.hmacSecrets).toHaveLength(1);
    expect(describeTrustedKeys(compiled.verification.trusted)).toBe(
      "trusts v1a (Ed25519) with verification.public_key, the keys fetched from https://cdn.app.sls.epilot.io/v1/.well-known/public-key and https://app.sls.epilot.io/v1/public/.well-known/public-key; v1 (HMAC) with 1 secret (verification.secrets)",
    );
  });

  test("public_key_url as a list, epilot among them, each URL once", () => {
    const compiled = compile(
      `verification:\n  public_key_url: [http://127.0.0.1:9/key, epilot, "${EPILOT_PUBLIC_KEY_URLS[0]}"]\n${ROUTE}`,
    );
    expect(compiled.verification.remoteKeySource!.urls).toEqual(["http://127.0.0.1:9/key", ...EPILOT_PUBLIC_KEY_URLS]);
  });

  test("one URL that is not epilot's: trusted, and the summary says epilot's key is not", () => {
    const compiled = compile(`verification:\n  public_key_url: http://127.0.0.1:9/key\n${ROUTE}`);
    expect(describeTrustedKeys(compiled.verification.trusted)).toBe(
      "trusts v1a (Ed25519) with the key fetched from http://127.0.0.1:9/key; not epilot's key (add public_key_url: epilot for calls from epilot)",
    );
  });

  test("a key file that is not a key", () => {
    expect(problemsOf(`verification:\n  public_key_file: ./garbage.pem\n${ROUTE}`)).toEqual([
      "<dir>/config.yaml:2:20 verification.public_key_file: expected a PEM public key, a whpk_ key or epilot's JSON key document",
    ]);
  });

  test("a key file that does not exist names the resolved path", () => {
    expect(problemsOf(`verification:\n  public_key_file: keys/nope.pem\n${ROUTE}`)).toEqual([
      "<dir>/config.yaml:2:20 verification.public_key_file: file not found: <dir>/keys/nope.pem",
    ]);
  });

  test("a key file that cannot be read", () => {
    expect(problemsOf(`verification:\n  public_key_file: ./a-folder.pem\n${ROUTE}`)).toEqual([
      "<dir>/config.yaml:2:20 verification.public_key_file: cannot read <dir>/a-folder.pem (EISDIR)",
    ]);
  });

  test("a key that is not Ed25519", () => {
    expect(problemsOf(`verification:\n  public_key_file: ./rsa.pem\n${ROUTE}`)).toEqual([
      "<dir>/config.yaml:2:20 verification.public_key_file: key is rsa, not ed25519",
    ]);
  });

  test("a whpk_ key of the wrong length", () => {
    expect(problemsOf(`verification:\n  public_key: whpk_c2hvcnQ=\n${ROUTE}`)).toEqual([
      "<dir>/config.yaml:2:15 verification.public_key: whpk_ key must hold 32 bytes of base64",
    ]);
  });
});

describe("compileConfig: problems", () => {
  test("bad whsec_ secrets are each named by index", () => {
    expect(
      problemsOf(`verification:
  secrets:
    - whsec_not base64!
    - whsec_c2hvcnQ=
    - ${SECRET}
${ROUTE}`),
    ).toEqual([
      "<dir>/config.yaml:3:7 verification.secrets[0]: HMAC secret must be whsec_ followed by base64",
      "<dir>/config.yaml:4:7 verification.secrets[1]: HMAC secret must hold at least 16 bytes",
    ]);
  });

  test("JSONata syntax errors in every expression key, across routes, all reported together in file order", () => {
    const lines = problemsOf(`routes:
  - name: erp
    transform: '{ "a": }'
    response:
      error_reason: body.[
      fail_when: body.success =
      transform: '{ "id": body.id'
    target:
      type: http
      url: http://erp/api
    skip_reason: '"a" &'
    skip_when: data.(
  - name: crm
    transform: '[1, 2'
    target: { type: http, url: "http://crm/api" }
`);
    expect(lines.map((line) => line.replace(/JSONata syntax error.*/, "JSONata syntax error"))).toEqual([
      "<dir>/config.yaml:3:24 routes[0] (erp).transform: JSONata syntax error",
      "<dir>/config.yaml:5:26 routes[0] (erp).response.error_reason: JSONata syntax error",
      "<dir>/config.yaml:6:31 routes[0] (erp).response.fail_when: JSONata syntax error",
      "<dir>/config.yaml:7:33 routes[0] (erp).response.transform: JSONata syntax error",
      "<dir>/config.yaml:11:23 routes[0] (erp).skip_reason: JSONata syntax error",
      "<dir>/config.yaml:12:21 routes[0] (erp).skip_when: JSONata syntax error",
      "<dir>/config.yaml:14:21 routes[1] (crm).transform: JSONata syntax error",
    ]);
  });

  test("a JSONata syntax error points at the character and gives JSONata's reason", () => {
    expect(
      problemsOf(
        `routes:\n  - name: erp\n    transform: '{ "a": }'\n    target: { type: http, url: "http://erp/api" }\n`,
      ),
    ).toEqual([
      '<dir>/config.yaml:3:24 routes[0] (erp).transform: JSONata syntax error: The symbol "}" cannot be used as a unary operator',
    ]);
  });

  test("a bad {{ }} placeholder in target.url or a header value names the key", () => {
    const lines = problemsOf(`routes:
  - name: erp
    target:
      type: http
      url: http://erp/api/{{ data.( }}
  - name: crm
    target:
      type: http
      url: http://crm/api
      headers:
        X-Ok: "{{ data.org_id }}"
        X-Entity: "{{ data.entity.[ }}"
`);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(
      /^<dir>\/config\.yaml:5:12 routes\[0\] \(erp\)\.target\.url: (invalid \{\{ \}\} expression|JSONata syntax error)\b.*\S/,
    );
    expect(lines[1]).toMatch(
      /^<dir>\/config\.yaml:12:19 routes\[1\] \(crm\)\.target\.headers\.X-Entity: (invalid \{\{ \}\} expression|JSONata syntax error)\b.*\S/,
    );
  });

  test("a target URL that is not absolute http(s)", () => {
    expect(
      problemsOf(`routes:
  - name: erp
    target: { type: http, url: "/api/contracts" }
  - name: crm
    target: { type: http, url: "ftp://crm/{{ data.org_id }}" }
`),
    ).toEqual([
      '<dir>/config.yaml:3:32 routes[0] (erp).target.url: must be an absolute http(s) URL (got "/api/contracts")',
      '<dir>/config.yaml:5:32 routes[1] (crm).target.url: must be an absolute http(s) URL (got "ftp://crm/{{ data.org_id }}")',
    ]);
  });

  test("key, secret, expression and target problems come together", () => {
    const lines = problemsOf(`routes:
  - name: erp
    target: { type: http, url: "/relative" }
    transform: '{'
verification:
  secrets: [whsec_c2hvcnQ=]
  public_key_file: ./garbage.pem
`);
    expect(lines.map((line) => line.split(": ")[0])).toEqual([
      "<dir>/config.yaml:3:32 routes[0] (erp).target.url",
      "<dir>/config.yaml:4:17 routes[0] (erp).transform",
      "<dir>/config.yaml:6:13 verification.secrets[0]",
      "<dir>/config.yaml:7:20 verification.public_key_file",
    ]);
  });

  test("ConfigError.problems carry path, line and column", () => {
    let caught: unknown;
    try {
      compile(`routes:\n  - name: erp\n    transform: '{'\n    target: { type: http, url: "http://erp/api" }\n`);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    // The column of the `{` inside the quotes: where JSONata found the expression unfinished.
    expect((caught as ConfigError).problems).toMatchObject([{ path: ["routes", 0, "transform"], line: 3, column: 17 }]);
  });
});
