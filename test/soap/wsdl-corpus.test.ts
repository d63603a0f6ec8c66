import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import * as soap from "soap";
import { InvalidConfigValue } from "../../src/kit/config-errors.ts";
import { silentLogger } from "../../src/log/logger.ts";
import { createSoapTarget, soapTargetSchema } from "../../src/targets/soap/soap-target.ts";
import { loadWsdl } from "../../src/targets/soap/wsdl.ts";
import { childElements, parseXmlTree, type XmlElement } from "../../src/targets/soap/xml-tree.ts";
import type { Target } from "../../src/targets/types.ts";
import { outboundMessageOf } from "../support/calls.ts";
import { tempDir } from "../support/gateway.ts";
import { type RecordingServer, startRecordingServer } from "../support/recording-server.ts";

/**
 * The WSDL shapes of test/soap/wsdl-corpus/ (see its README): for each, the operations actiongate
 * lists, what it reads for one operation, and the envelope it sends (body element, namespace,
 * element form, SOAPAction, version), checked on the wire. A few are then called for real, against
 * node-soap's server built from the same WSDL.
 */

const CORPUS = join(import.meta.dir, "wsdl-corpus");
const context = { configDir: CORPUS, logger: silentLogger, userAgent: "actiongate/test" };
const SOAP11_ENVELOPE = "http://schemas.xmlsoap.org/soap/envelope/";
const SOAP12_ENVELOPE = "http://www.w3.org/2003/05/soap-envelope";

interface CorpusCase {
  readonly name: string;
  readonly wsdl: string;
  readonly operations: readonly string[];
  readonly operation: string;
  /** Further target keys (port, version, namespace, ...). */
  readonly config?: Record<string, unknown>;
  /** The transform's result: its first key is checked for the element form. */
  readonly content: Record<string, unknown>;
  /** What the WSDL gives for the chosen port (`url` undefined: the WSDL has no address). */
  readonly reads: { port: string; url: string | undefined };
  readonly sends: {
    version: "1.1" | "1.2";
    soapAction: string;
    element: string;
    namespace: string;
    qualified: boolean;
  };
}

