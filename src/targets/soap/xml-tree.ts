import { XMLParser, XMLValidator } from "fast-xml-parser";

/** An element with its namespace resolved from the `xmlns` declarations in scope. */
export interface XmlElement {
  /** As written, with its prefix: `soap:Body`. */
  readonly name: string;
  readonly prefix: string;
  readonly localName: string;
  /** The namespace URI; `""` for no namespace, `undefined` for an undeclared prefix. */
  readonly namespace: string | undefined;
  readonly attributes: readonly XmlAttribute[];
  /** Elements and text, in document order. */
  readonly children: readonly XmlChild[];
  /** Prefix -> namespace URI in scope at this element (for QName values such as `tns:Foo`). */
  readonly scope: ReadonlyMap<string, string>;
}

export interface XmlAttribute {
  readonly name: string;
  readonly localName: string;
  /** Unprefixed attributes have no namespace (`""`). */
  readonly namespace: string | undefined;
  readonly value: string;
}

export type XmlChild = XmlElement | { readonly text: string; readonly cdata?: boolean; readonly comment?: boolean };

/** The text is not well-formed XML, or holds what this gateway does not accept (a DOCTYPE). */
export class XmlSyntaxError extends Error {
  override name = "XmlSyntaxError";
}

const XML_NAMESPACE = "http://www.w3.org/XML/1998/namespace";
const XMLNS_NAMESPACE = "http://www.w3.org/2000/xmlns/";
const TEXT = "#text";
const CDATA = "#cdata";
const COMMENT = "#comment";

/**
 * Elements nested deeper than this are refused (fast-xml-parser's own default, made explicit): the
 * tree is walked recursively afterwards. Depth is counted from the root element, the Envelope.
 */
export const MAX_XML_DEPTH = 100;

const parser = new XMLParser({
  maxNestedTags: MAX_XML_DEPTH,
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: "",
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  cdataPropName: CDATA,
  commentPropName: COMMENT,
  ignoreDeclaration: true,
  ignorePiTags: true,
  // Also decodes character references (`&#246;`, `&#13;`), which legacy servers use for non-ASCII.
  htmlEntities: true,
});

type OrderedNode = Record<string, unknown> & { ":@"?: Record<string, string> };

/**
 * Parses XML into elements with resolved namespaces. Checks well-formedness first (a truncated
 * answer fails here, not halfway through), and refuses a DOCTYPE: SOAP forbids it, and it is how
 * entity-expansion attacks get in.
 *
 * @example
 * const root = parseXmlTree('<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"/>');
 * root.localName; // "Envelope"
 */
export function parseXmlTree(text: string): XmlElement {
  if (hasDoctype(text)) throw new XmlSyntaxError("a DOCTYPE is not allowed");
  const valid = XMLValidator.validate(text);
  if (valid !== true) throw new XmlSyntaxError(`not well-formed XML (line ${valid.err.line ?? "?"}: ${valid.err.msg})`);
  let ordered: OrderedNode[];
  try {
    ordered = parser.parse(text) as OrderedNode[];
  } catch (error) {
    const message = (error as Error).message;
    if (message.startsWith("Maximum nested tags"))
      throw new XmlSyntaxError(`nested deeper than ${MAX_XML_DEPTH} levels`);
    throw new XmlSyntaxError(`not well-formed XML (${message})`);
  }
  const root = ordered.find((node) => elementName(node) !== undefined);
  if (!root) throw new XmlSyntaxError("no root element");
  return toElement(root, new Map([["xml", XML_NAMESPACE]]));
}

/** A DOCTYPE can only stand in the prolog; `<!DOCTYPE` inside CDATA or text later on is content. */
function hasDoctype(text: string): boolean {
  const prolog = /^(?:\uFEFF|\s+|<\?[\s\S]*?\?>|<!--[\s\S]*?-->)*/.exec(text)![0];
  return /^<!DOCTYPE/i.test(text.slice(prolog.length));
}

