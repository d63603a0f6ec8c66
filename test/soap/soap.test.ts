import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { passwordDigest } from "soap";
import { loadConfigText } from "../../src/config/load.ts";
import { compileConfig } from "../../src/gateway/compile.ts";
import { ConfigError } from "../../src/kit/config-errors.ts";
import { silentLogger } from "../../src/log/logger.ts";
import { type InProcessGateway, startInProcessGateway, tempDir } from "../support/gateway.ts";
import { fixturePayload, generateTestKeyPair, signedHeaders, uniqueWebhookId } from "../support/signing.ts";
import { type CrmServer, startCrmServer } from "./crm-server.ts";

/**
 * SOAP targets against a real SOAP service (node-soap's `soap.listen`, a WSDL with a 1.1 and a 1.2
 * binding), through the whole gateway: signed call in, envelope out, answer or fault back to epilot.
 */

const keys = generateTestKeyPair();
let crm: CrmServer;
let gateway: InProcessGateway;
let files: string;

const CREATE_CUSTOMER = `
    transform: |
      {
        "CustomerNumber": data.entity.customer_number,
        "Name": data.entity._title,
        "Email": data.entity.email ? data.entity.email : null,
        "Address": {
          "Street": data.entity.billing_address.street,
          "PostalCode": data.entity.billing_address.postal_code,
          "City": data.entity.billing_address.city
        },
        "Tag": ["epilot", data.entity.status]
      }
    response:
      transform: '{ "customer_ref": body.CreateCustomerResponse.CustomerRef, "status": body.CreateCustomerResponse.Status }'`;

const TEMPLATE = `<?xml version="1.0" encoding="utf-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:crm="urn:example:crm">
  <soapenv:Header/>
  <soapenv:Body>
    <crm:CreateCustomer>
      <crm:CustomerNumber>{{ data.entity.customer_number }}</crm:CustomerNumber>
      <crm:Name>{{ $body.name }}</crm:Name>
      <crm:Address>
        <crm:Street>{{ data.entity.billing_address.street }}</crm:Street>
        <crm:PostalCode>{{ data.entity.billing_address.postal_code }}</crm:PostalCode>
        <crm:City>{{ data.entity.billing_address.city }}</crm:City>
      </crm:Address>
    </crm:CreateCustomer>
  </soapenv:Body>
</soapenv:Envelope>
`;

