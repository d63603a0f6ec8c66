import { describe, expect, test } from "bun:test";
import { decodeXml, interpretAnswer, readSoapAnswer } from "./response.ts";
import { SOAP11_ENVELOPE, SOAP12_ENVELOPE } from "./soap-version.ts";

const envelope = (ns: string, body: string, prefix = "soap") =>
  `<?xml version="1.0" encoding="utf-8"?><${prefix}:Envelope xmlns:${prefix}="${ns}"><${prefix}:Body>${body}</${prefix}:Body></${prefix}:Envelope>`;
const fault11 = (ns = SOAP11_ENVELOPE) =>
  envelope(
    ns,
    '<soap:Fault><faultcode>soap:Client</faultcode><faultstring>Customer C-1 exists</faultstring><detail><crm:Conflict xmlns:crm="urn:crm"><crm:Ref>CRM-7</crm:Ref></crm:Conflict></detail></soap:Fault>',
  );
const fault12 = (ns = SOAP12_ENVELOPE) =>
  envelope(
    ns,
    "<soap:Fault><soap:Code><soap:Value>soap:Sender</soap:Value><soap:Subcode><soap:Value>crm:Duplicate</soap:Value></soap:Subcode></soap:Code>" +
      '<soap:Reason><soap:Text xml:lang="de">Kunde existiert</soap:Text><soap:Text xml:lang="en">Customer exists</soap:Text></soap:Reason>' +
      "<soap:Detail><Ref>CRM-7</Ref></soap:Detail></soap:Fault>",
  );

