import { describe, expect, test } from "bun:test";
import { compileConfig } from "../gateway/compile.ts";
import { ConfigError } from "../kit/config-errors.ts";
import { silentLogger } from "../log/logger.ts";
import { loadConfigText } from "./load.ts";

/**
 * The mistakes a newcomer makes in a first hour (issue 11), each with the exact lines `validate`
 * prints for it: one line per problem, at the line and column to change, the key path with the
 * route's name, and what to do about it.
 */

/** What `actiongate validate` prints for `text` (load and compile, as serve does); [] when it is valid. */
function validate(text: string, env: Record<string, string> = {}): string[] {
  try {
    const compiled = compileConfig(loadConfigText("config.yaml", text, env), {
      logger: silentLogger,
      userAgent: "t",
    });
    void compiled.close();
    return [];
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return error.message.split("\n");
  }
}

/** The config as loaded, for the side that must pass. */
function load(text: string, env: Record<string, string> = {}) {
  return loadConfigText("config.yaml", text, env).config;
}

const TARGET = `    target: { type: http, url: "http://127.0.0.1:8081/api" }`;

describe("$VAR without braces", () => {
  test("in a header value: refused, naming the key and the fix", () => {
    expect(
      validate(`routes:
  - name: erp
    target:
      type: http
      url: http://127.0.0.1:8081/api
      headers:
        Authorization: Bearer $ERP_TOKEN
`),
    ).toEqual([
      'config.yaml:7:24 routes[0] (erp).target.headers.Authorization: "$ERP_TOKEN" is not read from the environment: write ${ERP_TOKEN} (or $$ERP_TOKEN for the text "$ERP_TOKEN")',
    ]);
  });

  test("in a URL outside its {{ }} placeholders, in a secret and in a store URL: each refused", () => {
    expect(
      validate(`verification:
  secrets: [$WEBHOOK_SECRET]
store:
  url: postgres://gateway:$PG_PASSWORD@127.0.0.1/gateway
  encryption_key: x
routes:
  - name: erp
    target: { type: http, url: "http://$ERP_HOST/api/{{ data.entity._id }}" }
`),
    ).toEqual([
      'config.yaml:2:13 verification.secrets[0]: "$WEBHOOK_SECRET" is not read from the environment: write ${WEBHOOK_SECRET} (or $$WEBHOOK_SECRET for the text "$WEBHOOK_SECRET")',
      'config.yaml:4:8 store.url: "$PG_PASSWORD" is not read from the environment: write ${PG_PASSWORD} (or $$PG_PASSWORD for the text "$PG_PASSWORD")',
      'config.yaml:8:32 routes[0] (erp).target.url: "$ERP_HOST" is not read from the environment: write ${ERP_HOST} (or $$ERP_HOST for the text "$ERP_HOST")',
    ]);
  });

  test("JSONata keeps its $: functions and variables in expressions and inside {{ }} load, capitals included", () => {
    const config = load(`routes:
  - name: erp
    skip_when: $not($exists(data.entity.contract_number))
    skip_reason: '"no contract: " & $string(data.entity._id)'
    transform: '($TOTAL := data.entity.monthly_amount; { "total": $TOTAL, "root": $$.data.org_id })'
    target:
      type: http
      url: "http://127.0.0.1:8081/api/{{ $uppercase(data.entity.contract_number) }}"
      headers: { X-Org: "{{ $string($$.data.org_id) }}" }
    response:
      transform: '{ "id": $string(body.id) }'
      fail_when: $count(body.errors) > 0
`);
    const route = config.routes[0]!;
    expect(route.transform).toBe('($TOTAL := data.entity.monthly_amount; { "total": $TOTAL, "root": $$.data.org_id })');
    expect(route.target.url).toBe("http://127.0.0.1:8081/api/{{ $uppercase(data.entity.contract_number) }}");
    expect(route.response?.fail_when).toBe("$count(body.errors) > 0");
  });

  test("outside JSONata: lower-case and mixed names are text, $$NAME is the text $NAME, ${NAME} is read", () => {
    const config = load(
      `routes:
  - name: erp
    target:
      type: http
      url: http://127.0.0.1:8081/api
      headers: { X-Price: "$price in $Eur", X-Literal: "pa$$WORD", X-Token: "Bearer \${ERP_TOKEN}", X-Dollar: "5 $" }
`,
      { ERP_TOKEN: "t0k$FROM_ENV" },
    );
    expect(config.routes[0]!.target.headers).toEqual({
      "X-Price": "$price in $Eur",
      "X-Literal": "pa$WORD",
      // A variable's value is never looked at for `$`: it is what the environment holds.
      "X-Token": "Bearer t0k$FROM_ENV",
      "X-Dollar": "5 $",
    });
  });
});

