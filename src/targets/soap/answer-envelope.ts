import { contentOf, ENVELOPE_PREFIX, serializeXml, type XmlNode } from "./envelope.ts";
import { ENVELOPE_NAMESPACE, type SoapVersion } from "./soap-version.ts";

/** A SOAP Fault to answer with, in the terms both versions share. */
export interface SoapFaultSpec {
  /** `Client`/`Server` (1.1), `Sender`/`Receiver` (1.2), or a service's own QName (`ns:Duplicate`). */
  readonly code: string;
  /** `faultstring` (1.1) or `Reason/Text` (1.2). */
  readonly reason: string;
  /** 1.2 only: the `Subcode/Value`. */
  readonly subcode?: string | undefined;
  /** The content of `detail` (1.1) or `Detail` (1.2), as JSON: its keys become elements. */
  readonly detail?: unknown;
}

/** The codes SOAP itself defines: written in the envelope's namespace, as servers send them. */
const ENVELOPE_CODES = new Set([
  "Client",
  "Server",
  "VersionMismatch",
  "MustUnderstand",
  "Sender",
  "Receiver",
  "DataEncodingUnknown",
]);

/**
 * A SOAP answer as a service would send it: the envelope of `version` whose Body holds `body` (its
 * keys become elements, as a transform's result does in a request) or a Fault. Route tests answer
 * in a SOAP target's stead with it, so that `response.*` and fault handling read a real envelope.
 *
 * @example
 * soapAnswerEnvelope("1.1", { body: { CreateCustomerResponse: { CustomerRef: "CRM-7" } } });
 * soapAnswerEnvelope("1.2", { fault: { code: "Sender", reason: "Customer exists", subcode: "Duplicate" } });
 */
export function soapAnswerEnvelope(
  version: SoapVersion,
  answer: { readonly body?: unknown; readonly fault?: SoapFaultSpec | undefined },
): string {
  const soap = (name: string) => `${ENVELOPE_PREFIX}:${name}`;
  const bodyChildren = answer.fault ? [faultNode(version, answer.fault)] : (contentOf(answer.body, "").children ?? []);
  const envelope: XmlNode = {
    name: soap("Envelope"),
    attributes: { [`xmlns:${ENVELOPE_PREFIX}`]: ENVELOPE_NAMESPACE[version] },
    children: [{ name: soap("Body"), children: bodyChildren }],
  };
  return serializeXml([envelope], { declaration: true });
}

function faultNode(version: SoapVersion, fault: SoapFaultSpec): XmlNode {
  const soap = (name: string) => `${ENVELOPE_PREFIX}:${name}`;
  const code = ENVELOPE_CODES.has(fault.code) ? soap(fault.code) : fault.code;
  const detail = fault.detail === undefined ? undefined : contentOf(fault.detail, "");
  if (version === "1.1") {
    return {
      name: soap("Fault"),
      children: [
        { name: "faultcode", text: code },
        { name: "faultstring", text: fault.reason },
        ...(detail ? [{ name: "detail", ...detail }] : []),
      ],
    };
  }
  return {
    name: soap("Fault"),
    children: [
      {
        name: soap("Code"),
        children: [
          { name: soap("Value"), text: code },
          ...(fault.subcode
            ? [{ name: soap("Subcode"), children: [{ name: soap("Value"), text: fault.subcode }] }]
            : []),
        ],
      },
      {
        name: soap("Reason"),
        children: [{ name: soap("Text"), attributes: { "xml:lang": "en" }, text: fault.reason }],
      },
      ...(detail ? [{ name: soap("Detail"), ...detail }] : []),
    ],
  };
}
