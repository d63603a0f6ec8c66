import { InvalidConfigValue } from "../../kit/config-errors.ts";
import { ExpressionSyntaxError } from "../../transform/expression.ts";
import { checkXmlCharacters } from "./envelope.ts";
import { type SoapVersion, versionOfEnvelope } from "./soap-version.ts";
import {
  compileXmlTemplate,
  escapeXml,
  findPlaceholders,
  type Placeholder,
  type XmlTextTemplate,
} from "./xml-template.ts";
import { childElements, parseXmlTree, type XmlElement, XmlSyntaxError } from "./xml-tree.ts";

/** An operator's envelope, checked at load and filled per call. */
export interface EnvelopeTemplate {
  /** From the template's envelope namespace. */
  readonly version: SoapVersion;
  readonly envelopeNamespace: string;
  /** The filled document; `headerXml` (header blocks) goes into its Header, which is added if missing. */
  render(payload: unknown, headerXml: string, bindings?: Record<string, unknown>): Promise<string>;
}

const PATH = ["envelope_template"];

/**
 * Checks a template at load: well-formed once placeholders are filled, a SOAP 1.1 or 1.2
 * Envelope with a Body, and every `{{ }}` standing in element text or an attribute value (where
 * escaping makes any value safe), never in a name, a comment or CDATA. Throws
 * `InvalidConfigValue` at `envelope_template`.
 *
 * @example
 * const template = compileEnvelopeTemplate(readFileSync(file, "utf8"), "./templates/x.xml");
 * await template.render(payload, ""); // the document, values escaped
 */
export function compileEnvelopeTemplate(source: string, displayName: string): EnvelopeTemplate {
  const fail = (message: string): never => {
    throw new InvalidConfigValue(`${displayName}: ${message}`, PATH);
  };
  const placeholders = findPlaceholders(source);
  const masked = maskPlaceholders(source, placeholders);

  let root: XmlElement;
  try {
    root = parseXmlTree(withMarkers(source, placeholders));
  } catch (error) {
    if (error instanceof XmlSyntaxError) return fail(error.message);
    throw error;
  }
  const misplaced = distinct(placeholders).find((_text, index) => !appearsOnlyAsValue(root, marker(index)));
  if (misplaced !== undefined) {
    return fail(
      `placeholder ${misplaced} may stand only in element text or an attribute value (not in a name, comment or CDATA)`,
    );
  }
  const version = versionOfEnvelope(root.namespace);
  if (root.localName !== "Envelope" || !version) return fail("the root element must be a SOAP 1.1 or 1.2 Envelope");
  const body = childElements(root, "Body")[0];
  if (!body || body.namespace !== root.namespace) return fail("the Envelope has no Body");
  const header = childElements(root, "Header").find((element) => element.namespace === root.namespace);

  // Header blocks go at the start of the Header's content, or in a new Header right before Body.
  const tag = findStartTag(masked, header ? header.name : body.name);
  if (!tag) return fail(`cannot find the start tag of ${header ? header.name : body.name}`);
  const cut =
    header && !tag.selfClosing
      ? { head: tag.end, tail: tag.end }
      : header
        ? { head: tag.start, tail: tag.end }
        : { head: tag.start, tail: tag.start };
  const encode = (value: string) => escapeXml(checkXmlCharacters(value));
  let head: XmlTextTemplate;
  let selfClosingHeader: XmlTextTemplate;
  let tail: XmlTextTemplate;
  try {
    head = compileXmlTemplate(source.slice(0, cut.head), encode);
    selfClosingHeader = compileXmlTemplate(source.slice(cut.head, cut.tail), encode);
    tail = compileXmlTemplate(source.slice(cut.tail), encode);
  } catch (error) {
    if (error instanceof ExpressionSyntaxError) return fail(`JSONata syntax error in a placeholder: ${error.message}`);
    throw error;
  }
  const newHeader = root.prefix ? `${root.prefix}:Header` : "Header";

  return {
    version,
    envelopeNamespace: root.namespace!,
    async render(payload, headerXml, bindings) {
      const before = await head.render(payload, bindings);
      const headerTag = await selfClosingHeader.render(payload, bindings);
      const after = await tail.render(payload, bindings);
      if (!headerXml) return before + headerTag + after;
      if (!header) return `${before}<${newHeader}>${headerXml}</${newHeader}>${after}`;
      if (tag.selfClosing) return `${before}${headerTag.replace(/\s*\/>$/, ">")}${headerXml}</${header.name}>${after}`;
      return before + headerXml + after;
    },
  };
}

/** The first start tag of `name` outside comments and CDATA: its offsets, and whether it is `<name/>`. */
function findStartTag(masked: string, name: string): { start: number; end: number; selfClosing: boolean } | undefined {
  const attribute = `\\s+[^\\s=/>]+\\s*=\\s*(?:"[^"]*"|'[^']*')`;
  const match = new RegExp(`<${escapeRegExp(name)}(?:${attribute})*\\s*(/?)>`).exec(masked);
  if (!match) return undefined;
  return { start: match.index, end: match.index + match[0].length, selfClosing: match[1] === "/" };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Same length as the source, placeholders as `x`, comments and CDATA blanked: tag search cannot be fooled by them. */
function maskPlaceholders(source: string, placeholders: readonly Placeholder[]): string {
  let out = "";
  let last = 0;
  for (const placeholder of placeholders) {
    out += source.slice(last, placeholder.start) + "x".repeat(placeholder.end - placeholder.start);
    last = placeholder.end;
  }
  out += source.slice(last);
  return out.replace(/<!--[\s\S]*?-->|<!\[CDATA\[[\s\S]*?\]\]>/g, (block) => " ".repeat(block.length));
}

/** The placeholders' texts, each once: the same placeholder twice gets the same marker (`<{{a}}></{{a}}>` stays balanced). */
function distinct(placeholders: readonly Placeholder[]): string[] {
  return [...new Set(placeholders.map((placeholder) => placeholder.text))];
}

/** A stand-in that is a valid name and text, so the parser shows where each placeholder sits. */
function marker(index: number): string {
  return `__placeholder${index}__`;
}

function withMarkers(source: string, placeholders: readonly Placeholder[]): string {
  const texts = distinct(placeholders);
  let out = "";
  let last = 0;
  for (const placeholder of placeholders) {
    out += source.slice(last, placeholder.start) + marker(texts.indexOf(placeholder.text));
    last = placeholder.end;
  }
  return out + source.slice(last);
}

/** True when `token` occurs in the tree, and only in element text or attribute values. */
function appearsOnlyAsValue(element: XmlElement, token: string): boolean {
  let asValue = false;
  let elsewhere = false;
  const visit = (current: XmlElement) => {
    if (current.name.includes(token)) elsewhere = true;
    for (const attribute of current.attributes) {
      if (attribute.name.includes(token)) elsewhere = true;
      else if (attribute.value.includes(token)) asValue = true;
    }
    for (const child of current.children) {
      if ("localName" in child) visit(child);
      else if (child.text.includes(token)) {
        if (child.cdata || child.comment) elsewhere = true;
        else asValue = true;
      }
    }
  };
  visit(element);
  return asValue && !elsewhere;
}
