import { describe, expect, test } from "bun:test";
import { type BodyElement, buildEnvelope, EnvelopeValueError, headerBlock, serializeXml } from "./envelope.ts";
import { readSoapAnswer } from "./response.ts";
import { SOAP11_ENVELOPE, SOAP12_ENVELOPE } from "./soap-version.ts";
import { attributeValue, childElements, parseXmlTree, textContent } from "./xml-tree.ts";

const body: BodyElement = { localName: "CreateCustomer", namespace: "urn:crm", elementForm: "qualified" };
/** The body element's content, read back the way a server would. */
const roundTrip = (content: unknown, element: BodyElement = body) =>
  (readSoapAnswer(buildEnvelope({ version: "1.1", body: element, content })) as { body: any }).body.CreateCustomer;

describe("buildEnvelope", () => {
  test("a 1.1 envelope: the transform's result becomes the operation's children in its namespace", () => {
    const xml = buildEnvelope({ version: "1.1", body, content: { Name: "Jane", Age: 42 } });
    expect(xml).toBe(
      '<?xml version="1.0" encoding="utf-8"?>' +
        `<soap:Envelope xmlns:soap="${SOAP11_ENVELOPE}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">` +
        '<soap:Body><tns:CreateCustomer xmlns:tns="urn:crm"><tns:Name>Jane</tns:Name><tns:Age>42</tns:Age></tns:CreateCustomer></soap:Body>' +
        "</soap:Envelope>",
    );
  });

  test("a 1.2 envelope uses the 1.2 namespace", () => {
    const root = parseXmlTree(buildEnvelope({ version: "1.2", body, content: {} }));
    expect(root.namespace).toBe(SOAP12_ENVELOPE);
    expect(childElements(childElements(root, "Body")[0]!)[0]).toMatchObject({
      localName: "CreateCustomer",
      namespace: "urn:crm",
    });
  });

  test("nested objects nest, arrays repeat, null is xsi:nil, scalars are text", () => {
    const xml = buildEnvelope({
      version: "1.1",
      body,
      content: {
        Address: { Street: "Hauptstraße 5", City: "Köln" },
        Tag: ["a", "b"],
        Email: null,
        Vip: false,
        Amount: 84.5,
        Skipped: undefined,
      },
    });
    expect(xml).toContain("<tns:Address><tns:Street>Hauptstraße 5</tns:Street><tns:City>Köln</tns:City></tns:Address>");
    expect(xml).toContain("<tns:Tag>a</tns:Tag><tns:Tag>b</tns:Tag>");
    expect(xml).toContain('<tns:Email xsi:nil="true"/>');
    expect(xml).toContain("<tns:Vip>false</tns:Vip><tns:Amount>84.5</tns:Amount>");
    expect(xml).not.toContain("Skipped");
    expect(roundTrip({ Address: { Street: "x" }, Tag: ["a", "b"], Email: null })).toEqual({
      Address: { Street: "x" },
      Tag: ["a", "b"],
      Email: null,
    });
  });

  test("unqualified children carry no namespace prefix", () => {
    const xml = buildEnvelope({
      version: "1.1",
      body: { ...body, elementForm: "unqualified" },
      content: { Name: "Jane" },
    });
    expect(xml).toContain('<tns:CreateCustomer xmlns:tns="urn:crm"><Name>Jane</Name></tns:CreateCustomer>');
    const operation = childElements(childElements(parseXmlTree(xml), "Body")[0]!)[0]!;
    expect(childElements(operation)[0]!.namespace).toBe("");
  });

  test("values are escaped: markup in a value arrives as literal text, not as elements", () => {
    const hostile = {
      Name: "</Name><Admin>true</Admin>",
      Note: `<![CDATA[x]]> & "quotes" 'single' <!-- c --> <?pi?> &amp;`,
      Lines: "one\r\ntwo",
    };
    const xml = buildEnvelope({ version: "1.1", body, content: hostile });
    expect(xml).toContain("<tns:Name>&lt;/Name&gt;&lt;Admin&gt;true&lt;/Admin&gt;</tns:Name>");
    expect(xml).not.toContain("<Admin>");
    const operation = childElements(childElements(parseXmlTree(xml), "Body")[0]!)[0]!;
    expect(childElements(operation).map((element) => element.localName)).toEqual(["Name", "Note", "Lines"]);
    expect(childElements(operation).map(textContent)).toEqual([hostile.Name, hostile.Note, hostile.Lines]);
  });

  test("a key that is not an XML name is refused, not written", () => {
    for (const key of ["a b", "x><y", "1abc", "ns:Name", "@_attr", "#text", "?xml", ""]) {
      expect(() => buildEnvelope({ version: "1.1", body, content: { [key]: "v" } })).toThrow(EnvelopeValueError);
    }
    expect(() => buildEnvelope({ version: "1.1", body, content: { Outer: [{ "bad key": 1 }] } })).toThrow(
      "is not a valid XML element name",
    );
  });

  test("characters XML 1.0 cannot carry are refused rather than sent broken", () => {
    expect(() => buildEnvelope({ version: "1.1", body, content: { Name: "bell\u0007" } })).toThrow("U+0007");
    expect(() => buildEnvelope({ version: "1.1", body, content: { Name: "lone \uD800" } })).toThrow("U+D800");
    expect(roundTrip({ Name: "emoji 😀 and tab\t" })).toEqual({ Name: "emoji 😀 and tab\t" });
  });

  test("the whole content may be empty or a scalar, not a list; nesting is bounded", () => {
    expect(roundTrip(null)).toBe("");
    expect(roundTrip({})).toBe("");
    expect(roundTrip("plain")).toBe("plain");
    expect(() => buildEnvelope({ version: "1.1", body, content: [1, 2] })).toThrow(
      "a list cannot be the whole content",
    );
    let deep: Record<string, unknown> = { Leaf: "x" };
    for (let i = 0; i < 100; i++) deep = { Level: deep };
    expect(() => buildEnvelope({ version: "1.1", body, content: deep })).toThrow("nested deeper");
  });

  test("header blocks go into soap:Header, with mustUnderstand in the envelope namespace", () => {
    const block = headerBlock({
      localName: "Auth",
      namespace: "urn:auth",
      prefix: "h0",
      value: { Key: "k&y" },
      mustUnderstand: true,
      envelopeNamespace: SOAP12_ENVELOPE,
    });
    const root = parseXmlTree(buildEnvelope({ version: "1.2", body, content: {}, headers: [block] }));
    const header = childElements(root, "Header")[0]!;
    const auth = childElements(header)[0]!;
    expect(auth).toMatchObject({ localName: "Auth", namespace: "urn:auth" });
    expect(attributeValue(auth, "mustUnderstand", SOAP12_ENVELOPE)).toBe("1");
    expect(childElements(auth)[0]).toMatchObject({ localName: "Key", namespace: "urn:auth" });
    expect(textContent(auth)).toBe("k&y");
    expect(serializeXml([block])).toContain("<h0:Key>k&amp;y</h0:Key>");
  });

  test("no Header element when there are no header blocks", () => {
    expect(buildEnvelope({ version: "1.1", body, content: {} })).not.toContain("Header");
  });
});
