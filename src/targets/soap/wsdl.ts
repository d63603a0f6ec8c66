import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { SoapVersion } from "./soap-version.ts";
import {
  attributeValue,
  childElements,
  FILE_LIMITS,
  parseXmlTree,
  resolveQName,
  type XmlElement,
  XmlSyntaxError,
} from "./xml-tree.ts";

const WSDL11 = "http://schemas.xmlsoap.org/wsdl/";
const WSDL20 = "http://www.w3.org/ns/wsdl";
const WSDL_SOAP11 = "http://schemas.xmlsoap.org/wsdl/soap/";
const WSDL_SOAP12 = "http://schemas.xmlsoap.org/wsdl/soap12/";
const XSD = "http://www.w3.org/2001/XMLSchema";

/** `wsdl:import` and `xsd:import`/`include` chains longer than this are refused (a generated loop, or worse). */
export const MAX_IMPORT_DEPTH = 16;
/** Documents one WSDL may pull in, all imports together. */
export const MAX_IMPORTED_DOCUMENTS = 200;
/** How many operation names a "not in the WSDL" message lists before it says how many more there are. */
const LISTED_OPERATIONS = 30;

/** What a WSDL says about calling one operation through one port (or a binding no port uses). */
export interface WsdlOperation {
  readonly operation: string;
  /** The `wsdl:service`; undefined for a binding that no service port uses (ONVIF's WSDLs have none). */
  readonly service: string | undefined;
  /** The port's name, or the binding's for a binding without a port. */
  readonly port: string;
  readonly binding: string;
  readonly version: SoapVersion;
  /** `soap:address location`; undefined when the port has none, or there is no port. */
  readonly url: string | undefined;
  /** `soap:operation soapAction`; undefined when the binding gives none. */
  readonly soapAction: string | undefined;
  readonly style: "document" | "rpc";
  /** `soap:body use` of the input: `encoded` is SOAP encoding (xsi:type, SOAP-ENC arrays), which actiongate does not write. */
  readonly use: "literal" | "encoded";
  /** The body element: the body part's element (document) or the operation's name (rpc); undefined when the WSDL lacks it. */
  readonly element: string | undefined;
  readonly namespace: string | undefined;
  /** `elementFormDefault` of the schema that declares the element's content, when a schema read holds it. */
  readonly elementForm: "qualified" | "unqualified" | undefined;
  /** Why the WSDL names no body element: config keys (`namespace`) can fill in, or an envelope template. */
  readonly missing?: string;
  /** A body actiongate cannot write from a transform (several body parts): only an envelope template can. */
  readonly unsupported?: string;
  /** Why the element form cannot be known (its schema is only at a URL, or missing): `element_form` fills in. */
  readonly formUnknown?: string;
}

/** A WSDL 1.1 document with its imports, read once at load. */
export interface Wsdl {
  /** Names of every operation a SOAP binding offers (through a port or not), sorted. */
  readonly operations: readonly string[];
  /** SOAP ports in document order, then the SOAP bindings no port uses. */
  readonly ports: readonly {
    service: string | undefined;
    port: string;
    binding: string;
    version: SoapVersion;
    url: string | undefined;
  }[];
  /** Every SOAP port (or portless binding) offering `operation`, in that order. */
  lookup(operation: string): WsdlOperation[];
  /** "A, B, C" or "A, B, ... and 60 more"; "none" when there is no SOAP operation. */
  describeOperations(): string;
}

/** The WSDL cannot be used: not XML, not WSDL 1.1, an import that cannot be read, or missing what an operation needs. */
export class WsdlError extends Error {
  override name = "WsdlError";
}

export interface ReadWsdlOptions {
  /** The WSDL's own path: imports resolve against its folder. Without it, an import is an error. */
  readonly file?: string;
  /** Reads an imported file by absolute path (tests give their own); default: the file system. */
  readonly readFile?: (path: string) => string;
}

interface QName {
  readonly namespace: string | undefined;
  readonly localName: string;
}

/** A top-level WSDL or schema component, with the targetNamespace of the document that defines it. */
interface Component {
  readonly element: XmlElement;
  readonly targetNamespace: string;
}