function config(base: string): string {
  const wsdl = join(files, "crm.wsdl");
  return `
server: { host: 127.0.0.1, port: 0 }
verification:
  public_key: "${keys.whpk}"
routes:
  - name: crm-11
    target:
      type: soap
      url: ${base}/crm/soap11
      version: "1.1"
      operation: CreateCustomer
      namespace: urn:example:crm
      soap_action: urn:example:crm/CreateCustomer
${CREATE_CUSTOMER}
      error_reason: '"CRM says: " & body.Fault.detail.Conflict.Message'
  - name: crm-12
    target:
      type: soap
      url: ${base}/crm/soap12
      version: 1.2
      operation: CreateCustomer
      namespace: urn:example:crm
      soap_action: urn:example:crm/CreateCustomer
${CREATE_CUSTOMER}
  - name: crm-12-answered-in-11
    target:
      type: soap
      url: ${base}/crm/soap11
      version: "1.2"
      operation: CreateCustomer
      namespace: urn:example:crm
${CREATE_CUSTOMER}
  - name: crm-wsdl
    target:
      type: soap
      wsdl: ${wsdl}
      operation: CreateCustomer
${CREATE_CUSTOMER}
  - name: crm-wsdl-12
    target:
      type: soap
      wsdl: ${wsdl}
      operation: CreateCustomer
      version: "1.2"
${CREATE_CUSTOMER}
  - name: crm-digest
    target:
      type: soap
      wsdl: ${wsdl}
      operation: CreateCustomer
      ws_security: { username: "\${CRM_USER}", password: "\${CRM_PASSWORD}", password_type: PasswordDigest, timestamp: 5m }
${CREATE_CUSTOMER}
  - name: crm-digest-wrong
    target:
      type: soap
      wsdl: ${wsdl}
      operation: CreateCustomer
      ws_security: { username: "\${CRM_USER}", password: "not-the-password", password_type: PasswordDigest }
${CREATE_CUSTOMER}
  - name: crm-text
    target:
      type: soap
      wsdl: ${wsdl}
      operation: CreateCustomer
      version: "1.2"
      ws_security: { username: "\${CRM_USER}", password: "\${CRM_PASSWORD}" }
      basic_auth: { username: gateway, password: "\${CRM_PASSWORD}" }
      soap_headers:
        - name: Tenant
          namespace: urn:example:tenant
          value: { Org: "{{ data.org_id }}", Source: epilot }
${CREATE_CUSTOMER}
  - name: crm-template
    transform: '{ "name": data.entity._title & " </crm:Name><crm:Admin>true</crm:Admin>" }'
    target:
      type: soap
      wsdl: ${wsdl}
      operation: CreateCustomer
      envelope_template: ${join(files, "create-customer.xml")}
      ws_security: { username: "\${CRM_USER}", password: "\${CRM_PASSWORD}" }
    response:
      transform: '{ "customer_ref": body.CreateCustomerResponse.CustomerRef }'
  - name: crm-slow
    target:
      type: soap
      url: ${base}/crm/soap11
      operation: CreateCustomer
      namespace: urn:example:crm
      timeout: 300ms
${CREATE_CUSTOMER}
  - name: crm-not-xml
    target:
      type: soap
      url: ${base}/not-xml
      operation: CreateCustomer
      namespace: urn:example:crm
${CREATE_CUSTOMER}
  - name: crm-truncated
    target:
      type: soap
      url: ${base}/truncated
      operation: CreateCustomer
      namespace: urn:example:crm
${CREATE_CUSTOMER}
`;
}

async function call(route: string, payload: Record<string, any> = fixturePayload()) {
  const body = JSON.stringify(payload);
  const id = uniqueWebhookId();
  const response = await fetch(`${gateway.url}/actions/${route}`, {
    method: "POST",
    body,
    headers: signedHeaders(body, { id, privateKey: keys.privateKey }),
  });
  return { status: response.status, body: (await response.json()) as any, webhookId: id };
}

/** node-soap hands an element with attributes as `{ $value, attributes }`. */
const text = (value: any): string => (typeof value === "object" && value !== null ? value.$value : value);

beforeAll(async () => {
  crm = await startCrmServer();
  files = tempDir({ "crm.wsdl": crm.wsdl, "create-customer.xml": TEMPLATE });
  gateway = await startInProcessGateway(config(crm.base), { CRM_USER: "gateway", CRM_PASSWORD: "s3cr&t<pw" });
});
afterAll(async () => {
  await gateway?.stop();
  await crm?.close();
});
beforeEach(() => {
  crm.calls.length = 0;
  crm.handle((operation, args) =>
    operation === "CreateCustomer" ? { CustomerRef: `CRM-${args.CustomerNumber}`, Status: "created" } : {},
  );
  crm.authenticate(undefined);
});