const CASES: readonly CorpusCase[] = [
  {
    name: "document/literal wrapped, inline schema, qualified (the CRM fixture)",
    wsdl: "../crm.wsdl",
    operations: ["CreateCustomer", "GetCustomer"],
    operation: "GetCustomer",
    content: { CustomerNumber: "C-1" },
    reads: { port: "CustomerServiceSoap11", url: "http://crm.example.invalid/crm/soap11" },
    sends: {
      version: "1.1",
      soapAction: "urn:example:crm/GetCustomer",
      element: "GetCustomer",
      namespace: "urn:example:crm",
      qualified: true,
    },
  },
  {
    name: "CXF split: binding here, portType and messages in a wsdl:import, types in an xsd:import (unqualified)",
    wsdl: "cxf-split/CustomerService.wsdl",
    operations: ["createCustomer", "getCustomer"],
    operation: "createCustomer",
    content: { customer: { customerNumber: "C-1", name: "Jane" } },
    reads: { port: "CustomerServiceImplPort", url: "http://localhost:8080/crm/services/CustomerService" },
    sends: {
      version: "1.1",
      soapAction: "",
      element: "createCustomer",
      namespace: "http://ws.crm.example.com/",
      qualified: false,
    },
  },
  {
    name: ".NET WCF: schemas in xsd:imported files (qualified), a SOAP 1.1 port (first)",
    wsdl: "wcf/OrderService.wsdl",
    operations: ["GetOrderStatus", "PlaceOrder"],
    operation: "PlaceOrder",
    content: { order: { ContractNumber: "2026-0042", Amount: 84.5 } },
    reads: { port: "BasicHttpBinding_IOrderService", url: "http://billing.example.com/OrderService.svc/basic" },
    sends: {
      version: "1.1",
      soapAction: "http://tempuri.org/IOrderService/PlaceOrder",
      element: "PlaceOrder",
      namespace: "http://tempuri.org/",
      qualified: true,
    },
  },
  {
    name: ".NET WCF: version 1.2 picks the WSHttpBinding port",
    wsdl: "wcf/OrderService.wsdl",
    operations: ["GetOrderStatus", "PlaceOrder"],
    operation: "GetOrderStatus",
    config: { version: "1.2" },
    content: { orderNumber: "O-1" },
    reads: { port: "WSHttpBinding_IOrderService", url: "http://billing.example.com/OrderService.svc/ws" },
    sends: {
      version: "1.2",
      soapAction: "http://tempuri.org/IOrderService/GetOrderStatus",
      element: "GetOrderStatus",
      namespace: "http://tempuri.org/",
      qualified: true,
    },
  },
  {
    name: "SAP RFC function module: no elementFormDefault (unqualified), 1.1 and 1.2 bindings",
    wsdl: "sap/ZWS_CUSTOMER.wsdl",
    operations: ["Z_BAPI_CUSTOMER_CREATE"],
    operation: "Z_BAPI_CUSTOMER_CREATE",
    content: { KUNNR: "0000100017", NAME1: "Jane Doe" },
    reads: {
      port: "ZWS_CUSTOMER",
      url: "http://sap-prd.example.com:8000/sap/bc/srt/rfc/sap/zws_customer/100/zws_customer/zws_customer",
    },
    sends: {
      version: "1.1",
      soapAction: "urn:sap-com:document:sap:rfc:functions:ZWS_CUSTOMER:Z_BAPI_CUSTOMER_CREATERequest",
      element: "Z_BAPI_CUSTOMER_CREATE",
      namespace: "urn:sap-com:document:sap:rfc:functions",
      qualified: false,
    },
  },
  {
    name: "SAP, port picks the SOAP 1.2 binding",
    wsdl: "sap/ZWS_CUSTOMER.wsdl",
    operations: ["Z_BAPI_CUSTOMER_CREATE"],
    operation: "Z_BAPI_CUSTOMER_CREATE",
    config: { port: "ZWS_CUSTOMER_soap12" },
    content: { KUNNR: "0000100017" },
    reads: {
      port: "ZWS_CUSTOMER_soap12",
      url: "http://sap-prd.example.com:8000/sap/bc/srt/rfc/sap/zws_customer/100/zws_customer/zws_customer",
    },
    sends: {
      version: "1.2",
      soapAction: "urn:sap-com:document:sap:rfc:functions:ZWS_CUSTOMER:Z_BAPI_CUSTOMER_CREATERequest",
      element: "Z_BAPI_CUSTOMER_CREATE",
      namespace: "urn:sap-com:document:sap:rfc:functions",
      qualified: false,
    },
  },
  {
    name: "ONVIF: a SOAP 1.2 binding and no wsdl:service; url comes from the config",
    wsdl: "onvif/devicemgmt.wsdl",
    operations: ["GetDeviceInformation", "SetHostname", "SetSystemDateAndTime"],
    operation: "SetHostname",
    content: { Name: "camera-17" },
    reads: { port: "DeviceBinding", url: undefined },
    sends: {
      version: "1.2",
      soapAction: "http://www.onvif.org/ver10/device/wsdl/SetHostname",
      element: "SetHostname",
      namespace: "http://www.onvif.org/ver10/device/wsdl",
      qualified: true,
    },
  },
  {
    name: "document/literal bare: the body element is named after the part's element, not the operation",
    wsdl: "document-bare.wsdl",
    operations: ["SubmitOrder"],
    operation: "SubmitOrder",
    content: { OrderNumber: "O-7", Amount: 12 },
    reads: { port: "OrdersSoap", url: "http://erp.example.com/orders" },
    sends: {
      version: "1.1",
      soapAction: "urn:example:orders#SubmitOrder",
      element: "OrderRequest",
      namespace: "urn:example:orders:types",
      qualified: true,
    },
  },
  {
    name: "rpc/literal: the operation in soap:body's namespace, unqualified parts",
    wsdl: "rpc-literal.wsdl",
    operations: ["submitReading"],
    operation: "submitReading",
    content: { meterId: "M-1", value: 1234.5 },
    reads: { port: "MeterReadingPort", url: "http://meter.example.com/MeterReadingService" },
    sends: {
      version: "1.1",
      soapAction: "",
      element: "submitReading",
      namespace: "http://meter.example.com/rpc",
      qualified: false,
    },
  },
  {
    name: "soap:body parts: the body part, never the header part listed before it",
    wsdl: "header-parts.wsdl",
    operations: ["AttachDocument", "CancelContract", "UpdateContract"],
    operation: "UpdateContract",
    content: { ContractNumber: "2026-0042" },
    reads: { port: "ContractsSoap", url: "http://contracts.example.com/ws" },
    sends: {
      version: "1.1",
      soapAction: "urn:example:contracts/UpdateContract",
      element: "UpdateContract",
      namespace: "urn:example:contracts",
      qualified: true,
    },
  },
  {
    name: "no parts attribute: the part a soap:header takes is not a body part",
    wsdl: "header-parts.wsdl",
    operations: ["AttachDocument", "CancelContract", "UpdateContract"],
    operation: "CancelContract",
    content: { ContractNumber: "2026-0042" },
    reads: { port: "ContractsSoap", url: "http://contracts.example.com/ws" },
    sends: {
      version: "1.1",
      soapAction: "urn:example:contracts/CancelContract",
      element: "CancelContract",
      namespace: "urn:example:contracts",
      qualified: true,
    },
  },
  {
    name: "two services, 1.1, 1.2 and HTTP ports: port picks one of the second service",
    wsdl: "several-ports.wsdl",
    operations: ["GetTariff"],
    operation: "GetTariff",
    config: { port: "TariffsSoap12" },
    content: { PostalCode: "50667" },
    reads: { port: "TariffsSoap12", url: "http://tariffs.example.com/ws12" },
    sends: {
      version: "1.2",
      soapAction: "urn:example:tariffs/GetTariff",
      element: "GetTariff",
      namespace: "urn:example:tariffs",
      qualified: true,
    },
  },
  {
    name: "wsdl:imports in a cycle: each file read once",
    wsdl: "import-cycle/a.wsdl",
    operations: ["Ping"],
    operation: "Ping",
    content: { Text: "hello" },
    reads: { port: "PingSoap", url: "http://ping.example.com/ws" },
    sends: {
      version: "1.1",
      soapAction: "urn:example:cycle/Ping",
      element: "Ping",
      namespace: "urn:example:cycle:b",
      qualified: true,
    },
  },
  {
    name: "a binding operation missing from the portType: namespace from the config fills in",
    wsdl: "binding-operation-not-in-porttype.wsdl",
    operations: ["DeleteCustomer", "GetCustomer"],
    operation: "DeleteCustomer",
    config: { namespace: "urn:example:crm" },
    content: { CustomerNumber: "C-1" },
    reads: { port: "CustomersSoap", url: "http://crm.example.com/ws" },
    sends: {
      version: "1.1",
      soapAction: "urn:example:crm/DeleteCustomer",
      element: "DeleteCustomer",
      namespace: "urn:example:crm",
      qualified: true,
    },
  },
  {
    name: "a body element whose schema is at a URL: element_form from the config fills in",
    wsdl: "remote-schema.wsdl",
    operations: ["ReadMeter"],
    operation: "ReadMeter",
    config: { element_form: "unqualified" },
    content: { MeterId: "M-1" },
    reads: { port: "MeterSoap", url: "http://meter.example.com/ws" },
    sends: {
      version: "1.1",
      soapAction: "urn:example:meter/ReadMeter",
      element: "ReadMeter",
      namespace: "urn:example:meter:types",
      qualified: false,
    },
  },
];