interface Schema {
  readonly element: XmlElement;
  /** Its own, or (an `xsd:include`d chameleon schema) the including schema's. */
  readonly targetNamespace: string;
}

/** What was read: every definitions document and schema reachable through local imports. */
interface WsdlSet {
  readonly messages: ComponentMap;
  readonly portTypes: ComponentMap;
  readonly bindings: ComponentMap;
  readonly services: Component[];
  readonly schemas: Schema[];
  /** Schemas named by an import that were not read: a URL (never downloaded) or a missing file. */
  readonly unread: { namespace: string | undefined; location: string; why: string }[];
}

/** Components by `{namespace}localName`, with a fallback by local name when it is unique (sloppy prefixes). */
class ComponentMap {
  private readonly byQName = new Map<string, Component>();
  private readonly byLocal = new Map<string, Component[]>();
  add(component: Component): void {
    const name = attributeValue(component.element, "name") ?? "";
    const key = `{${component.targetNamespace}}${name}`;
    if (!this.byQName.has(key)) this.byQName.set(key, component);
    const list = this.byLocal.get(name) ?? [];
    list.push(component);
    this.byLocal.set(name, list);
  }
  values(): Component[] {
    return [...this.byLocal.values()].flat();
  }
  get(name: QName | undefined): Component | undefined {
    if (!name) return undefined;
    const exact = name.namespace !== undefined ? this.byQName.get(`{${name.namespace}}${name.localName}`) : undefined;
    if (exact) return exact;
    const candidates = this.byLocal.get(name.localName);
    return candidates?.length === 1 ? candidates[0] : undefined;
  }
}

/**
 * Reads a WSDL 1.1 file and every `wsdl:import`, `xsd:import` and `xsd:include` it names by a local
 * path (relative to the importing file), never a URL: a `wsdl:import` of an http(s) location is an
 * error, a schema at a URL is left unread (only an element form can depend on it). Imports nest at
 * most {@link MAX_IMPORT_DEPTH} deep; a file imported twice (or in a cycle) is read once.
 *
 * @example
 * const wsdl = loadWsdl("/etc/actiongate/CustomerService.wsdl");
 * wsdl.lookup("CreateCustomer")[0]; // { version: "1.1", url: "http://crm/ws", soapAction: "urn:crm#CreateCustomer", ... }
 */
export function loadWsdl(file: string, readFile: (path: string) => string = readTextFile): Wsdl {
  return readWsdl(readFile(file), { file, readFile });
}

/**
 * Reads a WSDL 1.1 document (and its imports, see {@link loadWsdl}) into what a call needs:
 * endpoint, SOAP version, SOAPAction, body element, namespace and element form. Problems of one
 * operation (a binding operation missing from its portType, a part with a type instead of an
 * element) are reported by {@link Wsdl.lookup} for that operation only, as `missing`: the config
 * may fill in what the WSDL lacks.
 *
 * @example
 * const wsdl = readWsdl(readFileSync("service.wsdl", "utf8"), { file: "service.wsdl" });
 * wsdl.lookup("CreateCustomer")[0]; // { version: "1.1", url: "http://crm/ws", soapAction: "urn:crm#CreateCustomer", ... }
 */