function elementName(node: OrderedNode): string | undefined {
  for (const key of Object.keys(node)) {
    if (key === ":@" || key === TEXT || key === CDATA || key === COMMENT || key.startsWith("?")) continue;
    return key;
  }
  return undefined;
}

function toElement(node: OrderedNode, parentScope: ReadonlyMap<string, string>): XmlElement {
  const name = elementName(node)!;
  const rawAttributes = node[":@"] ?? {};
  let scope = parentScope;
  for (const [attribute, value] of Object.entries(rawAttributes)) {
    if (attribute === "xmlns") scope = extend(scope, "", value);
    else if (attribute.startsWith("xmlns:")) scope = extend(scope, attribute.slice(6), value);
  }
  const [prefix, localName] = splitName(name);
  const attributes: XmlAttribute[] = Object.entries(rawAttributes).map(([attribute, value]) => {
    const [attributePrefix, attributeLocal] = splitName(attribute);
    const isDeclaration = attribute === "xmlns" || attributePrefix === "xmlns";
    return {
      name: attribute,
      localName: attributeLocal,
      namespace: isDeclaration ? XMLNS_NAMESPACE : attributePrefix === "" ? "" : scope.get(attributePrefix),
      value: String(value),
    };
  });
  const children: XmlChild[] = [];
  for (const child of (node[name] as OrderedNode[] | undefined) ?? []) {
    if (TEXT in child) children.push({ text: String(child[TEXT]) });
    else if (CDATA in child) children.push({ text: innerText(child[CDATA]), cdata: true });
    else if (COMMENT in child) children.push({ text: innerText(child[COMMENT]), comment: true });
    else if (elementName(child) !== undefined) children.push(toElement(child, scope));
  }
  return {
    name,
    prefix,
    localName,
    namespace: prefix === "" ? (scope.get("") ?? "") : scope.get(prefix),
    attributes,
    children,
    scope,
  };
}

function innerText(value: unknown): string {
  return Array.isArray(value)
    ? value.map((part) => String((part as Record<string, unknown>)[TEXT] ?? "")).join("")
    : "";
}

function extend(scope: ReadonlyMap<string, string>, prefix: string, namespace: string): Map<string, string> {
  const next = new Map(scope);
  next.set(prefix, namespace);
  return next;
}

function splitName(name: string): [prefix: string, local: string] {
  const colon = name.indexOf(":");
  return colon === -1 ? ["", name] : [name.slice(0, colon), name.slice(colon + 1)];
}

/** The element children of `element`, optionally only those with `localName`. */
export function childElements(element: XmlElement, localName?: string): XmlElement[] {
  return element.children.filter(
    (child): child is XmlElement => "localName" in child && (localName === undefined || child.localName === localName),
  );
}

/** The first element child with `localName` (any namespace), if there is one. */
export function firstChild(element: XmlElement | undefined, localName: string): XmlElement | undefined {
  return element ? childElements(element, localName)[0] : undefined;
}

/** All text inside `element` (CDATA included, comments not), as the document holds it. */
export function textContent(element: XmlElement): string {
  let out = "";
  for (const child of element.children) {
    if ("localName" in child) out += textContent(child);
    else if (!child.comment) out += child.text;
  }
  return out;
}

/** The value of an attribute by local name (and namespace, when given). */
export function attributeValue(
  element: XmlElement | undefined,
  localName: string,
  namespace?: string,
): string | undefined {
  return element?.attributes.find(
    (attribute) => attribute.localName === localName && (namespace === undefined || attribute.namespace === namespace),
  )?.value;
}

/** Resolves a QName value (`tns:CreateCustomer`) against the namespaces in scope at `element`. */
export function resolveQName(element: XmlElement, qname: string): { namespace: string | undefined; localName: string } {
  const [prefix, localName] = splitName(qname.trim());
  return { namespace: prefix === "" ? (element.scope.get("") ?? "") : element.scope.get(prefix), localName };
}

/** `xmlns` declarations are attributes in this namespace. */
export const XMLNS = XMLNS_NAMESPACE;