let recorder: RecordingServer;
const targets: Target[] = [];
beforeAll(async () => {
  recorder = await startRecordingServer({
    headers: { "content-type": "text/xml" },
    body: `<s:Envelope xmlns:s="${SOAP11_ENVELOPE}"><s:Body><Ok/></s:Body></s:Envelope>`,
  });
});
afterAll(async () => {
  await Promise.all(targets.map((target) => target.close()));
  await recorder.close();
});

const target = (config: Record<string, unknown>): Target => {
  const created = createSoapTarget(soapTargetSchema.parse({ type: "soap", ...config }), context);
  targets.push(created);
  return created;
};
const message = (body: unknown) => outboundMessageOf({ body, payload: {} }, "msg_corpus");
const bodyElement = (xml: string): XmlElement => childElements(childElements(parseXmlTree(xml), "Body")[0]!)[0]!;

describe("WSDL corpus: what actiongate reads and sends", () => {
  for (const shape of CASES) {
    test(shape.name, async () => {
      const wsdl = loadWsdl(join(CORPUS, shape.wsdl));
      expect(wsdl.operations).toEqual([...shape.operations]);
      const port = wsdl.ports.find((candidate) => candidate.port === shape.reads.port);
      expect(port?.url).toBe(shape.reads.url);

      // Through the target, as a route would send it; url from the config wins over the WSDL's.
      const sent = recorder.requests.length;
      const outcome = await target({
        wsdl: shape.wsdl,
        operation: shape.operation,
        url: `${recorder.url}/corpus`,
        ...shape.config,
      }).deliver(await message(shape.content));
      expect(outcome.kind).toBe("delivered");
      const request = recorder.requests[sent]!;
      const root = parseXmlTree(request.body);
      expect(root.namespace).toBe(shape.sends.version === "1.1" ? SOAP11_ENVELOPE : SOAP12_ENVELOPE);
      if (shape.sends.version === "1.1") {
        expect(request.headers["content-type"]).toBe("text/xml; charset=utf-8");
        expect(request.headers.soapaction).toBe(`"${shape.sends.soapAction}"`);
      } else {
        expect(request.headers["content-type"]).toBe(
          `application/soap+xml; charset=utf-8${shape.sends.soapAction ? `; action="${shape.sends.soapAction}"` : ""}`,
        );
      }
      const element = bodyElement(request.body);
      expect({ element: element.localName, namespace: element.namespace }).toEqual({
        element: shape.sends.element,
        namespace: shape.sends.namespace,
      });
      const firstChild = childElements(element)[0]!;
      expect(firstChild.localName).toBe(Object.keys(shape.content)[0]!);
      expect(firstChild.namespace).toBe(shape.sends.qualified ? shape.sends.namespace : "");
      // Nothing but the one body element: a header part never lands in the Body.
      expect(childElements(childElements(root, "Body")[0]!)).toHaveLength(1);
    });
  }
});

