import type { SoapVersion } from "./soap-version.ts";
import {
  attributeValue,
  childElements,
  firstChild,
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

/** What a WSDL says about calling one operation through one port. */
export interface WsdlOperation {
  readonly operation: string;
  readonly service: string;
  readonly port: string;
  readonly version: SoapVersion;
  /** `soap:address location`; undefined when the port has none. */
  readonly url: string | undefined;
  /** `soap:operation soapAction`; undefined when the binding gives none. */
  readonly soapAction: string | undefined;
  readonly style: "document" | "rpc";
  /** The body element: the input part's element (document) or the operation's name (rpc). */
  readonly element: string;
  readonly namespace: string;
  /** `elementFormDefault` of the schema that declares the element, when the WSDL holds that schema. */
  readonly elementForm: "qualified" | "unqualified" | undefined;
}

/** A WSDL 1.1 document, read once at load. */
export interface Wsdl {
  /** Names of every operation a SOAP port offers, sorted. */
  readonly operations: readonly string[];
  /** SOAP ports in document order: service, port, version. */
  readonly ports: readonly { service: string; port: string; version: SoapVersion }[];
  /** Every SOAP port offering `operation`, in document order. */
  lookup(operation: string): WsdlOperation[];
}

/** The WSDL cannot be used: not XML, not WSDL 1.1, or missing what an operation needs. */
export class WsdlError extends Error {
  override name = "WsdlError";
}

interface QName {
  readonly namespace: string | undefined;
  readonly localName: string;
}

/**
 * Reads a WSDL 1.1 document (parsed with fast-xml-parser, namespaces resolved) into what a call
 * needs: endpoint, SOAP version, SOAPAction, body element and namespace. Reads only this one
 * document: `wsdl:import` and `xsd:import` are not followed (the element form then stays unknown).
 *
 * @example
 * const wsdl = readWsdl(readFileSync("service.wsdl", "utf8"));
 * wsdl.lookup("CreateCustomer")[0]; // { version: "1.1", url: "http://crm/ws", soapAction: "urn:crm#CreateCustomer", ... }
 */
export function readWsdl(text: string): Wsdl {
  let root: XmlElement;
  try {
    root = parseXmlTree(text);
  } catch (error) {
    if (error instanceof XmlSyntaxError) throw new WsdlError(error.message);
    throw error;
  }
  if (root.namespace === WSDL20) throw new WsdlError("WSDL 2.0 is not supported; use a WSDL 1.1 document");
  if (root.localName !== "definitions" || root.namespace !== WSDL11)
    throw new WsdlError("not a WSDL 1.1 document (the root must be wsdl:definitions)");
  const targetNamespace = attributeValue(root, "targetNamespace") ?? "";
  const named = (localName: string) =>
    new Map(wsdlChildren(root, localName).map((element) => [attributeValue(element, "name") ?? "", element]));
  const messages = named("message");
  const portTypes = named("portType");
  const bindings = named("binding");
  const schemas = schemaIndex(root);

  const ports = wsdlChildren(root, "service").flatMap((service) =>
    wsdlChildren(service, "port").flatMap((port) => {
      const bindingName = qname(port, attributeValue(port, "binding"));
      const binding = bindingName && bindings.get(bindingName.localName);
      const version = binding ? bindingVersion(binding) : undefined;
      if (!binding || !version) return [];
      const address = childElements(port, "address").find(
        (element) => element.namespace === WSDL_SOAP11 || element.namespace === WSDL_SOAP12,
      );
      return [
        {
          service: attributeValue(service, "name") ?? "",
          port: attributeValue(port, "name") ?? "",
          version,
          binding,
          url: address && attributeValue(address, "location"),
        },
      ];
    }),
  );

  const lookup = (operation: string): WsdlOperation[] =>
    ports.flatMap((port) => {
      const bindingOperation = wsdlChildren(port.binding, "operation").find(
        (element) => attributeValue(element, "name") === operation,
      );
      if (!bindingOperation) return [];
      const soapBinding = soapChild(port.binding, "binding");
      const soapOperation = soapChild(bindingOperation, "operation");
      const style =
        (attributeValue(soapOperation, "style") ?? attributeValue(soapBinding, "style") ?? "document") === "rpc"
          ? "rpc"
          : "document";
      const body = soapChild(firstChild(bindingOperation, "input"), "body");
      const base = {
        operation,
        service: port.service,
        port: port.port,
        version: port.version,
        url: port.url,
        soapAction: attributeValue(soapOperation, "soapAction"),
        style,
      } as const;
      if (style === "rpc") {
        return [
          {
            ...base,
            element: operation,
            namespace: attributeValue(body, "namespace") ?? targetNamespace,
            elementForm: "unqualified" as const,
          },
        ];
      }
      const element = inputElement(port.binding, operation, portTypes, messages);
      if (!element) throw new WsdlError(`operation "${operation}" has no input message part with an element`);
      return [
        {
          ...base,
          element: element.localName,
          namespace: element.namespace ?? targetNamespace,
          elementForm: schemas.elementForm(element),
        },
      ];
    });

  const operations = [
    ...new Set(
      ports.flatMap((port) =>
        wsdlChildren(port.binding, "operation").map((element) => attributeValue(element, "name") ?? ""),
      ),
    ),
  ].sort();
  return { operations, ports: ports.map(({ service, port, version }) => ({ service, port, version })), lookup };
}

function wsdlChildren(element: XmlElement, localName: string): XmlElement[] {
  return childElements(element, localName).filter((child) => child.namespace === WSDL11);
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

/** binding -> portType operation -> input message -> the part's `element`. */
function inputElement(
  binding: XmlElement,
  operation: string,
  portTypes: Map<string, XmlElement>,
  messages: Map<string, XmlElement>,
): QName | undefined {
  const portTypeName = qname(binding, attributeValue(binding, "type"));
  const portType = portTypeName && portTypes.get(portTypeName.localName);
  const portOperation =
    portType && wsdlChildren(portType, "operation").find((element) => attributeValue(element, "name") === operation);
  const input = portOperation && firstChild(portOperation, "input");
  const messageName = input && qname(input, attributeValue(input, "message"));
  const message = messageName && messages.get(messageName.localName);
  const part = message && wsdlChildren(message, "part").find((element) => attributeValue(element, "element"));
  return part ? qname(part, attributeValue(part, "element")) : undefined;
}

/** Top-level elements of the inline schemas, to read `elementFormDefault` for a body element. */
function schemaIndex(root: XmlElement): { elementForm(element: QName): "qualified" | "unqualified" | undefined } {
  const types = wsdlChildren(root, "types")[0];
  const schemas = types ? childElements(types, "schema").filter((schema) => schema.namespace === XSD) : [];
  return {
    elementForm(element) {
      const schema = schemas.find(
        (candidate) =>
          (attributeValue(candidate, "targetNamespace") ?? "") === (element.namespace ?? "") &&
          childElements(candidate, "element").some(
            (declared) => attributeValue(declared, "name") === element.localName,
          ),
      );
      if (!schema) return undefined;
      // XML Schema's default is "unqualified".
      return attributeValue(schema, "elementFormDefault") === "qualified" ? "qualified" : "unqualified";
    },
  };
}
