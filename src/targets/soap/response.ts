import type { TargetOutcome, TargetResponse } from "../types.ts";
import { type SoapVersion, versionOfEnvelope, XSI } from "./soap-version.ts";
import {
  childElements,
  firstChild,
  parseXmlTree,
  textContent,
  XMLNS,
  type XmlElement,
  XmlSyntaxError,
} from "./xml-tree.ts";

/** A SOAP Fault, 1.1 or 1.2, in one shape. */
export interface SoapFault {
  /** The code's local part: `Client`/`Server` (1.1), `Sender`/`Receiver` (1.2), or a custom code. */
  readonly code: string;
  /** The most specific 1.2 Subcode, when there is one. */
  readonly subcode?: string;
  /** `faultstring` (1.1) or the first `Reason/Text` (1.2, English preferred). */
  readonly text: string;
}

/** What a SOAP answer turned out to be. */
export type SoapAnswer =
  /** An Envelope with a Body; `body` is the Body's content as JSON. */
  | {
      readonly kind: "envelope";
      readonly version: SoapVersion | undefined;
      readonly body: Record<string, unknown>;
      readonly fault?: SoapFault;
    }
  /** Nothing at all (a one-way operation answers 202 with no body). */
  | { readonly kind: "empty" }
  /** Not usable: `problem` says why, in words safe to show. */
  | { readonly kind: "unreadable"; readonly problem: string };

const MAX_FAULT_TEXT = 300;

/**
 * Decodes an answer's bytes as its sender meant them: a byte-order mark, else the content-type's
 * charset, else the XML declaration's encoding, else UTF-8. Legacy servers still answer in
 * ISO-8859-1 or windows-1252; an unknown label falls back to UTF-8.
 *
 * @example
 * decodeXml(bytes, "text/xml; charset=ISO-8859-1"); // "...<City>Köln</City>..."
 */
export function decodeXml(bytes: Uint8Array, contentType: string | undefined): string {
  let label = "utf-8";
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) label = "utf-8";
  else if (bytes[0] === 0xff && bytes[1] === 0xfe) label = "utf-16le";
  else if (bytes[0] === 0xfe && bytes[1] === 0xff) label = "utf-16be";
  else {
    const declared = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(contentType ?? "")?.[1];
    const head = Buffer.from(bytes.subarray(0, 200)).toString("latin1");
    label = declared ?? /^\s*<\?xml[^>]*\sencoding\s*=\s*["']([A-Za-z0-9._-]+)["']/.exec(head)?.[1] ?? "utf-8";
  }
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(label);
  } catch {
    decoder = new TextDecoder("utf-8");
  }
  return decoder.decode(bytes);
}

/**
 * Reads a SOAP answer. The Body's content becomes JSON without namespace prefixes:
 * `<ns2:CreateCustomerResponse><ns2:CustomerRef>CRM-7</ns2:CustomerRef>` is
 * `{"CreateCustomerResponse": {"CustomerRef": "CRM-7"}}`. Text stays text (no guessing of
 * numbers, so `00042` keeps its zeros), repeated elements become arrays, `xsi:nil` becomes `null`,
 * other attributes become `@name` keys, `xmlns` and `xsi:type` are dropped.
 *
 * Real servers mix versions (a 1.2 call answered in a 1.1 envelope, a fault with 1.2 parts in a 1.1
 * envelope), so the envelope may be either namespace and a fault is recognised by its parts.
 *
 * @example
 * readSoapAnswer('<s:Envelope xmlns:s="..."><s:Body><s:Fault><faultcode>s:Client</faultcode>...');
 * // { kind: "envelope", fault: { code: "Client", text: "..." }, body: { Fault: {...} } }
 */
export function readSoapAnswer(text: string): SoapAnswer {
  if (text.trim() === "") return { kind: "empty" };
  let root: XmlElement;
  try {
    root = parseXmlTree(text.replace(/^\uFEFF/, ""));
  } catch (error) {
    if (error instanceof XmlSyntaxError)
      return {
        kind: "unreadable",
        problem: error.message.startsWith("a DOCTYPE")
          ? "the answer holds a DOCTYPE, which SOAP forbids"
          : error.message.startsWith("nested deeper")
            ? `the answer is ${error.message}`
            : "the answer is not well-formed XML",
      };
    throw error;
  }
  if (root.localName !== "Envelope")
    return { kind: "unreadable", problem: "the answer is XML but not a SOAP envelope" };
  const body = firstChild(root, "Body");
  if (!body) return { kind: "unreadable", problem: "the SOAP envelope has no Body" };
  const version = versionOfEnvelope(root.namespace);
  const content = elementsToJson(childElements(body));
  const faultElement = childElements(body, "Fault").find((element) => isSoapFault(element));
  return { kind: "envelope", version, body: content, ...(faultElement ? { fault: readFault(faultElement) } : {}) };
}

/**
 * A SOAP answer as a target outcome: a fault (on any HTTP status) is a rejection whose reason
 * carries the fault code and string; so is anything unreadable, never an exception.
 *
 * @example
 * interpretAnswer(500, headers, faultXml);
 * // { kind: "rejected", reason: "SOAP fault Client: Customer exists", info: { fault_code: "Client", ... } }
 */