describe("WSDL corpus: what actiongate refuses, and why", () => {
  const refusal = (config: Record<string, unknown>) => {
    try {
      target(config);
    } catch (error) {
      if (error instanceof InvalidConfigValue) return { path: error.path.join("."), message: error.message };
      throw error;
    }
    throw new Error("expected a config error");
  };

  test("rpc/encoded: refused at load, pointing at envelope_template; with a template it is sent as written", async () => {
    expect(refusal({ wsdl: "rpc-encoded.wsdl", operation: "createInvoice" })).toEqual({
      path: "operation",
      message: expect.stringContaining(
        'operation "createInvoice" is rpc/encoded in rpc-encoded.wsdl (SOAP encoding: xsi:type on every value, SOAP-ENC arrays), which actiongate does not write from a transform; send it with envelope_template',
      ),
    });
    const template = `<soapenv:Envelope xmlns:soapenv="${SOAP11_ENVELOPE}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:b="urn:billing">
  <soapenv:Body>
    <b:createInvoice soapenv:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">
      <customerId xsi:type="xsd:string">{{ $body.customer }}</customerId>
    </b:createInvoice>
  </soapenv:Body>
</soapenv:Envelope>`;
    const dir = tempDir({ "create-invoice.xml": template });
    const encoded = createSoapTarget(
      soapTargetSchema.parse({
        type: "soap",
        wsdl: join(CORPUS, "rpc-encoded.wsdl"),
        operation: "createInvoice",
        envelope_template: "./create-invoice.xml",
        url: `${recorder.url}/axis`,
      }),
      { ...context, configDir: dir },
    );
    targets.push(encoded);
    const sent = recorder.requests.length;
    expect((await encoded.deliver(await message({ customer: "C-1" }))).kind).toBe("delivered");
    expect(recorder.requests[sent]!.body).toContain('<customerId xsi:type="xsd:string">C-1</customerId>');
  });

  test("two body parts: only an envelope template can send them", () => {
    expect(refusal({ wsdl: "header-parts.wsdl", operation: "AttachDocument" })).toEqual({
      path: "wsdl",
      message:
        'header-parts.wsdl: operation "AttachDocument": its input puts 2 parts in the Body (body, attachment), and a transform fills one body element; send it with envelope_template',
    });
  });

  test("a binding operation missing from the portType, without namespace: says what to set", () => {
    expect(refusal({ wsdl: "binding-operation-not-in-porttype.wsdl", operation: "DeleteCustomer" })).toEqual({
      path: "wsdl",
      message:
        'binding-operation-not-in-porttype.wsdl: operation "DeleteCustomer" has no body element: the binding\'s operation "DeleteCustomer" is not in portType Customers; set namespace to send <DeleteCustomer> in it, or envelope_template',
    });
  });

  test("an http(s) wsdl:import is never fetched", () => {
    expect(refusal({ wsdl: "remote-import.wsdl", operation: "GetCustomer" })).toEqual({
      path: "wsdl",
      message:
        "remote-import.wsdl: wsdl:import of http://crm.example.com/ws/CustomerService?wsdl=CustomerService.wsdl: actiongate reads local files only and never downloads one; save it next to the WSDL and point the import at the file",
    });
  });

  test("a body element's schema at a URL, without element_form: says what to do", () => {
    expect(refusal({ wsdl: "remote-schema.wsdl", operation: "ReadMeter" })).toEqual({
      path: "wsdl",
      message:
        "remote-schema.wsdl: the schema of element ReadMeter (namespace urn:example:meter:types) is at https://meter.example.com/schemas/meter.xsd, which was not read (actiongate never downloads a schema); save it next to the WSDL and point schemaLocation at the file, or set element_form",
    });
  });

  test("no wsdl:service: the operations are listed, and url is what is missing", () => {
    expect(refusal({ wsdl: "onvif/devicemgmt.wsdl", operation: "GetDeviceInformation" })).toEqual({
      path: "url",
      message:
        "is required: onvif/devicemgmt.wsdl has no address for GetDeviceInformation (binding DeviceBinding is in no wsdl:service port)",
    });
    expect(refusal({ wsdl: "onvif/devicemgmt.wsdl", operation: "Reboot" })).toEqual({
      path: "operation",
      message:
        'operation "Reboot" is not in onvif/devicemgmt.wsdl; it has: GetDeviceInformation, SetHostname, SetSystemDateAndTime',
    });
  });

  test("a DOCTYPE inside wsdl:definitions (not in the prolog) is refused", () => {
    expect(refusal({ wsdl: "doctype-inside.wsdl", operation: "X", url: "http://x/" })).toEqual({
      path: "wsdl",
      message: "doctype-inside.wsdl: a DOCTYPE is not allowed",
    });
  });
});