describe("SOAP 1.1 and 1.2 calls", () => {
  test("1.1: text/xml, quoted SOAPAction, the idempotency key; the answer is mapped back to epilot", async () => {
    const answer = await call("crm-11");
    expect(answer).toMatchObject({ status: 200, body: { customer_ref: "CRM-C-100017", status: "created" } });
    const received = crm.calls[0]!;
    expect(received.path).toBe("/crm/soap11");
    expect(received.headers["content-type"]).toBe("text/xml; charset=utf-8");
    expect(received.headers.soapaction).toBe('"urn:example:crm/CreateCustomer"');
    expect(received.headers["idempotency-key"]).toBe(answer.webhookId);
    expect(received.args).toEqual({
      CustomerNumber: "C-100017",
      Name: "Contract 2026-0042",
      Address: { Street: "Hauptstraße 5", PostalCode: "50667", City: "Köln" },
      Tag: ["epilot", "approved"],
    });
    expect(received.xml).toContain('<tns:Email xsi:nil="true"/>');
    // Nothing of the epilot call leaks into the envelope or the HTTP request.
    expect(received.xml).not.toContain("user-token-that-must-never-leave");
    expect(
      Object.keys(received.headers).filter((name) => name.startsWith("webhook-") || name === "x-epilot-token"),
    ).toEqual([]);
  });

  test("1.2: application/soap+xml with the action parameter, no SOAPAction header; a 1.2 answer", async () => {
    const answer = await call("crm-12");
    expect(answer).toMatchObject({ status: 200, body: { customer_ref: "CRM-C-100017", status: "created" } });
    const received = crm.calls[0]!;
    expect(received.path).toBe("/crm/soap12");
    expect(received.headers["content-type"]).toBe(
      'application/soap+xml; charset=utf-8; action="urn:example:crm/CreateCustomer"',
    );
    expect(received.headers.soapaction).toBeUndefined();
    expect(received.xml).toContain('xmlns:soap="http://www.w3.org/2003/05/soap-envelope"');
    expect(received.args.CustomerNumber).toBe("C-100017");
  });

  test("a 1.2 call answered in a 1.1 envelope (as node-soap does) is accepted", async () => {
    const answer = await call("crm-12-answered-in-11");
    expect(answer).toMatchObject({ status: 200, body: { customer_ref: "CRM-C-100017" } });
    expect(crm.calls[0]!.headers["content-type"]).toStartWith("application/soap+xml");
  });

  test("a value holding markup arrives as literal text, never as elements", async () => {
    const payload = fixturePayload();
    payload.data.entity._title = "</Name><Admin>true</Admin>";
    payload.data.entity.billing_address.street = `]]><x/>&amp; "quoted" 'single'`;
    expect((await call("crm-11", payload)).status).toBe(200);
    const received = crm.calls[0]!;
    expect(received.args.Name).toBe("</Name><Admin>true</Admin>");
    expect(received.args.Address.Street).toBe(`]]><x/>&amp; "quoted" 'single'`);
    expect(received.args.Admin).toBeUndefined();
    expect(received.xml).toContain("<tns:Name>&lt;/Name&gt;&lt;Admin&gt;true&lt;/Admin&gt;</tns:Name>");
  });

  test("a payload the envelope cannot carry is the payload's fault (400), nothing is sent", async () => {
    const payload = fixturePayload();
    payload.data.entity._title = "bell \u0007";
    const answer = await call("crm-11", payload);
    expect(answer.status).toBe(400);
    expect(answer.body.error_output.error_reason).toContain("U+0007");
    expect(crm.calls).toHaveLength(0);
  });
});

describe("SOAP faults", () => {
  test("a 1.1 fault (HTTP 200) becomes 502 with the fault code and string; detail feeds response.error_reason", async () => {
    crm.handle(() => {
      throw {
        Fault: {
          faultcode: "soap:Client",
          faultstring: "Customer C-100017 already exists",
          detail: { Conflict: { Message: "duplicate of CRM-7" } },
        },
      };
    });
    const answer = await call("crm-11");
    expect(answer.status).toBe(502);
    expect(answer.body).toEqual({
      error_output: {
        error_code: "CUSTOM_ACTION_ERROR",
        error_reason: "CRM says: duplicate of CRM-7",
        error_info: {
          route: "crm-11",
          target_status: 200,
          fault_code: "Client",
          fault_string: "Customer C-100017 already exists",
          outcome: "target_failed",
        },
      },
    });
  });

  test("a 1.2 fault (HTTP 500): Code/Value, Subcode, Reason/Text", async () => {
    crm.handle(() => {
      throw {
        Fault: {
          Code: { Value: "soap:Sender", Subcode: { Value: "crm:Duplicate" } },
          Reason: { Text: "Customer C-100017 already exists" },
          statusCode: 500,
        },
      };
    });
    const answer = await call("crm-12");
    expect(answer.status).toBe(502);
    expect(answer.body.error_output.error_reason).toBe(
      "The target of route crm-12 failed: SOAP fault Sender/Duplicate: Customer C-100017 already exists",
    );
    expect(answer.body.error_output.error_info).toMatchObject({
      target_status: 500,
      fault_code: "Sender",
      fault_subcode: "Duplicate",
      fault_string: "Customer C-100017 already exists",
    });
  });

  test("a server error (node-soap: 1.2 fault parts in a 1.1 envelope, HTTP 500) is a 502 with no stack trace", async () => {
    crm.handle(() => {
      throw new Error("database down");
    });
    const answer = await call("crm-11");
    expect(answer.status).toBe(502);
    expect(answer.body.error_output.error_info).toMatchObject({
      target_status: 500,
      fault_code: "Server",
      fault_subcode: "InternalServerError",
      fault_string: "Error: database down",
    });
    expect(JSON.stringify(answer.body)).not.toContain("at ");
  });
});

