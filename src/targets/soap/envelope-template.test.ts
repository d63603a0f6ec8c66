import { describe, expect, test } from "bun:test";
import { InvalidConfigValue } from "../../kit/config-errors.ts";
import { TemplateValueError } from "../../transform/template.ts";
import { EnvelopeValueError } from "./envelope.ts";
import { compileEnvelopeTemplate } from "./envelope-template.ts";
import { SOAP11_ENVELOPE, SOAP12_ENVELOPE } from "./soap-version.ts";
import { childElements, parseXmlTree, textContent } from "./xml-tree.ts";

const template = (header: string, body: string, ns = SOAP11_ENVELOPE) =>
  `<?xml version="1.0" encoding="utf-8"?>\n<soapenv:Envelope xmlns:soapenv="${ns}" xmlns:c="urn:crm">${header}\n  <soapenv:Body>${body}</soapenv:Body>\n</soapenv:Envelope>\n`;
const payload = {
  data: { entity: { name: "</c:Name><c:Admin>true</c:Admin>", number: 42, middle: null, tags: ["a"] } },
};
const problem = (source: string) => {
  try {
    compileEnvelopeTemplate(source, "x.xml");
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidConfigValue);
    expect((error as InvalidConfigValue).path).toEqual(["envelope_template"]);
    return (error as Error).message;
  }
  throw new Error("expected a config problem");
};

describe("compileEnvelopeTemplate", () => {
  test("fills placeholders with escaped values, keeps the rest byte for byte", async () => {
    const source = template(
      "",
      '<c:Create><c:Name>{{ data.entity.name }}</c:Name><c:No ref="{{ data.entity.number }}"/><c:Body>{{ $body.x }}</c:Body></c:Create>',
    );
    const compiled = compileEnvelopeTemplate(source, "x.xml");
    expect(compiled.version).toBe("1.1");
    const xml = await compiled.render(payload, "", { body: { x: "from transform" } });
    expect(xml).toBe(
      source
        .replace("{{ data.entity.name }}", "&lt;/c:Name&gt;&lt;c:Admin&gt;true&lt;/c:Admin&gt;")
        .replace("{{ data.entity.number }}", "42")
        .replace("{{ $body.x }}", "from transform"),
    );
    const create = childElements(childElements(parseXmlTree(xml), "Body")[0]!)[0]!;
    expect(childElements(create).map((element) => element.localName)).toEqual(["Name", "No", "Body"]);
    expect(textContent(childElements(create, "Name")[0]!)).toBe(payload.data.entity.name);
  });

  test("null is an empty value, objects are JSON text; a path with no value fails the call", async () => {
    const compiled = compileEnvelopeTemplate(
      template("", "<c:M>{{ data.entity.middle }}</c:M><c:T>{{ data.entity.tags }}</c:T><c:X>{{ data.nope }}</c:X>"),
      "x.xml",
    );
    await expect(compiled.render(payload, "")).rejects.toBeInstanceOf(TemplateValueError);
    const ok = compileEnvelopeTemplate(
      template("", "<c:M>{{ data.entity.middle }}</c:M><c:T>{{ data.entity.tags }}</c:T>"),
      "x.xml",
    );
    expect(await ok.render(payload, "")).toContain("<c:M></c:M><c:T>[&quot;a&quot;]</c:T>");
    const control = compileEnvelopeTemplate(
      template("", "<c:M>{{ 'bell' & $string($fromMillis(0) = '' ? '' : '\u0007') }}</c:M>"),
      "x.xml",
    );
    await expect(control.render(payload, "")).rejects.toBeInstanceOf(EnvelopeValueError);
  });

  test("header blocks go into an existing Header, a self-closing Header, or a new Header before Body", async () => {
    const block = '<h:Auth xmlns:h="urn:h">k</h:Auth>';
    for (const header of [
      "<soapenv:Header><c:Existing/></soapenv:Header>",
      "<soapenv:Header/>",
      "<soapenv:Header />",
      "",
    ]) {
      const compiled = compileEnvelopeTemplate(template(header, "<c:Ping/>"), "x.xml");
      const root = parseXmlTree(await compiled.render(payload, block));
      const headers = childElements(root, "Header");
      expect(headers).toHaveLength(1);
      expect(childElements(headers[0]!).map((element) => element.localName)).toEqual(
        header.includes("Existing") ? ["Auth", "Existing"] : ["Auth"],
      );
      expect(headers[0]!.namespace).toBe(SOAP11_ENVELOPE);
      // Without header blocks the template is sent as written.
      expect(await compiled.render(payload, "")).toBe(template(header, "<c:Ping/>"));
    }
  });

  test("a 1.2 template is a 1.2 envelope; a comment holding a tag does not fool the insertion", async () => {
    const compiled = compileEnvelopeTemplate(
      template("<!-- <soapenv:Body> -->", "<c:Ping/>", SOAP12_ENVELOPE),
      "x.xml",
    );
    expect(compiled.version).toBe("1.2");
    const xml = await compiled.render(payload, "<h:A xmlns:h='urn:h'/>");
    expect(xml.indexOf("<soapenv:Header>")).toBeGreaterThan(xml.indexOf("-->"));
  });

  test("checked at load: well-formed, a SOAP Envelope with a Body, placeholders only where escaping protects", () => {
    expect(problem(template("", "<c:Open>"))).toStartWith("x.xml: not well-formed XML");
    expect(problem("<Envelope><Body/></Envelope>")).toBe("x.xml: the root element must be a SOAP 1.1 or 1.2 Envelope");
    expect(problem(`<s:Envelope xmlns:s="${SOAP11_ENVELOPE}"><s:Header/></s:Envelope>`)).toBe(
      "x.xml: the Envelope has no Body",
    );
    expect(problem(template("", "<c:{{ data.tag }}>x</c:{{ data.tag }}>"))).toContain(
      "may stand only in element text or an attribute value",
    );
    expect(problem(template("", "<c:A {{ data.attr }}='1'/>"))).toContain(
      "may stand only in element text or an attribute value",
    );
    expect(problem(template("", "<c:A><![CDATA[{{ data.x }}]]></c:A>"))).toContain("(not in a name, comment or CDATA)");
    expect(problem(template("", "<c:A><!-- {{ data.x }} --></c:A>"))).toContain("may stand only");
    expect(problem(template("", "<c:A>{{ data.( }}</c:A>"))).toContain("JSONata syntax error in a placeholder");
    expect(problem(`<!DOCTYPE x>${template("", "")}`)).toBe("x.xml: a DOCTYPE is not allowed");
  });
});