/** node-soap's server from a corpus WSDL (imports resolved from its file); records what each operation got. */
async function startCorpusServer(
  wsdlFile: string,
  services: Record<string, Record<string, Record<string, (args: any) => unknown>>>,
): Promise<{ url: string; received: { operation: string; args: any; xml: string }[]; close(): Promise<void> }> {
  const received: { operation: string; args: any; xml: string }[] = [];
  const pending = new WeakMap<IncomingMessage, string>();
  const server: Server = createServer((_req, res) => res.writeHead(404).end());
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const recorded: Record<string, Record<string, Record<string, (...args: any[]) => unknown>>> = {};
  for (const [service, ports] of Object.entries(services)) {
    recorded[service] = {};
    for (const [port, operations] of Object.entries(ports)) {
      recorded[service]![port] = Object.fromEntries(
        Object.entries(operations).map(([name, handler]) => [
          name,
          (args: any, _callback: unknown, _headers: unknown, req: IncomingMessage) => {
            received.push({ operation: name, args, xml: pending.get(req) ?? "" });
            return handler(args);
          },
        ]),
      );
    }
  }
  // With imports, node-soap reads the WSDL asynchronously and serves once it is ready.
  let ready!: (error: unknown) => void;
  const loaded = new Promise<unknown>((resolve) => {
    ready = resolve;
  });
  const listener = soap.listen(server, {
    path: "/ws",
    services: recorded,
    // node-soap would download a schema at a URL; the test never leaves the machine.
    xml: readFileSync(wsdlFile, "utf8").replace(/<xsd:import schemaLocation="https?:[^>]*>/g, ""),
    uri: wsdlFile,
    suppressStack: true,
    callback: (error: unknown) => ready(error),
  } as soap.IServerOptions);
  const error = await loaded;
  if (error) throw error;
  listener.log = (type: string, data: unknown, req: IncomingMessage) => {
    if (type === "received") pending.set(req, String(data));
  };
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/ws`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe("WSDL corpus: real calls against node-soap's server built from the same WSDL", () => {
  test("CXF split (imports, unqualified children): node-soap takes the call and its arguments", async () => {
    const wsdl = join(CORPUS, "cxf-split", "CustomerService.wsdl");
    const server = await startCorpusServer(wsdl, {
      CustomerServiceImplService: {
        CustomerServiceImplPort: {
          createCustomer: (args) => ({ return: `CRM-${args.customer.customerNumber}` }),
          getCustomer: () => ({}),
        },
      },
    });
    try {
      const outcome = await target({
        wsdl: "cxf-split/CustomerService.wsdl",
        operation: "createCustomer",
        url: server.url,
      }).deliver(await message({ customer: { customerNumber: "C-100017", name: "Jane Doe" } }));
      expect(outcome).toMatchObject({
        kind: "delivered",
        response: { body: { createCustomerResponse: { return: "CRM-C-100017" } } },
      });
      expect(server.received).toEqual([
        {
          operation: "createCustomer",
          args: { customer: { customerNumber: "C-100017", name: "Jane Doe" } },
          xml: expect.stringContaining("<customer><customerNumber>C-100017</customerNumber>"),
        },
      ]);
    } finally {
      await server.close();
    }
  });

  test("WCF over SOAP 1.2 (schemas imported, qualified children)", async () => {
    const wsdl = join(CORPUS, "wcf", "OrderService.wsdl");
    const operations = {
      PlaceOrder: (args: any) => ({ PlaceOrderResult: `accepted ${args.order.ContractNumber}` }),
      GetOrderStatus: () => ({ GetOrderStatusResult: "open" }),
    };
    const server = await startCorpusServer(wsdl, {
      OrderService: { BasicHttpBinding_IOrderService: operations, WSHttpBinding_IOrderService: operations },
    });
    try {
      const outcome = await target({
        wsdl: "wcf/OrderService.wsdl",
        operation: "PlaceOrder",
        version: "1.2",
        url: server.url,
      }).deliver(await message({ order: { ContractNumber: "2026-0042", Amount: 84.5 } }));
      expect(outcome).toMatchObject({
        kind: "delivered",
        response: { body: { PlaceOrderResponse: { PlaceOrderResult: "accepted 2026-0042" } } },
      });
      expect(server.received[0]).toMatchObject({
        operation: "PlaceOrder",
        args: { order: { ContractNumber: "2026-0042", Amount: 84.5 } }, // node-soap read xs:decimal from the imported schema
      });
      expect(server.received[0]!.xml).toContain('<tns:PlaceOrder xmlns:tns="http://tempuri.org/"><tns:order>');
    } finally {
      await server.close();
    }
  });

  test("header parts: the body part reaches the operation, the header part's element is not the Body", async () => {
    const wsdl = join(CORPUS, "header-parts.wsdl");
    const server = await startCorpusServer(wsdl, {
      Contracts: {
        ContractsSoap: {
          UpdateContract: (args) => ({ Result: `updated ${args.ContractNumber}` }),
          CancelContract: () => ({ Result: "cancelled" }),
          AttachDocument: () => ({ Result: "attached" }),
        },
      },
    });
    try {
      const outcome = await target({
        wsdl: "header-parts.wsdl",
        operation: "UpdateContract",
        url: server.url,
        soap_headers: [{ name: "AuthHeader", value: { ApiKey: "k-123" } }],
      }).deliver(await message({ ContractNumber: "2026-0042" }));
      expect(outcome.kind).toBe("delivered");
      expect(server.received).toMatchObject([{ operation: "UpdateContract", args: { ContractNumber: "2026-0042" } }]);
      expect(bodyElement(server.received[0]!.xml).localName).toBe("UpdateContract");
    } finally {
      await server.close();
    }
  });
});