export function readWsdl(text: string, options: ReadWsdlOptions = {}): Wsdl {
  const set: WsdlSet = {
    messages: new ComponentMap(),
    portTypes: new ComponentMap(),
    bindings: new ComponentMap(),
    services: [],
    schemas: [],
    unread: [],
  };
  const root = parseDocument(text);
  if (root.namespace === WSDL20) throw new WsdlError("WSDL 2.0 is not supported; use a WSDL 1.1 document");
  if (root.localName !== "definitions" || root.namespace !== WSDL11)
    throw new WsdlError("not a WSDL 1.1 document (the root must be wsdl:definitions)");
  const reader = new ImportReader(set, options.readFile ?? readTextFile);
  reader.addDefinitions(root, options.file, 0);

  const ports = soapPorts(set);
  const lookup = (operation: string): WsdlOperation[] =>
    ports.flatMap((port) => {
      const bindingOperation = wsdlChildren(port.binding.element, "operation").find(
        (element) => attributeValue(element, "name") === operation,
      );
      return bindingOperation ? [describeOperation(set, port, operation, bindingOperation)] : [];
    });
  const operations = [
    ...new Set(
      ports.flatMap((port) =>
        wsdlChildren(port.binding.element, "operation").map((element) => attributeValue(element, "name") ?? ""),
      ),
    ),
  ].sort();
  return {
    operations,
    ports: ports.map(({ service, port, bindingName, version, url }) => ({
      service,
      port,
      binding: bindingName,
      version,
      url,
    })),
    lookup,
    describeOperations() {
      if (operations.length === 0) return "none";
      if (operations.length <= LISTED_OPERATIONS) return operations.join(", ");
      return `${operations.slice(0, LISTED_OPERATIONS).join(", ")}, ... and ${operations.length - LISTED_OPERATIONS} more`;
    },
  };
}

function readTextFile(path: string): string {
  return readFileSync(path, "utf8");
}

function parseDocument(text: string): XmlElement {
  try {
    return parseXmlTree(text, FILE_LIMITS);
  } catch (error) {
    if (error instanceof XmlSyntaxError) throw new WsdlError(error.message);
    throw error;
  }
}

/** An imported file that could not be read (missing, no permission). */
class UnreadableImport extends WsdlError {
  override name = "UnreadableImport";
}

/** Follows imports from the main document, depth-first, each file once. */
class ImportReader {
  private readonly seen = new Set<string>();
  private documents = 1;
  constructor(
    private readonly set: WsdlSet,
    private readonly readFile: (path: string) => string,
  ) {}

  addDefinitions(root: XmlElement, file: string | undefined, depth: number): void {
    if (file !== undefined) this.seen.add(resolve(file));
    const targetNamespace = attributeValue(root, "targetNamespace") ?? "";
    for (const wsdlImport of wsdlChildren(root, "import")) {
      const location = attributeValue(wsdlImport, "location");
      if (location === undefined || location.trim() === "") continue; // a namespace only, defined elsewhere
      const path = this.localPath(location, file, "wsdl:import");
      if (path === undefined || this.seen.has(path)) continue;
      const imported = this.read(path, location, depth, "wsdl:import");
      if (imported.localName === "definitions" && imported.namespace === WSDL11)
        this.addDefinitions(imported, path, depth + 1);
      // .NET and some generators import a bare schema with wsdl:import.
      else if (imported.localName === "schema" && imported.namespace === XSD)
        this.addSchema(imported, undefined, path, depth + 1);
      else throw new WsdlError(`wsdl:import of ${location}: not a WSDL 1.1 document or XML schema`);
    }
    const component = (element: XmlElement): Component => ({ element, targetNamespace });
    for (const message of wsdlChildren(root, "message")) this.set.messages.add(component(message));
    for (const portType of wsdlChildren(root, "portType")) this.set.portTypes.add(component(portType));
    for (const binding of wsdlChildren(root, "binding")) this.set.bindings.add(component(binding));
    for (const service of wsdlChildren(root, "service")) this.set.services.push(component(service));
    for (const types of wsdlChildren(root, "types")) {
      for (const schema of childElements(types, "schema").filter((element) => element.namespace === XSD))
        this.addSchema(schema, undefined, file, depth);
    }
  }

