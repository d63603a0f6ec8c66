import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { tempDir } from "../../test/support/gateway.ts";
import { redactUrl, routesCommand } from "./routes.ts";

/** Runs `routes` on YAML text and returns the exit code and what it printed. */
function routes(yaml: string, env: Record<string, string> = {}) {
  const file = join(tempDir({ "config.yaml": yaml }), "config.yaml");
  let stdout = "";
  const code = routesCommand(file, env, (text) => (stdout += text));
  return { code, stdout };
}

describe("actiongate routes", () => {
  test("one aligned row per route: match, target with credentials hidden, delivery mode", () => {
    const result = routes(
      `
store: { path: ./store.db }
routes:
  - name: erp-contract
    match: { component_id: erp-contract-sync, entity_schema: [contract, order] }
    target:
      type: http
      url: "http://svc:\${ERP_PASSWORD}@erp.internal:8081/api/contracts/{{ data.entity.contract_number }}?api_key=\${ERP_KEY}&v=2"
      method: PUT
  - name: crm-customer
    target: { type: soap, url: "http://crm.internal/ws/CustomerService", operation: CreateCustomer, namespace: "urn:crm" }
    delivery: { mode: async, max_attempts: 5 }
`,
      { ERP_PASSWORD: "hunter2", ERP_KEY: "k-123" },
    );
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(
      [
        "ROUTE         MATCH                                                        TARGET                                                                                                     DELIVERY",
        "erp-contract  component_id=erp-contract-sync entity_schema=contract|order  http PUT http://svc:***@erp.internal:8081/api/contracts/{{ data.entity.contract_number }}?api_key=***&v=2  sync",
        "crm-customer  only POST /actions/crm-customer                              soap CreateCustomer http://crm.internal/ws/CustomerService                                                 async (max 5 attempts)",
        "",
      ].join("\n"),
    );
    expect(result.stdout).not.toContain("hunter2");
    expect(result.stdout).not.toContain("k-123");
  });

  test("a broken config: exit 1 and nothing printed on stdout (the problems go to stderr)", () => {
    expect(routes("routes: []\nbogus: 1\n")).toEqual({ code: 1, stdout: "" });
  });
});

describe("redactUrl", () => {
  test.each([
    ["https://svc:pa55@erp/api?api_key=abc&page=2", "https://svc:***@erp/api?api_key=***&page=2"],
    ["http://token123@erp/api", "http://***@erp/api"],
    ["http://erp/api?token=t&sig=s&x=1#frag", "http://erp/api?token=***&sig=***&x=1#frag"],
    ["http://erp:8081/api/{{ data.entity._id }}", "http://erp:8081/api/{{ data.entity._id }}"],
  ])("%s -> %s", (url, expected) => {
    expect(redactUrl(url)).toBe(expected);
  });
});
