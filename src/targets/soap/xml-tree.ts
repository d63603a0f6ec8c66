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

/** The text holds a DOCTYPE (anywhere): SOAP forbids it, and it is how entity-expansion attacks get in. */
export class XmlDoctypeError extends XmlSyntaxError {
  override name = "XmlDoctypeError";
  constructor() {
    super("a DOCTYPE is not allowed");
  }
}

/** The document passes one of {@link XmlLimits}; parsing stopped there, before the rest was read. */
export class XmlLimitError extends XmlSyntaxError {
  override name = "XmlLimitError";
  constructor(
    readonly limit: "nodes" | "depth",
    readonly max: number,
  ) {
    super(
      limit === "nodes" ? `holds more than ${max} elements and attributes` : `nests elements deeper than ${max} levels`,
    );
  }
}

/** What one document may hold; parsing stops with {@link XmlLimitError} at the first node past them. */
export interface XmlLimits {
  /** Elements, attributes, comments, CDATA sections and processing instructions, together. */
  readonly maxNodes: number;
  /** Element nesting; the root element is level 1. */
  readonly maxDepth: number;
}

/** For files the operator provides (WSDLs, schemas, envelope templates): generous, but still bounded. */
export const FILE_LIMITS: XmlLimits = { maxNodes: 2_000_000, maxDepth: 256 };

const XML_NAMESPACE = "http://www.w3.org/XML/1998/namespace";
const XMLNS_NAMESPACE = "http://www.w3.org/2000/xmlns/";

/** XML 1.0 (5th edition) names, by UTF-16 code unit (a surrogate pair passes as two name characters). */
const NAME =
  /[A-Za-z_:\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u02FF\u0370-\u037D\u037F-\u1FFF\u200C-\u200D\u2070-\u218F\u2C00-\u2FEF\u3001-\uD7FF\uF900-\uFDCF\uFDF0-\uFFFD\uD800-\uDBFF][\w.:\u002D\u00B7\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u037D\u037F-\u1FFF\u200C-\u200D\u203F\u2040\u2070-\u218F\u2C00-\u2FEF\u3001-\uD7FF\uF900-\uFDCF\uFDF0-\uFFFD\uD800-\uDFFF]*/y;
const ONLY_WHITESPACE = /^[ \t\r\n]*$/;
const NO_ATTRIBUTES: readonly XmlAttribute[] = Object.freeze([]);
const PREDEFINED_ENTITIES: Readonly<Record<string, string>> = { lt: "<", gt: ">", amp: "&", apos: "'", quot: '"' };
const GT = 0x3e;
const SLASH = 0x2f;
const BANG = 0x21;
const QUESTION = 0x3f;
const EQUALS = 0x3d;

interface OpenElement {
  name: string;
  prefix: string;
  localName: string;
  namespace: string | undefined;
  attributes: readonly XmlAttribute[];
  children: XmlChild[];
  scope: ReadonlyMap<string, string>;
}

/**
 * Parses XML into elements with resolved namespaces, in one linear pass that checks
 * well-formedness as it goes (a truncated or mismatched document fails, never half-read) and stops
 * at the first node past `limits`, so a document of a million tiny elements costs no more than the
 * limit allows. Refuses a DOCTYPE wherever it stands (prolog, Envelope, Body): SOAP forbids it,
 * and it is how entity-expansion attacks get in. Only XML's five predefined entities and
 * character references (`&#246;`) are decoded; any other `&name;` is an error, as in XML without
 * a DTD. Line ends are normalised to LF; comments, CDATA and text are kept in order, processing
 * instructions and the XML declaration are dropped.
 *
 * @example
 * const root = parseXmlTree('<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"/>');
 * root.localName; // "Envelope"
 * parseXmlTree(answer, { maxNodes: 50_000, maxDepth: 64 }); // throws XmlLimitError past either limit
 */