  /** A schema and, for element forms, the schemas it imports or includes by a local `schemaLocation`. */
  private addSchema(
    schema: XmlElement,
    chameleonNamespace: string | undefined,
    file: string | undefined,
    depth: number,
  ) {
    const targetNamespace = attributeValue(schema, "targetNamespace") ?? chameleonNamespace ?? "";
    this.set.schemas.push({ element: schema, targetNamespace });
    for (const reference of childElements(schema).filter(
      (element) =>
        element.namespace === XSD && ["import", "include", "redefine", "override"].includes(element.localName),
    )) {
      const location = attributeValue(reference, "schemaLocation");
      const namespace =
        reference.localName === "import" ? (attributeValue(reference, "namespace") ?? "") : targetNamespace;
      if (location === undefined || location.trim() === "") continue;
      const kind = `xsd:${reference.localName}`;
      let path: string | undefined;
      try {
        path = this.localPath(location, file, kind);
      } catch (error) {
        // Only an element form can depend on a schema: a URL is left unread, and reported if needed.
        if (!(error instanceof WsdlError)) throw error;
        this.set.unread.push({ namespace, location, why: "actiongate never downloads a schema" });
        continue;
      }
      if (path === undefined || this.seen.has(path)) continue;
      let imported: XmlElement;
      try {
        imported = this.read(path, location, depth, kind);
      } catch (error) {
        if (!(error instanceof UnreadableImport)) throw error;
        this.set.unread.push({ namespace, location, why: "the file cannot be read" });
        continue;
      }
      if (imported.localName !== "schema" || imported.namespace !== XSD)
        throw new WsdlError(`${kind} of ${location}: not an XML schema`);
      this.addSchema(imported, reference.localName === "import" ? undefined : targetNamespace, path, depth + 1);
    }
  }

