import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import * as soap from "soap";

/** The fixture WSDL: CustomerService with a SOAP 1.1 port (/crm/soap11) and a SOAP 1.2 port (/crm/soap12). */
export const CRM_WSDL_FILE = join(import.meta.dir, "crm.wsdl");

/** One call as the SOAP server received it. */
export interface ReceivedCall {
  path: string;
  headers: IncomingMessage["headers"];
  /** The raw envelope. */
  xml: string;
  operation: string;
  /** The operation's arguments as node-soap parsed them. */
  args: any;
  /** SOAP headers as node-soap parsed them. */
  soapHeaders: any;
}

/** What the service does for a call: return a result, throw `{ Fault: ... }`, or be slow. */
export type CrmHandler = (operation: string, args: any) => unknown;

export interface CrmServer {
  /** `http://127.0.0.1:<port>` */
  base: string;
  /** The fixture WSDL with its addresses pointing at this server. */
  wsdl: string;
  calls: ReceivedCall[];
  handle(handler: CrmHandler): void;
  /** When set, the server checks the WS-Security header with it (node-soap's `authenticate`). */
  authenticate(check: ((security: any) => boolean) | undefined): void;
  close(): Promise<void>;
}

const defaultHandler: CrmHandler = (operation, args) =>
  operation === "CreateCustomer"
    ? { CustomerRef: `CRM-${args.CustomerNumber}`, Status: "created" }
    : { Name: "Jane Doe" };

/**
 * A real SOAP service (node-soap's `soap.listen`) on 127.0.0.1: `/crm/soap11` answers in SOAP 1.1
 * envelopes (whatever version the call had, as node-soap does), `/crm/soap12` in SOAP 1.2 ones.
 * `/not-xml` and `/truncated` answer 200 with what a broken proxy or a crashed server sends.
 */
export async function startCrmServer(): Promise<CrmServer> {
  const calls: ReceivedCall[] = [];
  let handler = defaultHandler;
  let check: ((security: any) => boolean) | undefined;
  const pending = new WeakMap<IncomingMessage, { xml: string }>();

  const server: Server = createServer((req, res) => {
    // Reached only for paths node-soap does not serve.
    if (req.url === "/not-xml") {
      res.writeHead(200, { "content-type": "text/html" });
      res.end("<html><body><h1>502 Bad Gateway</h1><hr>nginx at gw-17.internal.example<br></body></html>");
    } else if (req.url === "/truncated") {
      res.writeHead(200, { "content-type": "text/xml" });
      res.end(
        '<?xml version="1.0"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><CreateCustomerResponse><Cust',
      );
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const wsdl = readFileSync(CRM_WSDL_FILE, "utf8").replaceAll("http://crm.example.invalid", base);

  const operation = (name: string) => async (args: any, _callback: unknown, soapHeaders: any, req: IncomingMessage) => {
    calls.push({
      path: req.url ?? "",
      headers: req.headers,
      xml: pending.get(req)?.xml ?? "",
      operation: name,
      args,
      soapHeaders,
    });
    return await handler(name, args);
  };
  const port = { CreateCustomer: operation("CreateCustomer"), GetCustomer: operation("GetCustomer") };
  const services = { CustomerService: { CustomerServiceSoap11: port, CustomerServiceSoap12: port } };

  for (const [path, forceSoap12Headers] of [
    ["/crm/soap11", false],
    ["/crm/soap12", true],
  ] as const) {
    const listener = soap.listen(server, { path, services, xml: wsdl, forceSoap12Headers, suppressStack: true });
    listener.log = (type: string, data: unknown, req: IncomingMessage) => {
      if (type === "received") pending.set(req, { xml: String(data) });
    };
    listener.authenticate = (security: any) => (check ? check(security) : true);
  }

  return {
    base,
    wsdl,
    calls,
    handle(next) {
      handler = next;
    },
    authenticate(next) {
      check = next;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