export function parseXmlTree(text: string, limits: XmlLimits = FILE_LIMITS): XmlElement {
  const length = text.length;
  const stack: OpenElement[] = [];
  let root: OpenElement | undefined;
  let nodes = 0;
  let pos = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  /** Only whitespace so far: where an XML declaration may still stand. */
  let atStart = true;

  const fail = (message: string, at: number): never => {
    throw new XmlSyntaxError(`not well-formed XML (${position(text, at)}: ${message})`);
  };
  const count = (added: number) => {
    nodes += added;
    if (nodes > limits.maxNodes) throw new XmlLimitError("nodes", limits.maxNodes);
  };
  const readName = (at: number): string => {
    NAME.lastIndex = at;
    const match = NAME.exec(text);
    if (!match) return fail("a name was expected", at);
    return match[0];
  };
  const skipWhitespace = (at: number): number => {
    let next = at;
    for (let code = text.charCodeAt(next); code === 0x20 || code === 0x0a || code === 0x09 || code === 0x0d; )
      code = text.charCodeAt(++next);
    return next;
  };
  const decode = (raw: string, at: number, attribute: boolean): string => {
    let value = raw.indexOf("\r") === -1 ? raw : raw.replace(/\r\n?/g, "\n");
    if (attribute && /[\t\n]/.test(value)) value = value.replace(/[\t\n]/g, " ");
    const amp = value.indexOf("&");
    return amp === -1 ? value : decodeReferences(value, amp, (message) => fail(message, at));
  };

  while (pos < length) {
    const lt = text.indexOf("<", pos);
    const end = lt === -1 ? length : lt;
    if (end > pos) {
      const raw = text.slice(pos, end);
      const top = stack[stack.length - 1];
      if (!top) {
        if (!ONLY_WHITESPACE.test(raw))
          fail(root ? "text after the root element" : "text before the root element", pos);
      } else {
        if (raw.includes("]]>")) fail("']]>' in text", pos);
        top.children.push({ text: decode(raw, pos, false) });
      }
      if (!ONLY_WHITESPACE.test(raw)) atStart = false;
    }
    if (lt === -1) break;
    const next = text.charCodeAt(lt + 1);

    if (next === SLASH) {
      const name = readName(lt + 2);
      const close = skipWhitespace(lt + 2 + name.length);
      if (text.charCodeAt(close) !== GT) fail(`'>' expected to close </${name}`, close);
      const open = stack.pop();
      if (!open) fail(`</${name}> closes nothing`, lt);
      else if (open.name !== name) fail(`</${name}> where </${open.name}> was expected`, lt);
      pos = close + 1;
    } else if (next === BANG) {
      if (text.startsWith("<!--", lt)) {
        const close = text.indexOf("-->", lt + 4);
        if (close === -1) fail("comment not closed", lt);
        const content = text.slice(lt + 4, close);
        if (content.includes("--") || content.endsWith("-")) fail("'--' inside a comment", lt);
        count(1);
        stack[stack.length - 1]?.children.push({ text: content, comment: true });
        pos = close + 3;
        atStart = false;
      } else if (text.startsWith("<![CDATA[", lt)) {
        const top = stack[stack.length - 1];
        if (!top) fail("CDATA outside the root element", lt);
        const close = text.indexOf("]]>", lt + 9);
        if (close === -1) fail("CDATA section not closed", lt);
        count(1);
        const content = text.slice(lt + 9, close);
        top!.children.push({
          text: content.indexOf("\r") === -1 ? content : content.replace(/\r\n?/g, "\n"),
          cdata: true,
        });
        pos = close + 3;
        atStart = false;
      } else if (/^<!doctype/i.test(text.slice(lt, lt + 9))) {
        throw new XmlDoctypeError();
      } else {
        fail("'<!' starts no comment or CDATA section", lt);
      }
    } else if (next === QUESTION) {
      const target = readName(lt + 2);
      const close = text.indexOf("?>", lt + 2 + target.length);
      if (close === -1) fail("processing instruction not closed", lt);
      if (target.toLowerCase() === "xml" && (!atStart || target !== "xml")) fail("misplaced XML declaration", lt);
      count(1);
      pos = close + 2;
      atStart = false;
    } else {
      // A start tag.
      const name = readName(lt + 1);
      let at = lt + 1 + name.length;
      let attributes: { name: string; value: string }[] | undefined;
      let selfClosing = false;
      for (;;) {
        const afterSpace = skipWhitespace(at);
        const code = text.charCodeAt(afterSpace);
        if (code === GT) {
          at = afterSpace + 1;
          break;
        }
        if (code === SLASH) {
          if (text.charCodeAt(afterSpace + 1) !== GT) fail(`'>' expected after '/' in <${name}>`, afterSpace);
          at = afterSpace + 2;
          selfClosing = true;
          break;
        }
        if (afterSpace >= length) fail(`the document ends inside the tag <${name}>`, lt);
        if (afterSpace === at) fail(`whitespace expected between attributes of <${name}>`, at);
        const attributeName = readName(afterSpace);
        let cursor = skipWhitespace(afterSpace + attributeName.length);
        if (text.charCodeAt(cursor) !== EQUALS) fail(`attribute ${attributeName} has no value`, cursor);
        cursor = skipWhitespace(cursor + 1);
        const quote = text[cursor];
        if (quote !== '"' && quote !== "'") fail(`the value of attribute ${attributeName} is not quoted`, cursor);
        const close = text.indexOf(quote!, cursor + 1);
        if (close === -1) fail(`the value of attribute ${attributeName} is not closed`, cursor);
        const raw = text.slice(cursor + 1, close);
        if (raw.includes("<")) fail(`'<' in the value of attribute ${attributeName}`, cursor);
        attributes ??= [];
        if (isDuplicate(attributes, attributeName)) fail(`attribute ${attributeName} is repeated`, afterSpace);
        attributes.push({ name: attributeName, value: decode(raw, cursor, true) });
        at = close + 1;
      }
      if (root && stack.length === 0) fail("a second root element", lt);
      count(1 + (attributes?.length ?? 0));
      if (stack.length + 1 > limits.maxDepth) throw new XmlLimitError("depth", limits.maxDepth);
      const parent = stack[stack.length - 1];
      const element = openElement(name, attributes, parent?.scope ?? ROOT_SCOPE);
      if (parent) parent.children.push(element);
      else root = element;
      if (!selfClosing) stack.push(element);
      pos = at;
      atStart = false;
    }
  }
  const unclosed = stack[stack.length - 1];
  if (unclosed) fail(`the document ends inside <${unclosed.name}> (cut off?)`, length);
  if (!root) return fail("no root element", length);
  return root;
}