  /** The absolute path of a local location; a URL is refused, never fetched. */
  private localPath(location: string, from: string | undefined, kind: string): string | undefined {
    const trimmed = location.trim();
    let path: string;
    if (/^file:/i.test(trimmed)) path = fileURLToPath(trimmed);
    else if (/^[a-z][a-z0-9+.-]*:/i.test(trimmed) && !/^[a-z]:[\\/]/i.test(trimmed)) {
      throw new WsdlError(
        `${kind} of ${trimmed}: actiongate reads local files only and never downloads one; save it next to the WSDL and point the import at the file`,
      );
    } else if (isAbsolute(trimmed)) path = trimmed;
    else if (from === undefined)
      throw new WsdlError(`${kind} of ${trimmed}: a relative import needs the WSDL to be read from a file`);
    else path = resolve(dirname(from), decodeURIComponent(trimmed.split(/[?#]/, 1)[0]!));
    return resolve(path);
  }

  private read(path: string, location: string, depth: number, kind: string): XmlElement {
    if (depth + 1 > MAX_IMPORT_DEPTH)
      throw new WsdlError(`${kind} of ${location}: imports nest deeper than ${MAX_IMPORT_DEPTH} levels`);
    if (++this.documents > MAX_IMPORTED_DOCUMENTS)
      throw new WsdlError(`${kind} of ${location}: more than ${MAX_IMPORTED_DOCUMENTS} imported documents`);
    this.seen.add(path);
    let text: string;
    try {
      text = this.readFile(path);
    } catch (error) {
      const code = (error as { code?: string }).code;
      throw new UnreadableImport(
        `${kind} of ${location}: ${code === "ENOENT" ? `file not found: ${path}` : `cannot read ${path} (${code ?? "error"})`}`,
      );
    }
    try {
      return parseXmlTree(text, FILE_LIMITS);
    } catch (error) {
      if (error instanceof XmlSyntaxError) throw new WsdlError(`${kind} of ${location}: ${error.message}`);
      throw error;
    }
  }
}

interface SoapPort {
  readonly service: string | undefined;
  readonly port: string;
  readonly bindingName: string;
  readonly binding: Component;
  readonly version: SoapVersion;
  readonly url: string | undefined;
}

/** Service ports with a SOAP binding, then SOAP bindings that no port uses (callable with `url`). */
function soapPorts(set: WsdlSet): SoapPort[] {
  const used = new Set<XmlElement>();
  const ports: SoapPort[] = set.services.flatMap((service) =>
    wsdlChildren(service.element, "port").flatMap((port) => {
      const binding = set.bindings.get(qname(port, attributeValue(port, "binding")));
      const version = binding ? bindingVersion(binding.element) : undefined;
      if (!binding || !version) return [];
      used.add(binding.element);
      const address = childElements(port, "address").find(
        (element) => element.namespace === WSDL_SOAP11 || element.namespace === WSDL_SOAP12,
      );
      return [
        {
          service: attributeValue(service.element, "name") ?? "",
          port: attributeValue(port, "name") ?? "",
          bindingName: attributeValue(binding.element, "name") ?? "",
          binding,
          version,
          url: address && attributeValue(address, "location"),
        },
      ];
    }),
  );
  for (const binding of set.bindings.values()) {
    const version = bindingVersion(binding.element);
    if (!version || used.has(binding.element)) continue;
    const name = attributeValue(binding.element, "name") ?? "";
    ports.push({ service: undefined, port: name, bindingName: name, binding, version, url: undefined });
  }
  return ports;
}

function describeOperation(
  set: WsdlSet,
  port: SoapPort,
  operation: string,
  bindingOperation: XmlElement,
): WsdlOperation {
  const soapBinding = soapChild(port.binding.element, "binding");
  const soapOperation = soapChild(bindingOperation, "operation");
  const style =
    (attributeValue(soapOperation, "style") ?? attributeValue(soapBinding, "style") ?? "document") === "rpc"
      ? "rpc"
      : "document";
  const input = wsdlChildren(bindingOperation, "input")[0];
  const body = soapChild(input, "body");
  const base = {
    operation,
    service: port.service,
    port: port.port,
    binding: port.bindingName,
    version: port.version,
    url: port.url,
    soapAction: attributeValue(soapOperation, "soapAction"),
    style,
    use: attributeValue(body, "use") === "encoded" ? "encoded" : "literal",
  } as const;

  if (style === "rpc") {
    return {
      ...base,
      element: operation,
      namespace: attributeValue(body, "namespace") ?? port.binding.targetNamespace,
      elementForm: "unqualified",
    };
  }
  const parts = bodyParts(set, port.binding, operation, input, body);
  const unknown = { element: undefined, namespace: undefined, elementForm: undefined };
  if ("missing" in parts) return { ...base, ...unknown, missing: parts.missing };
  if (parts.parts.length !== 1) {
    const names = parts.parts.map((part) => attributeValue(part, "name") ?? "?").join(", ");
    return parts.parts.length === 0
      ? { ...base, ...unknown, missing: `its input message ${parts.message} leaves the Body empty (no body part)` }
      : {
          ...base,
          ...unknown,
          unsupported: `its input puts ${parts.parts.length} parts in the Body (${names}), and a transform fills one body element`,
        };
  }
  const part = parts.parts[0]!;
  const elementValue = attributeValue(part, "element");
  if (!elementValue) {
    return {
      ...base,
      ...unknown,
      missing: `part "${attributeValue(part, "name") ?? ""}" of message ${parts.message} has a type, not an element (document style needs an element)`,
    };
  }
  const element = resolveQName(part, elementValue);
  const form = elementForm(set, element);
  return {
    ...base,
    element: element.localName,
    namespace: element.namespace ?? port.binding.targetNamespace,
    elementForm: form.form,
    ...(form.unknown ? { formUnknown: form.unknown } : {}),
  };
}

/**
 * The input message's parts that go into the Body: those `soap:body parts` names, else every part
 * that no `soap:header` of the same input takes (a header part must never become the Body).
 */
function bodyParts(
  set: WsdlSet,
  binding: Component,
  operation: string,
  input: XmlElement | undefined,
  body: XmlElement | undefined,
): { parts: XmlElement[]; message: string } | { missing: string } {
  const portTypeName = qname(binding.element, attributeValue(binding.element, "type"));
  const portType = set.portTypes.get(portTypeName);
  if (!portType)
    return {
      missing: `portType ${portTypeName?.localName ?? "(none)"} of its binding is not in the WSDL or its imports`,
    };
  const portOperation = wsdlChildren(portType.element, "operation").find(
    (element) => attributeValue(element, "name") === operation,
  );
  if (!portOperation)
    return { missing: `the binding's operation "${operation}" is not in portType ${portTypeName!.localName}` };
  const portInput = wsdlChildren(portOperation, "input")[0];
  const messageName = portInput && qname(portInput, attributeValue(portInput, "message"));
  const message = set.messages.get(messageName);
  if (!message)
    return {
      missing: portInput
        ? `message ${messageName?.localName ?? "(none)"} of its input is not in the WSDL or its imports`
        : `portType operation "${operation}" has no input`,
    };
  const messageLabel = attributeValue(message.element, "name") ?? "";
  const all = wsdlChildren(message.element, "part");
  const named = (name: string) => all.find((part) => attributeValue(part, "name") === name);
  const listed = attributeValue(body, "parts");
  if (listed !== undefined) {
    const names = listed.trim().split(/\s+/).filter(Boolean);
    const unknownName = names.find((name) => !named(name));
    if (unknownName !== undefined)
      return { missing: `soap:body parts names "${unknownName}", which message ${messageLabel} does not have` };
    return { parts: names.map((name) => named(name)!), message: messageLabel };
  }
  const headerParts = new Set(
    (input ? childElements(input, "header") : [])
      .filter((header) => header.namespace === WSDL_SOAP11 || header.namespace === WSDL_SOAP12)
      .filter((header) => {
        const headerMessage = qname(header, attributeValue(header, "message"));
        return headerMessage !== undefined && set.messages.get(headerMessage)?.element === message.element;
      })
      .map((header) => attributeValue(header, "part") ?? ""),
  );
  return {
    parts: all.filter((part) => !headerParts.has(attributeValue(part, "name") ?? "")),
    message: messageLabel,
  };
}

/**
 * `elementFormDefault` of the schema whose local element declarations make up the body element's
 * content: the element's own schema for an anonymous type, the named type's schema otherwise.
 */
function elementForm(
  set: WsdlSet,
  element: QName,
): { form: "qualified" | "unqualified" | undefined; unknown?: string } {
  const namespace = element.namespace ?? "";
  const declaring = findTopLevel(set, "element", namespace, element.localName);
  if (!declaring) {
    const unread = set.unread.find((schema) => (schema.namespace ?? "") === namespace);
    if (unread)
      return {
        form: undefined,
        unknown: `the schema of element ${element.localName} (namespace ${namespace}) is at ${unread.location}, which was not read (${unread.why}); save it next to the WSDL and point schemaLocation at the file, or set element_form`,
      };
    return { form: undefined };
  }
  let schema = declaring.schema;
  const typeValue = attributeValue(declaring.element, "type");
  if (typeValue) {
    const type = resolveQName(declaring.element, typeValue);
    const typeSchema = findTopLevel(set, "complexType", type.namespace ?? "", type.localName);
    if (typeSchema) schema = typeSchema.schema;
  }
  // XML Schema's default is "unqualified".
  return { form: attributeValue(schema.element, "elementFormDefault") === "qualified" ? "qualified" : "unqualified" };
}

function findTopLevel(
  set: WsdlSet,
  kind: "element" | "complexType",
  namespace: string,
  localName: string,
): { schema: Schema; element: XmlElement } | undefined {
  for (const schema of set.schemas) {
    if (schema.targetNamespace !== namespace) continue;
    const element = childElements(schema.element, kind).find(
      (declared) => declared.namespace === XSD && attributeValue(declared, "name") === localName,
    );
    if (element) return { schema, element };
  }
  return undefined;
}

function wsdlChildren(element: XmlElement | undefined, localName: string): XmlElement[] {
  return element ? childElements(element, localName).filter((child) => child.namespace === WSDL11) : [];
}

function soapChild(element: XmlElement | undefined, localName: string): XmlElement | undefined {
  if (!element) return undefined;
  return childElements(element, localName).find(
    (child) => child.namespace === WSDL_SOAP11 || child.namespace === WSDL_SOAP12,
  );
}

function bindingVersion(binding: XmlElement): SoapVersion | undefined {
  const soapBinding = soapChild(binding, "binding");
  if (!soapBinding) return undefined; // an HTTP or MIME binding: not for SOAP calls
  return soapBinding.namespace === WSDL_SOAP12 ? "1.2" : "1.1";
}

function qname(element: XmlElement, value: string | undefined): QName | undefined {
  return value ? resolveQName(element, value) : undefined;
}