export function interpretAnswer(status: number, headers: Record<string, string>, text: string): TargetOutcome {
  const succeeded = status >= 200 && status < 300;
  const answer = readSoapAnswer(text);
  const response = (body: unknown): TargetResponse => ({ status, headers, body });
  switch (answer.kind) {
    case "empty":
      if (succeeded) return { kind: "delivered", response: response(null) };
      return {
        kind: "rejected",
        response: response(null),
        reason: `target answered HTTP ${status}`,
        info: { target_status: status },
      };
    case "unreadable":
      return {
        kind: "rejected",
        response: response(text),
        reason: succeeded ? `${answer.problem} (HTTP ${status})` : `target answered HTTP ${status}; ${answer.problem}`,
        info: { target_status: status },
      };
    case "envelope": {
      if (answer.fault) {
        const { code, subcode, text: faultText } = answer.fault;
        return {
          kind: "rejected",
          response: response(answer.body),
          reason: `SOAP fault ${code}${subcode ? `/${subcode}` : ""}${faultText ? `: ${faultText}` : ""}`,
          info: {
            target_status: status,
            fault_code: code,
            ...(subcode ? { fault_subcode: subcode } : {}),
            fault_string: faultText,
          },
          ...retryableFault(code),
        };
      }
      if (succeeded) return { kind: "delivered", response: response(answer.body) };
      return {
        kind: "rejected",
        response: response(answer.body),
        reason: `target answered HTTP ${status}`,
        info: { target_status: status },
      };
    }
  }
}

/**
 * Whether sending the same message again may succeed. SOAP 1.1 sends every fault with HTTP 500, so
 * the status cannot tell; the code can: the sender's fault (Client, Sender, and the envelope-level
 * codes) will fail again, the receiver's (Server, Receiver) may pass. Other codes are the
 * service's own and left to the status.
 */
function retryableFault(code: string): { retryable?: boolean } {
  const family = code.split(".")[0]!;
  if (["Client", "Sender", "VersionMismatch", "MustUnderstand", "DataEncodingUnknown"].includes(family))
    return { retryable: false };
  if (family === "Server" || family === "Receiver") return { retryable: true };
  return {};
}

/** A Fault in a SOAP envelope namespace, or (lenient) with no namespace but fault parts: not an application element named Fault. */
function isSoapFault(element: XmlElement): boolean {
  if (versionOfEnvelope(element.namespace)) return true;
  if (element.namespace) return false;
  return ["faultcode", "faultstring", "Code", "Reason"].some((name) => firstChild(element, name));
}

function readFault(fault: XmlElement): SoapFault {
  // 1.1 parts (unqualified) or 1.2 parts (in the envelope namespace): whichever the server sent.
  const code11 = firstChild(fault, "faultcode");
  const string11 = firstChild(fault, "faultstring");
  const code12 = firstChild(fault, "Code");
  const reason12 = firstChild(fault, "Reason");

  const code = code11 ? textContent(code11) : code12 ? textContent(firstChild(code12, "Value") ?? code12) : "";
  let subcode: string | undefined;
  for (let current = firstChild(code12, "Subcode"); current; current = firstChild(current, "Subcode")) {
    const value = firstChild(current, "Value");
    if (value) subcode = localPart(textContent(value));
  }
  let text = string11 ? textContent(string11) : "";
  if (!text && reason12) {
    const texts = childElements(reason12, "Text");
    const preferred =
      texts.find((element) =>
        /^en\b/i.test(element.attributes.find((attribute) => attribute.localName === "lang")?.value ?? ""),
      ) ?? texts[0];
    text = preferred ? textContent(preferred) : textContent(reason12);
  }
  return { code: localPart(code) || "Fault", ...(subcode ? { subcode } : {}), text: firstLine(text) };
}

/** `soap:Client` -> `Client`; the prefix is the server's choice and says nothing. */
function localPart(qname: string): string {
  const trimmed = qname.trim();
  return trimmed.slice(trimmed.indexOf(":") + 1);
}

/** A fault string can carry a stack trace on the lines after the message; epilot gets the message. */
function firstLine(text: string): string {
  const line = text.trim().split(/\r?\n/, 1)[0]!.trim();
  return line.length > MAX_FAULT_TEXT ? `${line.slice(0, MAX_FAULT_TEXT)}…` : line;
}

/** Elements as an object keyed by local name; a name that repeats holds an array. */
function elementsToJson(elements: readonly XmlElement[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const element of elements) {
    const value = elementToJson(element);
    const key = element.localName;
    const existing = out[key];
    // Element values are never arrays themselves, so an array here is a name seen before.
    if (!Object.hasOwn(out, key)) setOwn(out, key, value);
    else if (Array.isArray(existing)) existing.push(value);
    else setOwn(out, key, [existing, value]);
  }
  return out;
}

/** Defines the key even when it is `__proto__`: an answer cannot change an object's prototype. */
function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function elementToJson(element: XmlElement): unknown {
  const nil = element.attributes.find((attribute) => attribute.localName === "nil" && attribute.namespace === XSI);
  if (nil && (nil.value === "true" || nil.value === "1")) return null;
  const attributes: Record<string, string> = {};
  for (const attribute of element.attributes) {
    if (attribute.namespace === XMLNS || attribute.namespace === XSI) continue;
    setOwn(attributes, `@${attribute.localName}`, attribute.value);
  }
  const children = childElements(element);
  const text = element.children
    .filter((child) => !("localName" in child) && !child.comment)
    .map((child) => (child as { text: string }).text)
    .join("");
  if (children.length === 0 && Object.keys(attributes).length === 0) return text;
  const out: Record<string, unknown> = attributes;
  for (const [key, value] of Object.entries(elementsToJson(children))) setOwn(out, key, value);
  if (text.trim() !== "") out["#text"] = children.length > 0 ? text.trim() : text;
  return out;
}