const ROOT_SCOPE: ReadonlyMap<string, string> = new Map([["xml", XML_NAMESPACE]]);

function openElement(
  name: string,
  raw: readonly { name: string; value: string }[] | undefined,
  parentScope: ReadonlyMap<string, string>,
): OpenElement {
  let scope = parentScope;
  if (raw) {
    for (const attribute of raw) {
      if (attribute.name === "xmlns") scope = extend(scope, "", attribute.value);
      else if (attribute.name.startsWith("xmlns:")) scope = extend(scope, attribute.name.slice(6), attribute.value);
    }
  }
  const [prefix, localName] = splitName(name);
  const attributes = raw
    ? raw.map(({ name: attributeName, value }): XmlAttribute => {
        const [attributePrefix, attributeLocal] = splitName(attributeName);
        const isDeclaration = attributeName === "xmlns" || attributePrefix === "xmlns";
        return {
          name: attributeName,
          localName: attributeLocal,
          namespace: isDeclaration ? XMLNS_NAMESPACE : attributePrefix === "" ? "" : scope.get(attributePrefix),
          value,
        };
      })
    : NO_ATTRIBUTES;
  return {
    name,
    prefix,
    localName,
    namespace: prefix === "" ? (scope.get("") ?? "") : scope.get(prefix),
    attributes,
    children: [],
    scope,
  };
}

/** Linear for the usual handful of attributes; a Set once an element has many (no quadratic cost). */
function isDuplicate(attributes: readonly { name: string }[], name: string): boolean {
  if (attributes.length < 16) return attributes.some((attribute) => attribute.name === name);
  const seen = new Set(attributes.map((attribute) => attribute.name));
  return seen.has(name);
}

/** Decodes `&lt;` and the other four, `&#246;` and `&#xF6;`; any other reference is an error. */
function decodeReferences(value: string, firstAmp: number, fail: (message: string) => never): string {
  let out = "";
  let last = 0;
  for (let amp = firstAmp; amp !== -1; amp = value.indexOf("&", last)) {
    const semicolon = value.indexOf(";", amp + 1);
    const reference = semicolon === -1 || semicolon - amp > 12 ? undefined : value.slice(amp + 1, semicolon);
    let decoded: string | undefined;
    if (reference !== undefined) {
      if (reference.startsWith("#x"))
        decoded = codePoint(/^[0-9A-Fa-f]+$/.test(reference.slice(2)), reference.slice(2), 16);
      else if (reference.startsWith("#"))
        decoded = codePoint(/^[0-9]+$/.test(reference.slice(1)), reference.slice(1), 10);
      else decoded = Object.hasOwn(PREDEFINED_ENTITIES, reference) ? PREDEFINED_ENTITIES[reference] : undefined;
    }
    if (decoded === undefined) {
      const shown =
        reference === undefined
          ? "'&' not starting a reference"
          : reference.startsWith("#")
            ? `&${reference}; is no XML character`
            : `undefined entity &${reference};`;
      return fail(shown);
    }
    out += value.slice(last, amp) + decoded;
    last = semicolon + 1;
  }
  return out + value.slice(last);
}

function codePoint(valid: boolean, digits: string, radix: number): string | undefined {
  if (!valid) return undefined;
  const code = Number.parseInt(digits, radix);
  // XML 1.0 characters: no NUL, no other C0 control but tab, LF and CR, no surrogates, nothing past U+10FFFF.
  const allowed =
    code === 0x09 ||
    code === 0x0a ||
    code === 0x0d ||
    (code >= 0x20 && code <= 0xd7ff) ||
    (code >= 0xe000 && code <= 0xfffd) ||
    (code >= 0x10000 && code <= 0x10ffff);
  return allowed ? String.fromCodePoint(code) : undefined;
}

/** `line 3, column 14` of an offset, counted only when an error is reported. */
function position(text: string, offset: number): string {
  let line = 1;
  let lineStart = 0;
  for (
    let newline = text.indexOf("\n");
    newline !== -1 && newline < offset;
    newline = text.indexOf("\n", newline + 1)
  ) {
    line++;
    lineStart = newline + 1;
  }
  return `line ${line}, column ${Math.min(offset, text.length) - lineStart + 1}`;
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
