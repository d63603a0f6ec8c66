import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** One request the SAP-like server received, and what it made of it. */
export interface SapRequest {
  readonly method: string;
  readonly url: string;
  readonly csrfToken: string | undefined;
  readonly cookie: string | undefined;
  /** `fetched` (a token fetch), `accepted`, or why the call was refused. */
  readonly verdict: "fetched" | "accepted" | "no_session" | "bad_token" | "unauthorized";
  readonly body: string;
  readonly headers: IncomingMessage["headers"];
}

export interface SapGateway {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** `<url>/sap/opu/odata/sap/API_BUSINESS_PARTNER/` */
  readonly serviceUrl: string;
  readonly requests: SapRequest[];
  /** Ends every session (as SAP does after its idle timeout): the next call gets 403 `Required`. */
  expireSessions(): void;
  close(): Promise<void>;
}

const SESSION_COOKIE = "SAP_SESSIONID_ERP_100";
const SERVICE_PATH = "/sap/opu/odata/sap/API_BUSINESS_PARTNER/";

/**
 * A stand-in for an SAP Gateway OData service that enforces CSRF protection as SAP does: a `GET`
 * with `x-csrf-token: Fetch` opens a session (`SAP_SESSIONID_...` and `sap-usercontext` cookies)
 * and answers the session's token in `x-csrf-token`; a modifying call (POST, PUT, PATCH, DELETE)
 * must carry both the session cookie and that session's token, else `403` with
 * `x-csrf-token: Required`. An accepted call with an XML body is answered with a SOAP envelope. With `basic`, every request needs those credentials too (401).
 *
 * @example
 * const sap = await startSapGateway({ basic: { username: "gw", password: "pw" } });
 * // target: { url: `${sap.serviceUrl}A_BusinessPartner`, csrf: {}, auth: { type: basic, ... } }
 */
export async function startSapGateway(options: { basic?: { username: string; password: string } } = {}) {
  const requests: SapRequest[] = [];
  /** session id -> its CSRF token */
  const sessions = new Map<string, string>();
  const expectedAuthorization = options.basic
    ? `Basic ${Buffer.from(`${options.basic.username}:${options.basic.password}`).toString("base64")}`
    : undefined;

  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString("utf8");
    const csrfToken = header(req, "x-csrf-token");
    const cookie = header(req, "cookie");
    const record = (verdict: SapRequest["verdict"]) =>
      requests.push({
        method: req.method ?? "",
        url: req.url ?? "",
        csrfToken,
        cookie,
        verdict,
        body,
        headers: req.headers,
      });

    if (expectedAuthorization && req.headers.authorization !== expectedAuthorization) {
      record("unauthorized");
      res.writeHead(401, { "www-authenticate": 'Basic realm="SAP NetWeaver Application Server [ERP/100]"' });
      return res.end();
    }
    const sessionId = /(?:^|;\s*)SAP_SESSIONID_ERP_100=([^;]+)/.exec(cookie ?? "")?.[1];
    if (req.method === "GET" || req.method === "HEAD") {
      if (csrfToken?.toLowerCase() === "fetch") {
        let id = sessionId && sessions.has(sessionId) ? sessionId : undefined;
        const setCookies: string[] = [];
        if (!id) {
          id = randomBytes(16).toString("hex");
          sessions.set(id, randomBytes(18).toString("base64"));
          setCookies.push(`${SESSION_COOKIE}=${id}; path=/; HttpOnly`, "sap-usercontext=sap-client=100; path=/");
        }
        record("fetched");
        res.writeHead(200, {
          "x-csrf-token": sessions.get(id)!,
          "content-type": "application/json",
          ...(setCookies.length > 0 ? { "set-cookie": setCookies } : {}),
        });
        return res.end(JSON.stringify({ d: { EntitySets: ["A_BusinessPartner"] } }));
      }
      record("accepted");
      res.writeHead(200, { "content-type": "application/json" });
      return res.end(JSON.stringify({ d: { results: [] } }));
    }
    const sessionToken = sessionId === undefined ? undefined : sessions.get(sessionId);
    if (sessionToken === undefined || csrfToken !== sessionToken) {
      record(sessionToken === undefined ? "no_session" : "bad_token");
      res.writeHead(403, { "x-csrf-token": "Required", "content-type": "text/plain" });
      return res.end("CSRF token validation failed");
    }
    record("accepted");
    if (req.headers["content-type"]?.includes("xml")) {
      // A SOAP call (SAP's SOAP runtime sits behind the same session and CSRF handling).
      res.writeHead(200, { "content-type": "text/xml; charset=utf-8" });
      return res.end(
        '<?xml version="1.0"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><CreateResponse xmlns="urn:sap"><BusinessPartner>1000042</BusinessPartner></CreateResponse></soap:Body></soap:Envelope>',
      );
    }
    res.writeHead(201, { "content-type": "application/json" });
    return res.end(JSON.stringify({ d: { BusinessPartner: "1000042" } }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const gateway: SapGateway = {
    url: base,
    serviceUrl: `${base}${SERVICE_PATH}`,
    requests,
    expireSessions: () => sessions.clear(),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return gateway;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(", ") : value;
}