describe("no silent fallback for a secret", () => {
  test("the example config.yaml at the root needs ERP_TOKEN, and says so", async () => {
    const text = await Bun.file(new URL("../../config.yaml", import.meta.url)).text();
    expect(text).toContain("Bearer ${ERP_TOKEN}");
    expect(text).not.toMatch(/ERP_TOKEN:-/);
    expect(validate(text)).toEqual([
      expect.stringMatching(
        /^config\.yaml:\d+:\d+ routes\[0\] \(erp-contract\)\.target\.headers\.Authorization: environment variable ERP_TOKEN is not set \(set it, or write \$\{ERP_TOKEN:-default\} where a default is safe\)$/,
      ),
    ]);
    expect(validate(text, { ERP_TOKEN: "t0k" })).toEqual([]);
  });
});

describe("YAML syntax errors: one line each, at the line to change, with a hint", () => {
  test("a tab in the indentation", () => {
    expect(validate("server:\n\tport: 8080\nroutes: []\n")).toEqual([
      "config.yaml:2:1: a tab in the indentation: YAML indents with spaces only (replace the tab)",
    ]);
  });

  test("a key indented one space too deep is reported at its own line, not the line above", () => {
    expect(validate("server:\n  port: 8080\n   host: 127.0.0.1\nroutes: []\n")).toEqual([
      "config.yaml:3:4 server.port: this line starts in column 4, deeper than the key above it (column 3), so YAML reads it as part of that value: indent it like the key it belongs with",
    ]);
  });

  test("a key indented one space too shallow", () => {
    expect(
      validate(`routes:
  - name: erp
    target:
      type: http
     url: http://127.0.0.1:8081/api
`),
    ).toEqual([
      "config.yaml:5:6: this key starts in column 6, the one above it in column 7: the keys of one mapping start in the same column (check the indentation)",
    ]);
  });

  test("a key after a | block at a column no key has", () => {
    expect(
      validate(`routes:
  - name: erp
    transform: |
      { "a": 1 }
   target: { type: http, url: "http://127.0.0.1:8081/api" }
`),
    ).toEqual([
      "config.yaml:5:4: this line starts in column 4, which matches no key above it (they start in column 1, 3, 5, 7): check the indentation",
    ]);
  });

  test("an unquoted ': ' inside a value", () => {
    expect(
      validate(`routes:
  - name: erp
    skip_reason: contract: not approved
${TARGET}
`),
    ).toEqual([
      'config.yaml:3:26 routes[0] (erp).skip_reason: a value holds ": " (a colon and a space), which YAML reads as a new key: put the value in quotes, skip_reason: "contract: not approved"',
    ]);
  });

  test("a quote never closed is shown where it opens", () => {
    expect(validate(`routes:\n  - name: "erp\n${TARGET}\n`)).toEqual([
      'config.yaml:2:11 routes[0].name: the " opened here (line 2, column 11) is never closed: add the closing "',
    ]);
  });

  test("a { never closed is shown where it opens", () => {
    expect(validate(`server: { port: 8080\nroutes:\n  - name: erp\n${TARGET}\n`)).toEqual([
      "config.yaml:1:9 server: the { of this flow mapping (line 1, column 9) is never closed: add the }, or write the mapping on indented lines",
    ]);
  });

  test("a ${VAR} inside { }: quote the whole value", () => {
    expect(
      validate(`server: { port: \${PORT} }
routes:
  - name: erp
    target: { type: http, url: "http://127.0.0.1:8081/api", headers: { Authorization: Bearer \${ERP_TOKEN} } }
`),
    ).toEqual([
      'config.yaml:1:17 server.port: a ${...} inside { } or [ ] must be quoted, since { starts a mapping there: write port: "${PORT}"',
    ]);
    expect(
      validate(`routes:
  - name: erp
    target: { type: http, url: "http://127.0.0.1:8081/api", headers: { Authorization: Bearer \${ERP_TOKEN} } }
`),
    ).toEqual([
      'config.yaml:3:94 routes[0] (erp).target.headers.Authorization: a ${...} inside { } or [ ] must be quoted, since { starts a mapping there: write Authorization: "Bearer ${ERP_TOKEN}"',
    ]);
  });

  test("a key twice in one mapping names both lines", () => {
    expect(validate(`routes:\n  - name: erp\n${TARGET}\n    name: crm\n`)).toEqual([
      // The route's name is written twice, so which one it has is not known: no name is shown.
      'config.yaml:4:5 routes[0].name: duplicate key "name" (first at line 2): each key may appear once in a mapping',
    ]);
  });
});

describe("a JSONata error inside a multi-line value is shown at its own line and column", () => {
  test("in a | block: the line of the error, not the block's first line plus a character count", () => {
    expect(
      validate(`routes:
  - name: erp
${TARGET}
  - name: mapped
    transform: |
      {
        "contract": data.entity.contract_number,
        "status": data.entity.status +
      }
${TARGET}
`),
    ).toEqual([
      'config.yaml:9:7 routes[1] (mapped).transform: JSONata syntax error: The symbol "}" cannot be used as a unary operator',
    ]);
  });

  test("in a double-quoted string with escapes, and in a single-quoted string over two lines", () => {
    expect(
      validate(`routes:
  - name: escaped
    transform: "{ \\"a\\": data.x,\\n  \\"b\\": data.y ) }"
${TARGET}
  - name: folded
    response:
      transform: '{ "a": body.x,
        "b": body.y ) }'
${TARGET}
`),
    ).toEqual([
      'config.yaml:3:51 routes[0] (escaped).transform: JSONata syntax error: Expected "}", got ")"',
      'config.yaml:8:21 routes[1] (folded).response.transform: JSONata syntax error: Expected "}", got ")"',
    ]);
  });

  test("in a |- block under a list of routes, with the error on its last line", () => {
    expect(
      validate(`routes:
  - name: erp
    skip_when: |-
      data.entity.status != "approved"
        and data.entity.
${TARGET}
`),
    ).toEqual(["config.yaml:5:24 routes[0] (erp).skip_when: JSONata syntax error: Unexpected end of expression"]);
  });
});

