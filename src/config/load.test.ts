import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "../kit/config-errors.ts";
import { targetDefinitions } from "../targets/registry.ts";
import { EPILOT_PUBLIC_KEY_URL } from "../verify/schema.ts";
import { type LoadedConfig, loadConfigFile, loadConfigText } from "./load.ts";

/** `http, soap`: every registered type, so the test holds as types are added. */
const TARGET_TYPES = targetDefinitions.map((definition) => definition.type).join(", ");

const ROUTE = `routes:
  - name: erp
    target:
      type: http
      url: http://127.0.0.1:8081/api
`;

/** The lines `actiongate validate` would print for this text. */
function problemsOf(text: string, env: Record<string, string> = {}): string[] {
  try {
    loadConfigText("config.yaml", text, env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return error.message.split("\n");
  }
  throw new Error("expected the config to be refused");
}

function load(text: string, env: Record<string, string> = {}): LoadedConfig {
  return loadConfigText("config.yaml", text, env);
}

describe("loadConfigText: a valid config", () => {
  test("applies every default", () => {
    const { config } = load(ROUTE);
    expect(config.server).toMatchObject({
      host: "0.0.0.0",
      port: 8080,
      max_body_size: 1_048_576,
      shutdown_timeout: 10_000,
    });
    expect(config.verification).toMatchObject({
      secrets: [],
      tolerance: 300_000,
      key_refresh_interval: 3_600_000,
    });
    expect(config.verification.public_key).toBeUndefined();
    // No URL is written into the config: epilot's are the default only while no key is configured (compile.ts).
    expect(config.verification.public_key_url).toBeUndefined();
    expect(config.verification.public_key_file).toBeUndefined();
    expect(config.log).toMatchObject({ level: "info" });
    expect(config.routes).toMatchObject([
      {
        name: "erp",
        strip: [],
        forward_headers: [],
        forward_caller: false,
        target: {
          type: "http",
          url: "http://127.0.0.1:8081/api",
          method: "POST",
          headers: {},
          timeout: 10_000,
          idempotency_header: "Idempotency-Key",
          connections: 32,
          max_response_size: 10_485_760,
        },
      },
    ]);
  });

  test("the documented default key URL is epilot's", () => {
    expect(EPILOT_PUBLIC_KEY_URL).toBe("https://cdn.app.sls.epilot.io/v1/.well-known/public-key");
  });

  test("reads durations and sizes into milliseconds and bytes", () => {
    const { config } = load(`server:
  max_body_size: 64kb
  shutdown_timeout: 500ms
verification:
  tolerance: 10s
  key_refresh_interval: 1h
routes:
  - name: erp
    target: { type: http, url: "http://erp/api", timeout: 5m, max_response_size: 1mb }
`);
    expect(config.server.max_body_size).toBe(65_536);
    expect(config.server.shutdown_timeout).toBe(500);
    expect(config.verification.tolerance).toBe(10_000);
    expect(config.verification.key_refresh_interval).toBe(3_600_000);
    expect(config.routes[0]!.target).toMatchObject({ timeout: 300_000, max_response_size: 1_048_576 });
  });

  test("a match value may be a string or a list (any of); numbers such as org ids are read as strings", () => {
    const { config } = load(`routes:
  - name: erp
    match:
      component_id: erp-contract-sync
      action_name: [Sync contract, Sync order]
      org_id: 739224
      app_id: [app-1, 42]
    target: { type: http, url: "http://erp/api" }
`);
    expect(config.routes[0]!.match).toEqual({
      component_id: "erp-contract-sync",
      action_name: ["Sync contract", "Sync order"],
      org_id: "739224",
      app_id: ["app-1", "42"],
    });
  });

  test("interpolates ${VAR} and ${VAR:-default}, and an interpolated plain number stays a number", () => {
    const { config } = load(
      `server:
  port: \${PORT:-8080}
routes:
  - name: erp
    forward_caller: \${FORWARD_CALLER:-false}
    target:
      type: http
      url: \${ERP_URL}/api
      headers: { Authorization: "Bearer \${ERP_TOKEN}", X-Literal: "$\${NOT_A_VAR}" }
`,
      { PORT: "9090", ERP_URL: "http://erp.internal:8081", ERP_TOKEN: "t0k" },
    );
    expect(config.server.port).toBe(9090);
    expect(config.routes[0]!.forward_caller).toBe(false);
    expect(config.routes[0]!.target).toMatchObject({
      url: "http://erp.internal:8081/api",
      headers: { Authorization: "Bearer t0k", "X-Literal": "${NOT_A_VAR}" },
    });
  });

  test("a quoted value stays a string, even when it reads as a number", () => {
    const { config } = load(
      `routes:
  - name: erp
    target:
      type: http
      url: http://erp/api
      headers: { X-Client-Id: "\${CLIENT_ID}" }
`,
      { CLIENT_ID: "0042" },
    );
    expect(config.routes[0]!.target.headers).toEqual({ "X-Client-Id": "0042" });
  });

  test("keys are not interpolated", () => {
    expect(problemsOf(`\${KEY}: 1\n${ROUTE}`, { KEY: "server" })).toEqual([
      "config.yaml:1:1 ${KEY}: unknown key (known here: $schema, server, admin, verification, log, store, epilot, poll, telemetry, routes)",
    ]);
  });

  test("accepts a $schema key for editors", () => {
    expect(load(`$schema: ./docs/config.schema.json\n${ROUTE}`).config.$schema).toBe("./docs/config.schema.json");
  });

  test("locate() finds a key path's line and column, for problems found after the schema", () => {
    const loaded = load(`# comment
${ROUTE}`);
    expect(loaded.locate(["routes", 0, "target", "url"])).toEqual({ line: 6, column: 12 });
    expect(loaded.locate(["routes", 0, "name"])).toEqual({ line: 3, column: 11 });
  });
});

describe("loadConfigText: problems", () => {
  test("every problem is reported at once, sorted by line, as file:line:col key.path: message", () => {
    expect(
      problemsOf(`server:
  port: eighty
  max_body_size: huge
verification:
  tolerance: 5 minutes
routes:
  - name: erp
    transfrom: "x"
    target:
      type: http
      url: http://erp/api
      timeout: 10 seconds
  - name: erp
    target: { type: http, url: "http://erp/\${MISSING}" }
`),
    ).toEqual([
      "config.yaml:2:9 server.port: must be a number",
      'config.yaml:3:18 server.max_body_size: must be a size such as 512kb or 1mb (got "huge")',
      'config.yaml:5:14 verification.tolerance: must be a duration such as 500ms, 10s or 5m (got "5 minutes")',
      'config.yaml:8:5 routes[0] (erp).transfrom: unknown key, did you mean "transform"?',
      'config.yaml:12:16 routes[0] (erp).target.timeout: must be a duration such as 500ms, 10s or 5m (got "10 seconds")',
      'config.yaml:13:11 routes[1] (erp).name: duplicate route name "erp"',
      "config.yaml:14:32 routes[1] (erp).target.url: environment variable MISSING is not set (set it, or write ${MISSING:-default} where a default is safe)",
    ]);
  });

  test("unknown keys at every level point at the key itself", () => {
    expect(
      problemsOf(`server:
  port: 8080
  prot: 8081
verificaton: {}
routes:
  - name: erp
    strip_paths: [a.b]
    target:
      type: http
      url: http://erp/api
      methd: PUT
    response:
      fail_wen: body.ok = false
`),
    ).toEqual([
      'config.yaml:3:3 server.prot: unknown key, did you mean "port"?',
      'config.yaml:4:1 verificaton: unknown key, did you mean "verification"?',
      "config.yaml:7:5 routes[0] (erp).strip_paths: unknown key (known here: name, match, strip, forward_headers, forward_caller, skip_when, skip_reason, transform, target, response, delivery, use_case_slug)",
      'config.yaml:11:7 routes[0] (erp).target.methd: unknown key, did you mean "method"?',
      'config.yaml:13:7 routes[0] (erp).response.fail_wen: unknown key, did you mean "fail_when"?',
    ]);
  });

  test("unknown keys in match and log are refused too", () => {
    expect(
      problemsOf(`log: { level: info, format: text }
routes:
  - name: erp
    match: { component: erp }
    target: { type: http, url: "http://erp/api" }
`),
    ).toEqual([
      "config.yaml:1:21 log.format: unknown key (known here: level)",
      "config.yaml:4:12 routes[0] (erp).match: must list at least one key",
      'config.yaml:4:14 routes[0] (erp).match.component: unknown key, did you mean "component_id"?',
    ]);
  });

  test("a missing required key points at the mapping that lacks it", () => {
    expect(
      problemsOf(`routes:
  - target:
      type: http
  - name: crm
`),
    ).toEqual([
      "config.yaml:2:5 routes[0].name: is required",
      "config.yaml:3:7 routes[0].target.url: is required",
      "config.yaml:4:5 routes[1] (crm).target: is required",
    ]);
  });

  test("an empty file needs routes", () => {
    expect(problemsOf("")).toEqual(["config.yaml routes: is required"]);
    expect(problemsOf("# nothing yet\n")).toEqual(["config.yaml routes: is required"]);
  });

  test("an empty route list is refused", () => {
    expect(problemsOf("routes: []\n")).toEqual(["config.yaml:1:9 routes: must list at least one route"]);
  });

  test("wrong types are named in the operator's words", () => {
    expect(
      problemsOf(`server: 8080
verification:
  secrets: whsec_abc
log:
  level: [info]
routes:
  - name: erp
    strip: data.trigger_event
    forward_caller: "yes"
    target:
      type: http
      url: http://erp/api
      connections: 1.5
      headers: [Authorization]
`),
    ).toEqual([
      "config.yaml:1:9 server: must be a mapping",
      "config.yaml:3:12 verification.secrets: must be a list",
      "config.yaml:5:10 log.level: must be one of: debug, info, warn, error (got a list)",
      "config.yaml:8:12 routes[0] (erp).strip: must be a list",
      "config.yaml:9:21 routes[0] (erp).forward_caller: must be true or false",
      "config.yaml:13:20 routes[0] (erp).target.connections: must be a whole number",
      "config.yaml:14:16 routes[0] (erp).target.headers: must be a mapping",
    ]);
  });

  test("the top level must be a mapping", () => {
    expect(problemsOf("- a\n- b\n")).toEqual(["config.yaml:1:1: must be a mapping"]);
  });

  test("values out of range, not in an enum, or not matching a pattern", () => {
    expect(
      problemsOf(`server:
  port: 99999
  host: ""
routes:
  - name: "erp contract"
    strip: [data..x]
    target:
      type: http
      url: http://erp/api
      method: post
      connections: 0
      headers: { "Bad Header": x }
      idempotency_header: "Idem Key"
`),
    ).toEqual([
      "config.yaml:2:9 server.port: must be at most 65535",
      "config.yaml:3:9 server.host: must not be empty",
      "config.yaml:5:11 routes[0] (erp contract).name: must be letters, digits, `.`, `_` or `-` (it is part of the URL /actions/<name>)",
      "config.yaml:6:13 routes[0] (erp contract).strip[0]: must be a dot path such as data.app_options.api_key (`*` for any key or index)",
      'config.yaml:10:15 routes[0] (erp contract).target.method: must be one of: POST, PUT, PATCH, DELETE, GET (got "post")',
      "config.yaml:11:20 routes[0] (erp contract).target.connections: must be at least 1",
      "config.yaml:12:18 routes[0] (erp contract).target.headers.Bad Header: must be a valid HTTP header name",
      "config.yaml:13:27 routes[0] (erp contract).target.idempotency_header: must be a valid HTTP header name",
    ]);
  });

  test("bad durations and sizes, including a bare number and a zero size", () => {
    expect(
      problemsOf(`server:
  max_body_size: 0kb
  shutdown_timeout: 10
verification:
  tolerance: 5 min
routes:
  - name: erp
    target: { type: http, url: "http://erp/api", timeout: soon, max_response_size: 1048576 }
`),
    ).toEqual([
      'config.yaml:2:18 server.max_body_size: must be a size such as 512kb or 1mb (got "0kb")',
      "config.yaml:3:21 server.shutdown_timeout: must be a duration such as 500ms, 10s or 5m, with its unit (got 10)",
      'config.yaml:5:14 verification.tolerance: must be a duration such as 500ms, 10s or 5m (got "5 min")',
      'config.yaml:8:59 routes[0] (erp).target.timeout: must be a duration such as 500ms, 10s or 5m (got "soon")',
      "config.yaml:8:84 routes[0] (erp).target.max_response_size: must be a size such as 512kb or 1mb, with its unit (got 1048576)",
    ]);
  });

  test("a missing environment variable points at the scalar that names it, in a list and in a block", () => {
    expect(
      problemsOf(
        `verification:
  secrets: ["\${WEBHOOK_SECRET}", "\${OTHER_SECRET:-whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}"]
routes:
  - name: erp
    target:
      type: http
      url: http://erp/api
      headers:
        Authorization: Bearer \${ERP_TOKEN}
        X-Tenant: \${TENANT}
`,
        { TENANT: "acme" },
      ),
    ).toEqual([
      "config.yaml:2:13 verification.secrets[0]: environment variable WEBHOOK_SECRET is not set (set it, or write ${WEBHOOK_SECRET:-default} where a default is safe)",
      "config.yaml:9:24 routes[0] (erp).target.headers.Authorization: environment variable ERP_TOKEN is not set (set it, or write ${ERP_TOKEN:-default} where a default is safe)",
    ]);
  });

  test("a missing variable is reported together with schema problems elsewhere", () => {
    expect(
      problemsOf(`server:
  port: \${PORT}
  bogus: 1
${ROUTE}`),
    ).toEqual([
      "config.yaml:2:9 server.port: environment variable PORT is not set (set it, or write ${PORT:-default} where a default is safe)",
      "config.yaml:3:3 server.bogus: unknown key (known here: host, port, max_body_size, body_memory_limit, shutdown_timeout, body_timeout, max_header_size, max_header_count, max_json_depth, allowed_ips, tls, workers)",
    ]);
  });

  test("an unknown target type lists the known ones", () => {
    expect(
      problemsOf(`routes:
  - name: erp
    target:
      type: ftp
      url: ftp://erp/in
`),
    ).toEqual([`config.yaml:4:13 routes[0] (erp).target.type: must be one of: ${TARGET_TYPES} (got "ftp")`]);
  });

  test("a target without a type lists the known ones", () => {
    expect(
      problemsOf(`routes:
  - name: erp
    target:
      url: http://erp/api
`),
    ).toEqual([`config.yaml:4:7 routes[0] (erp).target.type: must be one of: ${TARGET_TYPES}`]);
  });

  test("duplicate route names point at the second one", () => {
    expect(
      problemsOf(`routes:
  - name: erp
    target: { type: http, url: "http://erp/a" }
  - name: crm
    target: { type: http, url: "http://crm/a" }
  - name: erp
    target: { type: http, url: "http://erp/b" }
`),
    ).toEqual(['config.yaml:6:11 routes[2] (erp).name: duplicate route name "erp"']);
  });

  test("public_key and public_key_file together are both trusted, not refused", () => {
    const { config } = load(`verification:
  public_key: whpk_1SiA4o9hyqTCpIqC5V9HUakiiaeACeqfZTInDBbOir4=
  public_key_file: ./epilot-public-key.pem
${ROUTE}`);
    expect(config.verification.public_key_file).toBe("./epilot-public-key.pem");
    expect(config.verification.public_key).toStartWith("whpk_");
  });

  test("a bad public_key_url is refused", () => {
    expect(problemsOf(`verification: { public_key_url: /key.json }\n${ROUTE}`)).toEqual([
      'config.yaml:1:33 verification.public_key_url: must be an absolute http(s) URL, `epilot`, or a list of them (got "/key.json")',
    ]);
  });

  test("match: an empty mapping, an empty value, and a value that is not a string or a list", () => {
    expect(
      problemsOf(`routes:
  - name: a
    match: {}
    target: { type: http, url: "http://erp/a" }
  - name: b
    match:
      component_id: []
      app_id: ""
      org_id: { id: 1 }
      action_name: [ok, ""]
    target: { type: http, url: "http://erp/b" }
`),
    ).toEqual([
      "config.yaml:3:12 routes[0] (a).match: must list at least one key",
      "config.yaml:7:21 routes[1] (b).match.component_id: must not be empty",
      "config.yaml:8:15 routes[1] (b).match.app_id: must not be empty",
      "config.yaml:9:15 routes[1] (b).match.org_id: must be a string or a list of strings (got a mapping)",
      "config.yaml:10:25 routes[1] (b).match.action_name[1]: must not be empty",
    ]);
  });

  test("an empty JSONata expression is refused", () => {
    expect(
      problemsOf(`routes:
  - name: erp
    transform: ""
    target: { type: http, url: "http://erp/a" }
    response: { fail_when: "" }
`),
    ).toEqual([
      "config.yaml:3:16 routes[0] (erp).transform: must not be empty",
      "config.yaml:5:28 routes[0] (erp).response.fail_when: must not be empty",
    ]);
  });

  test("YAML syntax errors are reported with their position, before anything else", () => {
    expect(
      problemsOf(`routes:
  - name: erp
    target: { type: http, url: http://erp/a
bogus: 1
`),
    ).toEqual([
      "config.yaml:3:13 routes[0] (erp).target: the { of this flow mapping (line 3, column 13) is never closed: add the }, or write the mapping on indented lines",
    ]);
  });

  test("a duplicate key is a YAML error", () => {
    expect(
      problemsOf(`routes:
  - name: erp
    name: crm
    target: { type: http, url: "http://erp/a" }
`),
    ).toEqual([
      'config.yaml:3:5 routes[0].name: duplicate key "name" (first at line 2): each key may appear once in a mapping',
    ]);
  });

  test("tabs as indentation are a YAML error", () => {
    expect(problemsOf("server:\n\tport: 1\nroutes: []\n")).toEqual([
      "config.yaml:2:1: a tab in the indentation: YAML indents with spaces only (replace the tab)",
    ]);
  });

  test("an alias bomb is refused instead of expanding", () => {
    const lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
    for (let i = 1; i < 12; i++)
      lines.push(
        `${"abcdefghijkl"[i]}: &${"abcdefghijkl"[i]} [${Array(10)
          .fill(`*${"abcdefghijkl"[i - 1]}`)
          .join(", ")}]`,
      );
    expect(problemsOf(`${lines.join("\n")}\n${ROUTE}`)).toEqual([
      "config.yaml: YAML aliases expand too far (more than 100 uses of *alias); write the values out",
    ]);
  });

  test("ConfigError carries the file and each problem's path, line and column", () => {
    let caught: unknown;
    try {
      load(`server: { port: eighty }\n${ROUTE}`);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const error = caught as ConfigError;
    expect(error.file).toBe("config.yaml");
    expect(error.problems).toEqual([{ path: ["server", "port"], message: "must be a number", line: 1, column: 17 }]);
  });
});

describe("loadConfigFile", () => {
  const dir = mkdtempSync(join(tmpdir(), "actiongate-load-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("reads and checks a file, naming it in every line", () => {
    const file = join(dir, "config.yaml");
    writeFileSync(file, ROUTE);
    expect(loadConfigFile(file, {}).config.routes[0]!.name).toBe("erp");
    expect(loadConfigFile(file, {}).file).toBe(file);

    writeFileSync(file, `server: { port: eighty }\n${ROUTE}`);
    expect(() => loadConfigFile(file, {})).toThrow(
      new ConfigError(file, [{ path: ["server", "port"], message: "must be a number", line: 1, column: 17 }]),
    );
    try {
      loadConfigFile(file, {});
    } catch (error) {
      expect((error as Error).message).toBe(`${file}:1:17 server.port: must be a number`);
    }
  });

  test("a missing file is one problem naming the file", () => {
    const file = join(dir, "nope.yaml");
    expect(() => loadConfigFile(file, {})).toThrow(ConfigError);
    expect(() => loadConfigFile(file, {})).toThrow(`${file}: file not found`);
  });

  test("a folder is not a config file", () => {
    expect(() => loadConfigFile(dir, {})).toThrow(`${dir}: cannot read the file (EISDIR)`);
  });

  test("reads the environment it is given, not process.env", () => {
    const file = join(dir, "env.yaml");
    writeFileSync(file, ROUTE.replace("http://127.0.0.1:8081/api", "${ACTIONGATE_TEST_URL}"));
    process.env.ACTIONGATE_TEST_URL = "http://from-process-env/";
    try {
      expect(() => loadConfigFile(file, {})).toThrow("environment variable ACTIONGATE_TEST_URL is not set");
      expect(loadConfigFile(file, { ACTIONGATE_TEST_URL: "http://given/" }).config.routes[0]!.target.url).toBe(
        "http://given/",
      );
    } finally {
      delete process.env.ACTIONGATE_TEST_URL;
    }
  });
});

describe("values from the environment", () => {
  test("number and boolean keys read the variable's text; string keys keep it as text", async () => {
    const { loadConfigText } = await import("./load.ts");
    const loaded = loadConfigText(
      "config.yaml",
      `server: { port: "\${PORT}" }
routes:
  - name: r
    forward_caller: \${KEEP}
    target:
      type: http
      url: http://erp/x
      connections: \${CONNS}
      headers:
        X-Client-Id: \${CLIENT_ID}
`,
      { PORT: "9090", KEEP: "true", CONNS: "8", CLIENT_ID: "007" },
    );
    expect(loaded.config.server.port).toBe(9090);
    expect(loaded.config.routes[0]!.forward_caller).toBe(true);
    const target = loaded.config.routes[0]!.target as { connections: number; headers: Record<string, string> };
    expect(target.connections).toBe(8);
    expect(target.headers["X-Client-Id"]).toBe("007");
  });
});

describe("loadConfigText: a lease outlasts every outbox attempt", () => {
  const asyncRoute = (timeout: string) => `routes:
  - name: erp
    target: { type: http, url: http://127.0.0.1:8081/api, timeout: ${timeout} }
    delivery: { mode: async }
`;

  test("an async route's target timeout or epilot.timeout as long as store.lease is refused, each at its own line", () => {
    const problems = problemsOf(`store: { path: ./s.db, lease: 10s }
epilot: { timeout: 10s }
${asyncRoute("15s")}`);
    expect(problems).toEqual([
      expect.stringMatching(
        /^config\.yaml:2:\d+ epilot\.timeout: epilot\.timeout \(resume and write-back\) must be shorter than store\.lease \(10s\)/,
      ),
      expect.stringMatching(
        /^config\.yaml:\d+:\d+ routes\[0\] \(erp\)\.target\.timeout: the target's timeout of an async route must be shorter than store\.lease \(10s\)/,
      ),
    ]);
  });

  test("shorter timeouts, and sync routes with any timeout, are fine", () => {
    expect(load(`store: { path: ./s.db, lease: 30s }\n${asyncRoute("29s")}`).config.store?.lease).toBe(30_000);
    expect(
      load(
        `store: { path: ./s.db, lease: 30s }\n${ROUTE.replace("url: http://127.0.0.1:8081/api", "url: http://127.0.0.1:8081/api\n      timeout: 60s")}`,
      ).config.routes,
    ).toHaveLength(1);
  });
});

describe("loadConfigText: fromEnv", () => {
  test("says which values held a ${VAR} in the file (explain and test show them as ***), whatever they became", () => {
    const loaded = loadConfigText(
      "config.yaml",
      `routes:
  - name: erp
    target:
      type: http
      url: \${ERP_URL:-http://127.0.0.1:8081}/api
      headers:
        Authorization: Bearer \${ERP_TOKEN}
        X-Price: "costs $\${PRICE}"
        X-Org: "739224"
`,
      { ERP_TOKEN: "t0k" },
    );
    const headers = ["routes", 0, "target", "headers"];
    expect(loaded.config.routes[0]!.target.headers.Authorization).toBe("Bearer t0k");
    expect(loaded.fromEnv([...headers, "Authorization"])).toBe(true);
    // A default counts too: the value came from a reference, not from the text as written.
    expect(loaded.fromEnv(["routes", 0, "target", "url"])).toBe(true);
    // $${ is a literal ${, no reference.
    expect(loaded.fromEnv([...headers, "X-Price"])).toBe(false);
    expect(loaded.fromEnv([...headers, "X-Org"])).toBe(false);
    expect(loaded.fromEnv(["routes", 0, "name"])).toBe(false);
  });
});
