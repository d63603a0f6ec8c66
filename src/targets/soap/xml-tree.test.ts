import { describe, expect, test } from "bun:test";
import {
  attributeValue,
  childElements,
  parseXmlTree,
  textContent,
  XmlDoctypeError,
  XmlLimitError,
  XmlSyntaxError,
} from "./xml-tree.ts";

const wellFormed = (xml: string) => () => parseXmlTree(xml);

describe("parseXmlTree", () => {
  test("namespaces, attributes, text, CDATA and comments in document order", () => {
    const root = parseXmlTree(
      '<?xml version="1.0"?>\r\n<!-- prolog --><a:R xmlns:a="urn:a" xmlns="urn:d" a:x="1" y=\'2 &amp; 3\'>' +
        't1<b>K&#246;ln &lt;&#x41;&gt;</b><![CDATA[<raw>&amp;]]><!-- c --><c xmlns=""/>\r\nend</a:R>\n',
    );
    expect(root).toMatchObject({ name: "a:R", prefix: "a", localName: "R", namespace: "urn:a" });
    expect(attributeValue(root, "x", "urn:a")).toBe("1");
    expect(attributeValue(root, "y", "")).toBe("2 & 3");
    const [b, c] = childElements(root);
    expect(b).toMatchObject({ localName: "b", namespace: "urn:d" });
    expect(textContent(b!)).toBe("Köln <A>");
    expect(c).toMatchObject({ localName: "c", namespace: "" });
    expect(root.children.map((child) => ("localName" in child ? `<${child.localName}>` : child))).toEqual([
      { text: "t1" },
      "<b>",
      { text: "<raw>&amp;", cdata: true },
      { text: " c ", comment: true },
      "<c>",
      { text: "\nend" },
    ]);
  });

  test("attribute values are normalised (whitespace to spaces) but keep character references", () => {
    expect(attributeValue(parseXmlTree('<a v="x\ty\r\nz&#13;&#10;"/>'), "v")).toBe("x y z\r\n");
  });

  test.each([
    ["<a><b></a>", "</a> where </b> was expected"],
    ["<a><b>", "the document ends inside <b> (cut off?)"],
    ["<a", "the document ends inside the tag <a>"],
    ["<a b=c/>", "the value of attribute b is not quoted"],
    ["<a b/>", "attribute b has no value"],
    ["<a b='1' b='2'/>", "attribute b is repeated"],
    ["<a b='1'c='2'/>", "whitespace expected between attributes"],
    ["<a>x & y</a>", "'&' not starting a reference"],
    ["<a>&nbsp;</a>", "undefined entity &nbsp;"],
    ["<a>&#0;</a>", "&#0; is no XML character"],
    ["<a/><b/>", "a second root element"],
    ["text<a/>", "text before the root element"],
    ["<a/>tail", "text after the root element"],
    ["<1a/>", "a name was expected"],
    ["<a><!-- a -- b --></a>", "'--' inside a comment"],
    ["<a><![CDATA[x</a>", "CDATA section not closed"],
    ["<a/><?xml version='1.0'?>", "misplaced XML declaration"],
    ["", "no root element"],
    ["<a></a></b>", "</b> closes nothing"],
  ])("%p is not well-formed: %s", (xml, message) => {
    expect(wellFormed(xml)).toThrow(XmlSyntaxError);
    expect(wellFormed(xml)).toThrow(message);
  });

  test("errors name the line and column", () => {
    expect(wellFormed("<a>\n  <b>\n</a>")).toThrow(
      "not well-formed XML (line 3, column 1: </a> where </b> was expected)",
    );
  });

  test("a DOCTYPE is refused wherever it stands: prolog, inside the root, deep inside", () => {
    const bomb = '<!DOCTYPE x [<!ENTITY e "zzzzzzzzzz"><!ENTITY f "&e;&e;&e;&e;">]>';
    for (const xml of [`${bomb}<a>&f;</a>`, `<a>${bomb}<b>&f;</b></a>`, `<a><b><c>${bomb.toLowerCase()}</c></b></a>`]) {
      expect(wellFormed(xml)).toThrow(XmlDoctypeError);
    }
    // As text inside CDATA or a comment it is content, not a declaration.
    expect(textContent(parseXmlTree("<a><![CDATA[<!DOCTYPE x>]]><!-- <!DOCTYPE y> --></a>"))).toBe("<!DOCTYPE x>");
  });

  test("limits: parsing stops at the first node past maxNodes or the first level past maxDepth", () => {
    const items = (n: number) => `<r>${"<i>1</i>".repeat(n)}</r>`;
    expect(childElements(parseXmlTree(items(99), { maxNodes: 100, maxDepth: 8 }))).toHaveLength(99);
    expect(wellFormed(items(100))).not.toThrow();
    expect(() => parseXmlTree(items(100), { maxNodes: 100, maxDepth: 8 })).toThrow(new XmlLimitError("nodes", 100));
    // Attributes count: one element with many attributes is as costly as many elements.
    const attributes = Array.from({ length: 200 }, (_, i) => `a${i}="x"`).join(" ");
    expect(() => parseXmlTree(`<r ${attributes}/>`, { maxNodes: 100, maxDepth: 8 })).toThrow(XmlLimitError);
    const nested = (depth: number) => "<d>".repeat(depth) + "</d>".repeat(depth);
    expect(() => parseXmlTree(nested(8), { maxNodes: 100, maxDepth: 8 })).not.toThrow();
    expect(() => parseXmlTree(nested(9), { maxNodes: 100, maxDepth: 8 })).toThrow(
      "nests elements deeper than 8 levels",
    );
    // The limit is found before the rest of the document is read: a cut-off tail does not matter.
    expect(() => parseXmlTree(`${nested(9)}<unclosed`, { maxNodes: 100, maxDepth: 8 })).toThrow(XmlLimitError);
  });

  test("a million elements past the limit cost milliseconds, not seconds", () => {
    const xml = `<r>${"<i>1</i>".repeat(1_000_000)}</r>`;
    const started = performance.now();
    expect(() => parseXmlTree(xml, { maxNodes: 50_000, maxDepth: 64 })).toThrow(XmlLimitError);
    expect(performance.now() - started).toBeLessThan(500);
  });
});