describe("what of a fault reaches epilot", () => {
  const LEAKY =
    "Login to jdbc:sqlserver://db01.corp.internal:1433 failed for user=crm_svc password=Hunter2! from 10.20.30.40 via sap-gw.crm.internal:3300";
  const throwLeaky = () =>
    crm.handle(() => {
      throw {
        Fault: {
          faultcode: "soap:Server",
          faultstring: `${LEAKY}\n\tat com.acme.crm.Dao.save(Dao.java:42)`,
          detail: { Conflict: { Message: "duplicate of CRM-7" } },
        },
      };
    });

  test("by default: the code and a cut text without URLs, hosts, IP addresses or credentials", async () => {
    throwLeaky();
    const answer = await call("crm-wsdl");
    expect(answer.status).toBe(502);
    const safe = "Login to [url] failed for user=[redacted] password=[redacted] from [ip] via [host]";
    expect(answer.body.error_output.error_reason).toBe(
      `The target of route crm-wsdl failed: SOAP fault Server: ${safe}`,
    );
    expect(answer.body.error_output.error_info).toMatchObject({ fault_code: "Server", fault_string: safe });
    for (const leak of ["db01", "corp.internal", "Hunter2", "crm_svc", "10.20.30.40", "Dao.java"])
      expect(JSON.stringify(answer.body)).not.toContain(leak);
  });

  test("the full fault goes to the log, hosts kept, credentials still out", async () => {
    throwLeaky();
    const answer = await call("crm-wsdl");
    const logged = gateway.logs.find((line) => line.msg === "SOAP fault" && line.webhook_id === answer.webhookId);
    expect(logged).toMatchObject({ level: "warn", fault_code: "Server", target_status: 200 });
    expect(logged!.fault_string).toContain("db01.corp.internal:1433");
    expect(logged!.fault_string).toContain("Dao.java:42");
    expect(logged!.fault_string).toContain("password=[redacted]");
    expect(gateway.logText()).not.toContain("Hunter2");
  });

  test("with response.error_reason, the route decides the reason; error_info keeps only the safe text", async () => {
    throwLeaky();
    const answer = await call("crm-11");
    expect(answer.body.error_output.error_reason).toBe("CRM says: duplicate of CRM-7");
    expect(JSON.stringify(answer.body)).not.toContain("Hunter2");
    expect(JSON.stringify(answer.body)).not.toContain("db01");
  });

  test("a long fault string is cut to 200 characters", async () => {
    crm.handle(() => {
      throw { Fault: { faultcode: "soap:Client", faultstring: `Rejected: ${"x".repeat(500)}` } };
    });
    const answer = await call("crm-wsdl");
    expect(answer.body.error_output.error_info.fault_string).toBe(`Rejected: ${"x".repeat(190)}…`);
  });
});

