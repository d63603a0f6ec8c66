import { XMLBuilder, type XmlBuilderOptions } from "fast-xml-parser";
import { ENVELOPE_NAMESPACE, type SoapVersion, XSI } from "./soap-version.ts";

/** An element to write: names are checked, text and attribute values escaped by the builder. */
export interface XmlNode {
  readonly name: string;
  readonly attributes?: Readonly<Record<string, string>>;
  readonly children?: readonly XmlNode[];
  readonly text?: string;
}

/** A value the envelope cannot carry (a key that is no XML name, a character XML 1.0 forbids). */
export class EnvelopeValueError extends Error {
  override name = "EnvelopeValueError";
}

/** The element the transform's result goes into: `operation` in `namespace`. */
export interface BodyElement {
  readonly localName: string;
  readonly namespace: string;
  /** `qualified`: the children are in `namespace` too (elementFormDefault="qualified"); else they have none. */
  readonly elementForm: "qualified" | "unqualified";
}

export interface EnvelopeParts {
  readonly version: SoapVersion;
  readonly body: BodyElement;
  /** The transform's result: its keys become the children of the body element. */
  readonly content: unknown;
  /** Header blocks (custom headers, WS-Security), in order. */
  readonly headers?: readonly XmlNode[];
}

/** The envelope's prefix in generated envelopes; header blocks use it for `mustUnderstand`. */
export const ENVELOPE_PREFIX = "soap";
const BODY_PREFIX = "tns";
/** Nesting beyond this is almost certainly a mistake (or an attack) rather than a legacy schema. */
const MAX_DEPTH = 64;

// XML 1.0 NCName (a name without a colon), https://www.w3.org/TR/xml-names/#NT-NCName
const NAME_START =
  "A-Z_a-z\\u00C0-\\u00D6\\u00D8-\\u00F6\\u00F8-\\u02FF\\u0370-\\u037D\\u037F-\\u1FFF\\u200C-\\u200D\\u2070-\\u218F\\u2C00-\\u2FEF\\u3001-\\uD7FF\\uF900-\\uFDCF\\uFDF0-\\uFFFD";
const NAME_CHAR = `${NAME_START}\\-.0-9\\u00B7\\u0300-\\u036F\\u203F-\\u2040`;
const NCNAME = new RegExp(`^[${NAME_START}][${NAME_CHAR}]*$`);
// What XML 1.0 cannot carry at all, escaped or not: most C0 controls, lone surrogates, U+FFFE/U+FFFF.
const FORBIDDEN_CHARACTER = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

/** True when `name` can be an element name without a prefix. */
export function isXmlName(name: string): boolean {
  return NCNAME.test(name);
}

/**
 * Builds a SOAP envelope with fast-xml-parser's builder. The transform's result becomes the
 * children of the body element: nested objects nest, arrays repeat, `null` is `xsi:nil`, every
 * value is escaped, and every key must be an XML name, so no payload value can add elements.
 *
 * @example
 * buildEnvelope({ version: "1.1", body: { localName: "CreateCustomer", namespace: "urn:crm", elementForm: "qualified" },
 *   content: { Name: "Jane" } });
 * // <?xml ...?><soap:Envelope ...><soap:Body><tns:CreateCustomer xmlns:tns="urn:crm"><tns:Name>Jane</tns:Name>...
 */
export function buildEnvelope(parts: EnvelopeParts): string {
  const { body } = parts;
  const prefix = body.namespace ? BODY_PREFIX : "";
  const childPrefix = body.elementForm === "qualified" ? prefix : "";
  const bodyElement: XmlNode = {
    name: qualify(prefix, body.localName),
    ...(body.namespace ? { attributes: { [`xmlns:${BODY_PREFIX}`]: body.namespace } } : {}),
    ...contentOf(parts.content, childPrefix),
  };
  const envelope: XmlNode = {
    name: `${ENVELOPE_PREFIX}:Envelope`,
    attributes: { [`xmlns:${ENVELOPE_PREFIX}`]: ENVELOPE_NAMESPACE[parts.version], "xmlns:xsi": XSI },
    children: [
      ...(parts.headers?.length ? [{ name: `${ENVELOPE_PREFIX}:Header`, children: parts.headers }] : []),
      { name: `${ENVELOPE_PREFIX}:Body`, children: [bodyElement] },
    ],
  };
  return serializeXml([envelope], { declaration: true });
}

/**
 * The children (or text) of an element holding `value`: an object's keys become child elements
 * named `<prefix>:<key>`, a string, number or boolean becomes text, `null` an empty element.
 * Throws {@link EnvelopeValueError} for what XML cannot hold.
 */
export function contentOf(value: unknown, childPrefix: string): Pick<XmlNode, "children" | "text"> {
  if (value === undefined || value === null) return {};
  if (isPlainObject(value)) return { children: objectToNodes(value, childPrefix, 1) };
  if (Array.isArray(value))
    throw new EnvelopeValueError(
      "a list cannot be the whole content of an element; wrap it in an object whose key names the repeated element",
    );
  return { text: textOf(value) };
}

/**
 * Header block `<prefix:name xmlns:prefix="namespace">` with `value` as content (see {@link contentOf}).
 * `mustUnderstand` is written with the envelope's namespace, declared on the block itself, so the
 * block is correct wherever it is placed (a generated envelope or an operator's template).
 */
