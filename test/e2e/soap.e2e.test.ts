import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { passwordDigest } from "soap";
import { type CrmServer, startCrmServer } from "../soap/crm-server.ts";
import { type GatewayProcess, runBinary, spawnGateway, tempDir } from "../support/gateway.ts";
import { fixturePayload, generateTestKeyPair, signedHeaders, uniqueWebhookId } from "../support/signing.ts";

/**
 * One SOAP route through the compiled binary (`npm run build` first), run from a folder holding
 * only its config and the WSDL it names by a relative path: the SOAP target, fast-xml-parser and
 * undici must all be inside the binary.
 */
const keys = generateTestKeyPair();
let crm: CrmServer;
let gateway: GatewayProcess;
let dir: string;

const config = (operation: string) => `
server: { host: 127.0.0.1, port: 0 }
verification: { public_key: "${keys.whpk}" }
routes:
  - name: crm-customer
    transform: |
      {
        "CustomerNumber": data.entity.customer_number,
        "Name": data.entity._title,
        "Address": { "Street": data.entity.billing_address.street, "PostalCode": data.entity.billing_address.postal_code, "City": data.entity.billing_address.city }
      }
    target:
      type: soap
      wsdl: ./crm.wsdl
      operation: ${operation}
      version: "1.2"
      ws_security: { username: crm-gateway, password: "\${CRM_PASSWORD}", password_type: PasswordDigest }
    response:
      transform: '{ "customer_ref": body.CreateCustomerResponse.CustomerRef }'
`;

beforeAll(async () => {
  crm = await startCrmServer();
  dir = tempDir({
    "crm.wsdl": crm.wsdl,
    "config.yaml": config("CreateCustomer"),
    "broken.yaml": config("DeleteCustomer"),
  });
  gateway = await spawnGateway(["serve", "--config", "config.yaml"], {
    cwd: dir,
    env: { CRM_PASSWORD: "pw-from-env" },
  });
});
afterAll(async () => {
  await gateway?.stop();
  await crm?.close();
});

describe("SOAP target in the compiled binary", () => {
  test("a signed call becomes a SOAP 1.2 call with WS-Security to the WSDL's address; the answer reaches epilot", async () => {
    crm.authenticate((security) => {
      const token = security?.UsernameToken;
      const text = (value: any) => (typeof value === "object" ? value.$value : value);
      return (
        token?.Username === "crm-gateway" &&
        text(token.Password) === passwordDigest(text(token.Nonce), token.Created, "pw-from-env")
      );
    });
    const body = JSON.stringify(fixturePayload());
    const id = uniqueWebhookId();
    const response = await fetch(`${gateway.url}/actions/crm-customer`, {
      method: "POST",
      body,
      headers: signedHeaders(body, { id, privateKey: keys.privateKey }),
    });
    expect({ status: response.status, body: await response.json() }).toEqual({
      status: 200,
      body: { customer_ref: "CRM-C-100017" },
    });

    const received = crm.calls.at(-1)!;
    expect(received.path).toBe("/crm/soap12");
    expect(received.headers["content-type"]).toBe(
      'application/soap+xml; charset=utf-8; action="urn:example:crm/CreateCustomer"',
    );
    expect(received.headers["idempotency-key"]).toBe(id);
    expect(received.args).toEqual({
      CustomerNumber: "C-100017",
      Name: "Contract 2026-0042",
      Address: { Street: "Hauptstraße 5", PostalCode: "50667", City: "Köln" },
    });
    expect(gateway.stdout()).not.toContain("pw-from-env");
  });

  test("validate names the missing operation and the ones the WSDL has", async () => {
    const result = await runBinary(["validate", "--config", "broken.yaml"], { cwd: dir, env: { CRM_PASSWORD: "x" } });
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toBe(
      'broken.yaml:15:18 routes[0] (crm-customer).target.operation: operation "DeleteCustomer" is not in ./crm.wsdl; it has: CreateCustomer, GetCustomer',
    );
  });
});
