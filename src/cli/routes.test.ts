import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { tempDir } from "../../test/support/gateway.ts";
import { redactUrl, routesCommand } from "./routes.ts";

/** Runs `routes` on YAML text and returns the exit code and what it printed. */
async function routes(yaml: string, env: Record<string, string> = {}) {
  const file = join(tempDir({ "config.yaml": yaml }), "config.yaml");
  let stdout = "";
  const code = await routesCommand(file, env, (text) => (stdout += text));
  return { code, stdout };
}

describe("actiongate routes", () => {
  test("one aligned row per route: match, target with credentials hidden, delivery mode", async () => {
    const result = await routes(
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
        "ROUTE         MATCH                                                        TARGET                                                                                                     OUTBOUND  DELIVERY",
        "erp-contract  component_id=erp-contract-sync entity_schema=contract|order  http PUT http://svc:***@erp.internal:8081/api/contracts/{{ data.entity.contract_number }}?api_key=***&v=2  -         sync",
        "crm-customer  only POST /actions/crm-customer                              soap CreateCustomer http://crm.internal/ws/CustomerService                                                 -         async (max 5 attempts)",
        "",
      ].join("\n"),
    );
    expect(result.stdout).not.toContain("hunter2");
    expect(result.stdout).not.toContain("k-123");
  });

  test("auth, CSRF, rate limit and proxy of each target, with every secret hidden", async () => {
    const secrets = {
      SAP_PASSWORD: "sap-pa55word",
      BC_SECRET: "bc-client-secret",
      PROXY_PASSWORD: "proxy-pa55",
    };
    const result = await routes(
      `
routes:
  - name: sap-partner
    target:
      type: http
      url: https://sap.internal/sap/opu/odata/sap/API_BUSINESS_PARTNER/A_BusinessPartner
      auth: { type: basic, username: gw-user, password: "\${SAP_PASSWORD}" }
      csrf: {}
      rate_limit: { requests: 5, per: 1s }
  - name: bc-order
    target:
      type: soap
      url: https://bc.internal/ws/Orders
      operation: CreateOrder
      namespace: "urn:bc"
      auth:
        type: oauth2_client_credentials
        token_url: https://login.example.com/tenant/oauth2/v2.0/token
        client_id: gw-client
        client_secret: "\${BC_SECRET}"
      proxy: { url: "http://proxy.internal:3128", username: egress, password: "\${PROXY_PASSWORD}", no_proxy: [.corp] }
`,
      secrets,
    );
    expect(result.code).toBe(0);
    const [, sap, bc] = result.stdout.split("\n");
    expect(sap).toContain("auth=basic user=gw-user, csrf x-csrf-token, rate 5/1s (wait 5s)");
    expect(bc).toContain(
      "auth=oauth2_client_credentials client_id=gw-client, proxy http://proxy.internal:3128 user=egress no_proxy=.corp",
    );
    expect(bc).toContain("soap CreateOrder https://bc.internal/ws/Orders");
    for (const secret of Object.values(secrets)) expect(result.stdout).not.toContain(secret);
  });

  test("a broken config: exit 1 and nothing printed on stdout (the problems go to stderr)", async () => {
    expect(await routes("routes: []\nbogus: 1\n")).toEqual({ code: 1, stdout: "" });
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