describe("every problem under a route names it", () => {
  test("routes[4] (mapped).transform, in the schema's problems and the compile step's alike", () => {
    const routes = ["a", "b", "c", "d"].map((name) => `  - name: ${name}\n${TARGET}`).join("\n");
    expect(
      validate(`routes:
${routes}
  - name: mapped
    transform: '{ "a": '
    delivery: { mode: sometimes }
${TARGET}
`),
    ).toEqual(['config.yaml:12:23 routes[4] (mapped).delivery.mode: must be one of: sync, async (got "sometimes")']);
    expect(validate(`routes:\n${routes}\n  - name: mapped\n    transform: '{ "a": '\n${TARGET}\n`)).toEqual([
      'config.yaml:11:22 routes[4] (mapped).transform: JSONata syntax error: Expected "}" before end of expression',
    ]);
  });
});

describe("unknown keys suggest the nearest known key", () => {
  test("a typo at each level: top, section, route, target, response", () => {
    expect(
      validate(`verfication: {}
server: { prot: 8080 }
routes:
  - name: erp
    tranform: '{}'
    target: { type: http, url: "http://127.0.0.1:8081/api", timeuot: 10s }
    response: { fail-when: "body.ok = false" }
`),
    ).toEqual([
      'config.yaml:1:1 verfication: unknown key, did you mean "verification"?',
      'config.yaml:2:11 server.prot: unknown key, did you mean "port"?',
      'config.yaml:5:5 routes[0] (erp).tranform: unknown key, did you mean "transform"?',
      'config.yaml:6:61 routes[0] (erp).target.timeuot: unknown key, did you mean "timeout"?',
      'config.yaml:7:17 routes[0] (erp).response.fail-when: unknown key, did you mean "fail_when"?',
    ]);
  });

  test("a key of the other target type, and one close to nothing, list what is known there", () => {
    expect(
      validate(`routes:
  - name: erp
    target: { type: http, url: "http://127.0.0.1:8081/api", wsdl: ./crm.wsdl }
    delivery: { retries: 3 }
`),
    ).toEqual([
      "config.yaml:3:61 routes[0] (erp).target.wsdl: unknown key (known here: type, url, method, headers, timeout, idempotency_header, connections, max_response_size, tls, auth, csrf, rate_limit, proxy)",
      "config.yaml:4:17 routes[0] (erp).delivery.retries: unknown key (known here: mode, order_key, max_attempts, backoff, concurrency, circuit_breaker)",
    ]);
  });
});

describe("enum errors show the value they got and what is allowed", () => {
  test('SOAP version: "1.3" and 1.3', () => {
    const soap = (version: string) => `routes:
  - name: crm
    target:
      type: soap
      url: http://127.0.0.1:8082/crm
      operation: CreateCustomer
      namespace: urn:example:crm
      version: ${version}
`;
    expect(validate(soap('"1.3"'))).toEqual([
      'config.yaml:8:16 routes[0] (crm).target.version: must be one of: 1.1, 1.2 (got "1.3")',
    ]);
    expect(validate(soap("1.3"))).toEqual([
      "config.yaml:8:16 routes[0] (crm).target.version: must be one of: 1.1, 1.2 (got 1.3)",
    ]);
  });

  test("log level, HTTP method and target type", () => {
    expect(
      validate(`log: { level: verbose }
routes:
  - name: erp
    target: { type: http, url: "http://127.0.0.1:8081/api", method: post }
  - name: crm
    target: { type: rest, url: "http://127.0.0.1:8082/api" }
`),
    ).toEqual([
      'config.yaml:1:15 log.level: must be one of: debug, info, warn, error (got "verbose")',
      'config.yaml:4:69 routes[0] (erp).target.method: must be one of: POST, PUT, PATCH, DELETE, GET (got "post")',
      'config.yaml:6:21 routes[1] (crm).target.type: must be one of: http, soap (got "rest")',
    ]);
  });

  test("public_key_url that is neither a URL nor epilot", () => {
    expect(
      validate(`verification: { public_key_url: [epilot, "ftp://keys/key"] }\nroutes:\n  - name: erp\n${TARGET}\n`),
    ).toEqual([
      'config.yaml:1:42 verification.public_key_url[1]: must be an absolute http(s) URL or `epilot` (got "ftp://keys/key")',
    ]);
  });
});