describe("readSoapAnswer", () => {
  test("the Body's content as JSON without prefixes; text stays text", () => {
    const answer = readSoapAnswer(
      envelope(
        SOAP11_ENVELOPE,
        '<ns2:CreateCustomerResponse xmlns:ns2="urn:crm"><ns2:CustomerRef>CRM-7</ns2:CustomerRef><ns2:Number>00042</ns2:Number></ns2:CreateCustomerResponse>',
      ),
    );
    expect(answer).toEqual({
      kind: "envelope",
      version: "1.1",
      body: { CreateCustomerResponse: { CustomerRef: "CRM-7", Number: "00042" } },
    });
  });

  test("repeated elements are arrays, xsi:nil is null, attributes are @keys, xmlns and xsi:type are dropped", () => {
    const answer = readSoapAnswer(
      envelope(
        SOAP12_ENVELOPE,
        '<r:Result xmlns:r="urn:r" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" r:code="OK">' +
          '<r:Item xsi:type="xsd:string">a</r:Item><r:Item>b</r:Item><r:Item>c</r:Item>' +
          '<r:Email xsi:nil="true"/><r:Empty/><r:Price currency="EUR">9.50</r:Price><r:City>K&#246;ln &amp; Bonn</r:City></r:Result>',
      ),
    );
    expect(answer).toMatchObject({
      kind: "envelope",
      version: "1.2",
      body: {
        Result: {
          "@code": "OK",
          Item: ["a", "b", "c"],
          Email: null,
          Empty: "",
          Price: { "@currency": "EUR", "#text": "9.50" },
          City: "Köln & Bonn",
        },
      },
    });
  });

  test("an element named __proto__ is an own key, never a prototype", () => {
    const answer = readSoapAnswer(envelope(SOAP11_ENVELOPE, "<R><__proto__><polluted>yes</polluted></__proto__></R>"));
    const result = (answer as any).body.R;
    expect(Object.getPrototypeOf(result)).toBe(Object.prototype);
    expect(Object.hasOwn(result, "__proto__")).toBe(true);
    expect(result.polluted).toBeUndefined();
    expect(({} as any).polluted).toBeUndefined();
  });

  test("a SOAP 1.1 fault", () => {
    const answer = readSoapAnswer(fault11());
    expect(answer).toMatchObject({ kind: "envelope", fault: { code: "Client", text: "Customer C-1 exists" } });
    expect((answer as any).body.Fault.detail).toEqual({ Conflict: { Ref: "CRM-7" } });
  });

  test("a SOAP 1.2 fault: Code/Value, the innermost Subcode, the English Reason/Text", () => {
    expect(readSoapAnswer(fault12())).toMatchObject({
      fault: { code: "Sender", subcode: "Duplicate", text: "Customer exists" },
    });
  });

  test("mixed versions are accepted: 1.2 parts in a 1.1 envelope, 1.1 parts in a 1.2 envelope", () => {
    expect(readSoapAnswer(fault12(SOAP11_ENVELOPE))).toMatchObject({
      version: "1.1",
      fault: { code: "Sender", subcode: "Duplicate" },
    });
    expect(readSoapAnswer(fault11(SOAP12_ENVELOPE))).toMatchObject({
      version: "1.2",
      fault: { code: "Client", text: "Customer C-1 exists" },
    });
    // node-soap's own fault for a thrown error: 1.2 parts, a 1.1 envelope, a prefix it never declared.
    const nodeSoap = envelope(
      SOAP11_ENVELOPE,
      "<soap:Fault><soap:Code><soap:Value>SOAP-ENV:Server</soap:Value><soap:Subcode><soap:Value>InternalServerError</soap:Value></soap:Subcode></soap:Code><soap:Reason><soap:Text>Error: boom</soap:Text></soap:Reason></soap:Fault>",
    );
    expect(readSoapAnswer(nodeSoap)).toMatchObject({
      fault: { code: "Server", subcode: "InternalServerError", text: "Error: boom" },
    });
  });

  test("a fault string reaches epilot as its first line only: a stack trace stays with the server (and the log)", () => {
    const xml = envelope(
      SOAP11_ENVELOPE,
      "<soap:Fault><faultcode>soap:Server</faultcode><faultstring>java.lang.NullPointerException\n\tat com.acme.crm.Dao.save(Dao.java:42)\n\tat sun.reflect</faultstring></soap:Fault>",
    );
    expect(readSoapAnswer(xml)).toMatchObject({
      fault: { code: "Server", text: expect.stringContaining("Dao.java:42") },
    });
    expect(interpretAnswer(500, {}, xml)).toMatchObject({
      reason: "SOAP fault Server: java.lang.NullPointerException",
      info: { fault_string: "java.lang.NullPointerException" },
    });
  });

  test("an application element named Fault is not a SOAP fault", () => {
    expect(
      readSoapAnswer(envelope(SOAP11_ENVELOPE, '<crm:Fault xmlns:crm="urn:crm"><crm:Count>0</crm:Count></crm:Fault>')),
    ).not.toHaveProperty("fault");
    // ...but an unqualified Fault with fault parts is (some servers forget the prefix).
    expect(
      readSoapAnswer(
        envelope(SOAP11_ENVELOPE, "<Fault><faultcode>Server</faultcode><faultstring>down</faultstring></Fault>"),
      ),
    ).toMatchObject({ fault: { code: "Server" } });
  });

  test("empty, not XML, truncated, not SOAP, DOCTYPE: a clear answer, never an exception", () => {
    expect(readSoapAnswer("")).toEqual({ kind: "empty" });
    expect(readSoapAnswer("  \n")).toEqual({ kind: "empty" });
    expect(readSoapAnswer("<html><body>Bad Gateway<br></body></html>")).toEqual({
      kind: "unreadable",
      problem: "the answer is not well-formed XML",
    });
    expect(readSoapAnswer('{"error": "json"}')).toEqual({
      kind: "unreadable",
      problem: "the answer is not well-formed XML",
    });
    expect(readSoapAnswer(fault11().slice(0, 120))).toEqual({
      kind: "unreadable",
      problem: "the answer is not well-formed XML",
    });
    expect(readSoapAnswer("<error>nope</error>")).toEqual({
      kind: "unreadable",
      problem: "the answer is XML but not a SOAP envelope",
    });
    expect(readSoapAnswer(`<soap:Envelope xmlns:soap="${SOAP11_ENVELOPE}"/>`)).toEqual({
      kind: "unreadable",
      problem: "the SOAP envelope has no Body",
    });
    const bomb = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>${envelope(SOAP11_ENVELOPE, "<a>&lol2;</a>")}`;
    expect(readSoapAnswer(bomb)).toEqual({
      kind: "unreadable",
      problem: "the answer holds a DOCTYPE, which SOAP forbids",
    });
    expect(readSoapAnswer(`<!-- hi --><!DOCTYPE x>${envelope(SOAP11_ENVELOPE, "<a/>")}`)).toMatchObject({
      kind: "unreadable",
    });
    // An HTML document carried in CDATA is content, not a DOCTYPE of the answer.
    expect(
      readSoapAnswer(envelope(SOAP11_ENVELOPE, "<Doc><![CDATA[<!DOCTYPE html><html></html>]]></Doc>")),
    ).toMatchObject({
      kind: "envelope",
      body: { Doc: "<!DOCTYPE html><html></html>" },
    });
  });
});

describe("interpretAnswer", () => {
  const headers = { "content-type": "text/xml" };

  test("2xx without a fault is delivered with the Body as JSON", () => {
    expect(interpretAnswer(200, headers, envelope(SOAP11_ENVELOPE, "<R><Ref>1</Ref></R>"))).toEqual({
      kind: "delivered",
      response: { status: 200, headers, body: { R: { Ref: "1" } } },
    });
    expect(interpretAnswer(202, headers, "")).toEqual({
      kind: "delivered",
      response: { status: 202, headers, body: null },
    });
  });

  test("a fault is rejected on 200 and on 500, with code and string in the reason and info", () => {
    for (const status of [200, 500]) {
      const outcome = interpretAnswer(status, headers, fault11());
      expect(outcome).toMatchObject({
        kind: "rejected",
        reason: "SOAP fault Client: Customer C-1 exists",
        info: { target_status: status, fault_code: "Client", fault_string: "Customer C-1 exists" },
        response: { status, body: { Fault: { faultcode: "soap:Client" } } },
      });
    }
    expect(interpretAnswer(500, headers, fault12())).toMatchObject({
      reason: "SOAP fault Sender/Duplicate: Customer exists",
      info: { fault_code: "Sender", fault_subcode: "Duplicate", fault_string: "Customer exists" },
    });
  });

  test("a fault says whether a retry can help: the sender's fault cannot, the receiver's may", () => {
    const fault = (code: string) =>
      envelope(
        SOAP11_ENVELOPE,
        `<soap:Fault><faultcode>soap:${code}</faultcode><faultstring>x</faultstring></soap:Fault>`,
      );
    expect(interpretAnswer(500, headers, fault("Client"))).toMatchObject({ retryable: false });
    expect(interpretAnswer(500, headers, fault("Client.Authentication"))).toMatchObject({ retryable: false });
    expect(interpretAnswer(500, headers, fault12())).toMatchObject({ retryable: false });
    expect(interpretAnswer(200, headers, fault("Server"))).toMatchObject({ retryable: true });
    expect(interpretAnswer(500, headers, fault("DuplicateCustomer"))).not.toHaveProperty("retryable");
  });

  test("non-XML or non-2xx answers are rejected with a reason that names no host", () => {
    const html = "<html><body>502 Bad Gateway at gw-17.internal.example<br></body></html>";
    const notXml = interpretAnswer(200, headers, html);
    expect(notXml).toMatchObject({
      kind: "rejected",
      reason: "the answer is not well-formed XML (HTTP 200)",
      info: { target_status: 200 },
    });
    expect((notXml as { reason: string }).reason).not.toContain("internal");
    expect(interpretAnswer(503, headers, html)).toMatchObject({
      reason: "target answered HTTP 503; the answer is not well-formed XML",
    });
    expect(interpretAnswer(500, headers, envelope(SOAP11_ENVELOPE, "<R/>"))).toMatchObject({
      kind: "rejected",
      reason: "target answered HTTP 500",
    });
    expect(interpretAnswer(404, headers, "")).toMatchObject({ kind: "rejected", reason: "target answered HTTP 404" });
  });
});

describe("decodeXml", () => {
  const xml = '<?xml version="1.0" encoding="ISO-8859-1"?><a>Köln €</a>';

  test("the content-type's charset, else the XML declaration's encoding, else UTF-8", () => {
    const latin1 = Buffer.from(xml.replace(" €", ""), "latin1");
    expect(decodeXml(latin1, "text/xml; charset=ISO-8859-1")).toContain("<a>Köln</a>");
    expect(decodeXml(latin1, "text/xml")).toContain("<a>Köln</a>");
    expect(decodeXml(latin1, 'text/xml; charset="iso-8859-1"')).toContain("<a>Köln</a>");
    const cp1252 = Buffer.concat([
      Buffer.from("<a>K"),
      Buffer.from([0xf6]),
      Buffer.from("ln "),
      Buffer.from([0x80]),
      Buffer.from("</a>"),
    ]);
    expect(decodeXml(cp1252, "text/xml; charset=windows-1252")).toBe("<a>Köln €</a>");
    expect(decodeXml(Buffer.from("<a>Köln €</a>", "utf8"), "text/xml")).toBe("<a>Köln €</a>");
  });

  test("a byte-order mark wins; an unknown charset falls back to UTF-8", () => {
    const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from("<a>Köln</a>", "utf16le")]);
    expect(decodeXml(utf16, "text/xml; charset=utf-8")).toBe("<a>Köln</a>");
    expect(decodeXml(Buffer.from("<a>Köln</a>", "utf8"), "text/xml; charset=x-unknown")).toBe("<a>Köln</a>");
  });
});