describe("WS-Security, basic auth and custom headers", () => {
  test("PasswordDigest is checked by the server; a wrong password is its authentication fault", async () => {
    const seen: any[] = [];
    crm.authenticate((security) => {
      seen.push(security);
      const token = security?.UsernameToken;
      return (
        token?.Username === "gateway" &&
        text(token.Password) === passwordDigest(text(token.Nonce), token.Created, "s3cr&t<pw")
      );
    });
    expect(await call("crm-digest")).toMatchObject({ status: 200, body: { customer_ref: "CRM-C-100017" } });
    expect(seen[0].Timestamp).toBeDefined();
    expect(crm.calls[0]!.xml).not.toContain("s3cr");
    expect(crm.calls[0]!.xml).toContain('soap:mustUnderstand="1"');

    const refused = await call("crm-digest-wrong");
    expect(refused.status).toBe(502);
    expect(refused.body.error_output.error_info).toMatchObject({
      fault_code: "Client",
      fault_subcode: "AuthenticationFailure",
      fault_string: "Invalid username or password",
    });
  });

  test("PasswordText, basic auth and a custom header block with a placeholder, on a 1.2 call", async () => {
    crm.authenticate((security) => text(security?.UsernameToken?.Password) === "s3cr&t<pw");
    expect((await call("crm-text")).status).toBe(200);
    const received = crm.calls[0]!;
    expect(received.headers.authorization).toBe(`Basic ${Buffer.from("gateway:s3cr&t<pw").toString("base64")}`);
    expect(received.soapHeaders.Tenant).toEqual({ Org: "739224", Source: "epilot" });
    expect(received.xml).toContain('<h0:Tenant xmlns:h0="urn:example:tenant">');
  });
});