export function headerBlock(options: {
  readonly localName: string;
  readonly namespace: string;
  readonly prefix: string;
  readonly value: unknown;
  readonly mustUnderstand: boolean;
  readonly envelopeNamespace: string;
}): XmlNode {
  const attributes: Record<string, string> = { [`xmlns:${options.prefix}`]: options.namespace };
  if (options.mustUnderstand) Object.assign(attributes, mustUnderstandAttributes(options.envelopeNamespace));
  return { name: qualify(options.prefix, options.localName), attributes, ...contentOf(options.value, options.prefix) };
}

/** `soap:mustUnderstand="1"`, with `soap` declared to the given envelope namespace. */
export function mustUnderstandAttributes(envelopeNamespace: string): Record<string, string> {
  return { [`xmlns:${ENVELOPE_PREFIX}`]: envelopeNamespace, [`${ENVELOPE_PREFIX}:mustUnderstand`]: "1" };
}

function objectToNodes(object: Record<string, unknown>, prefix: string, depth: number): XmlNode[] {
  if (depth > MAX_DEPTH) throw new EnvelopeValueError(`the content is nested deeper than ${MAX_DEPTH} levels`);
  const nodes: XmlNode[] = [];
  for (const [key, value] of Object.entries(object)) {
    if (!isXmlName(key))
      throw new EnvelopeValueError(`key ${JSON.stringify(key.slice(0, 64))} is not a valid XML element name`);
    nodes.push(...valueToNodes(qualify(prefix, key), value, prefix, depth));
  }
  return nodes;
}

function valueToNodes(name: string, value: unknown, prefix: string, depth: number): XmlNode[] {
  if (value === undefined) return [];
  if (value === null) return [{ name, attributes: { "xsi:nil": "true" } }];
  if (Array.isArray(value)) return value.flatMap((item) => valueToNodes(name, item, prefix, depth + 1));
  if (isPlainObject(value)) return [{ name, children: objectToNodes(value, prefix, depth + 1) }];
  return [{ name, text: textOf(value) }];
}

function textOf(value: unknown): string {
  let text: string;
  if (typeof value === "string") text = value;
  else if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new EnvelopeValueError("a number is not finite");
    text = String(value);
  } else if (typeof value === "boolean") text = String(value);
  else throw new EnvelopeValueError(`a ${typeof value} cannot be written as XML`);
  return checkXmlCharacters(text);
}

/** Returns `text` when XML 1.0 can carry every character of it; throws {@link EnvelopeValueError} otherwise. */
export function checkXmlCharacters(text: string): string {
  const forbidden = FORBIDDEN_CHARACTER.exec(text);
  if (forbidden) {
    const code = forbidden[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0");
    throw new EnvelopeValueError(`a value holds U+${code}, a character XML 1.0 cannot carry`);
  }
  return text;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function qualify(prefix: string, localName: string): string {
  return prefix ? `${prefix}:${localName}` : localName;
}

type OrderedNode = Record<string, unknown>;

const ENTITIES = [
  { regex: /&/g, val: "&amp;" },
  { regex: />/g, val: "&gt;" },
  { regex: /</g, val: "&lt;" },
  { regex: /'/g, val: "&apos;" },
  { regex: /"/g, val: "&quot;" },
  // A parser turns a literal CR into LF; written as a reference it arrives as sent.
  { regex: /\r/g, val: "&#13;" },
];

const builder = new XMLBuilder({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: "@_",
  suppressEmptyNode: true,
  suppressBooleanAttributes: false,
  processEntities: true,
  entities: ENTITIES,
  maxNestedTags: MAX_DEPTH + 16,
  // Names are checked before they get here; this is the second lock on the same door.
  sanitizeName: (name: string) => {
    throw new EnvelopeValueError(`${JSON.stringify(name.slice(0, 64))} is not a valid XML name`);
  },
} as XmlBuilderOptions);

/**
 * `text` as {@link serializeXml} writes it inside an element (the same entities), to find a value
 * in an envelope: the credentials `explain` masks.
 *
 * @example
 * escapeXmlText("p&ss<"); // "p&amp;ss&lt;"
 */
export function escapeXmlText(text: string): string {
  return ENTITIES.reduce((out, entity) => out.replace(entity.regex, entity.val), text);
}

/** Writes nodes as XML text, optionally after an XML declaration. */
export function serializeXml(nodes: readonly XmlNode[], options: { declaration?: boolean } = {}): string {
  const ordered: OrderedNode[] = nodes.map(toOrdered);
  if (options.declaration) ordered.unshift({ "?xml": [], ":@": { "@_version": "1.0", "@_encoding": "utf-8" } });
  return builder.build(ordered);
}

function toOrdered(node: XmlNode): OrderedNode {
  const children: OrderedNode[] =
    node.text !== undefined && node.text !== "" ? [{ "#text": node.text }] : (node.children ?? []).map(toOrdered);
  const ordered: OrderedNode = { [node.name]: children };
  if (node.attributes)
    ordered[":@"] = Object.fromEntries(Object.entries(node.attributes).map(([name, value]) => [`@_${name}`, value]));
  return ordered;
}