describe("WSDL and templates", () => {
  test("a route with only wsdl and operation: address, version, SOAPAction and namespace come from the WSDL", async () => {
    expect(await call("crm-wsdl")).toMatchObject({ status: 200, body: { customer_ref: "CRM-C-100017" } });
    expect(crm.calls[0]!.path).toBe("/crm/soap11");
    expect(crm.calls[0]!.headers.soapaction).toBe('"urn:example:crm/CreateCustomer"');
    expect(crm.calls[0]!.xml).toContain('<tns:CreateCustomer xmlns:tns="urn:example:crm"><tns:CustomerNumber>');

    expect(await call("crm-wsdl-12")).toMatchObject({ status: 200, body: { customer_ref: "CRM-C-100017" } });
    expect(crm.calls[1]!.path).toBe("/crm/soap12");
    expect(crm.calls[1]!.headers["content-type"]).toBe(
      'application/soap+xml; charset=utf-8; action="urn:example:crm/CreateCustomer"',
    );
  });

  test("an envelope template: exact document, escaped values, WS-Security added to its Header", async () => {
    crm.authenticate((security) => security?.UsernameToken?.Username === "gateway");
    expect(await call("crm-template")).toMatchObject({ status: 200, body: { customer_ref: "CRM-C-100017" } });
    const received = crm.calls[0]!;
    expect(received.args.Name).toBe("Contract 2026-0042 </crm:Name><crm:Admin>true</crm:Admin>");
    expect(received.args.Admin).toBeUndefined();
    expect(received.xml).toContain(
      '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:crm="urn:example:crm">\n  <soapenv:Header><wsse:Security',
    );
  });

  test("validate: an operation the WSDL lacks, listing those it has, at the key's line", () => {
    const file = join(files, "config.yaml");
    const yaml = `verification:\n  public_key: "${keys.whpk}"\nroutes:\n  - name: crm\n    target:\n      type: soap\n      wsdl: ./crm.wsdl\n      operation: DeleteCustomer\n`;
    const problems = () => compileConfig(loadConfigText(file, yaml, {}), { logger: silentLogger, userAgent: "test" });
    expect(problems).toThrow(ConfigError);
    expect(problems).toThrow(
      `${file}:8:18 routes[0] (crm).target.operation: operation "DeleteCustomer" is not in ./crm.wsdl; it has: CreateCustomer, GetCustomer`,
    );
  });

  test("load errors name the key: unreadable WSDL or template, missing url/namespace, bad placeholders", () => {
    const file = join(files, "config.yaml");
    const check = (target: string) => {
      const yaml = `verification:\n  public_key: "${keys.whpk}"\nroutes:\n  - name: crm\n    target:\n      type: soap\n${target.replace(/^/gm, "      ")}\n`;
      try {
        compileConfig(loadConfigText(file, yaml, {}), { logger: silentLogger, userAgent: "test" });
      } catch (error) {
        return (error as Error).message.split("\n").map((line) => line.slice(file.length + 1));
      }
      throw new Error("expected a config error");
    };
    expect(check("wsdl: ./missing.wsdl\noperation: CreateCustomer")).toEqual([
      "7:13 routes[0] (crm).target.wsdl: file not found: ./missing.wsdl",
    ]);
    expect(check("operation: CreateCustomer")).toEqual([
      "6:7 routes[0] (crm).target.url: is required (or set wsdl to read it from)",
    ]);
    expect(check("url: http://crm/ws\noperation: CreateCustomer")).toEqual([
      "6:7 routes[0] (crm).target.namespace: is required (or set wsdl to read it from)",
    ]);
    expect(check("wsdl: ./crm.wsdl\noperation: CreateCustomer\nport: Nope")).toEqual([
      '9:13 routes[0] (crm).target.port: no port "Nope" in ./crm.wsdl offers CreateCustomer; these do: CustomerServiceSoap11, CustomerServiceSoap12',
    ]);
    expect(
      check("wsdl: ./crm.wsdl\noperation: CreateCustomer\nenvelope_template: ./create-customer.xml\nversion: '1.2'"),
    ).toEqual(["10:16 routes[0] (crm).target.version: is 1.2 but the envelope template is a SOAP 1.1 envelope"]);
    expect(check("wsdl: ./crm.wsdl\noperation: CreateCustomer\nsoap_headers: [{ name: 'a b' }]")).toEqual([
      "9:30 routes[0] (crm).target.soap_headers[0].name: must be an XML element name (no prefix)",
    ]);
    expect(
      check("wsdl: ./crm.wsdl\noperation: CreateCustomer\nsoap_headers: [{ name: A, value: '{{ ( }}' }]"),
    ).toHaveLength(1);
    expect(check("wsdl: ./crm.wsdl\noperation: CreateCustomer\nheaders: { SOAPAction: x }")).toEqual([
      "9:30 routes[0] (crm).target.headers.SOAPAction: is set by the SOAP target from version and soap_action",
    ]);
    expect(
      check(
        "wsdl: ./crm.wsdl\noperation: CreateCustomer\nheaders: { Authorization: x }\nbasic_auth: { username: u, password: p }",
      ),
    ).toEqual([
      "9:33 routes[0] (crm).target.headers.Authorization: set basic_auth or an Authorization header, not both",
    ]);
    expect(check("wsdl: ./crm.wsdl\noperation: CreateCustomer\nenvelope_template: ./crm.wsdl")[0]).toBe(
      "9:26 routes[0] (crm).target.envelope_template: ./crm.wsdl: the root element must be a SOAP 1.1 or 1.2 Envelope",
    );
  });
});

describe("slow and broken answers", () => {
  test("a slow server is 504 once the target's timeout passes", async () => {
    crm.handle(async () => {
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      return { CustomerRef: "late", Status: "late" };
    });
    const started = performance.now();
    const answer = await call("crm-slow");
    expect(answer.status).toBe(504);
    expect(answer.body.error_output.error_reason).toBe("The target of route crm-slow did not answer within 300ms");
    expect(performance.now() - started).toBeLessThan(1_400);
  });

  test("a non-XML answer is a clear 502 that names no host", async () => {
    const answer = await call("crm-not-xml");
    expect(answer.status).toBe(502);
    expect(answer.body.error_output.error_reason).toBe(
      "The target of route crm-not-xml failed: the answer is not well-formed XML (HTTP 200)",
    );
    expect(JSON.stringify(answer.body)).not.toContain("internal.example");
  });

  test("a truncated answer is a clear 502", async () => {
    const answer = await call("crm-truncated");
    expect(answer.status).toBe(502);
    expect(answer.body.error_output.error_reason).toBe(
      "The target of route crm-truncated failed: the answer is not well-formed XML (HTTP 200)",
    );
  });
});
