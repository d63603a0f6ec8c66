/** The two SOAP versions: envelope namespace and how the action travels. */
export type SoapVersion = "1.1" | "1.2";

export const SOAP11_ENVELOPE = "http://schemas.xmlsoap.org/soap/envelope/";
export const SOAP12_ENVELOPE = "http://www.w3.org/2003/05/soap-envelope";
export const XSI = "http://www.w3.org/2001/XMLSchema-instance";

export const ENVELOPE_NAMESPACE: Readonly<Record<SoapVersion, string>> = {
  "1.1": SOAP11_ENVELOPE,
  "1.2": SOAP12_ENVELOPE,
};

/** The SOAP version whose envelope namespace this is, if it is one. */
export function versionOfEnvelope(namespace: string | undefined): SoapVersion | undefined {
  if (namespace === SOAP11_ENVELOPE) return "1.1";
  if (namespace === SOAP12_ENVELOPE) return "1.2";
  return undefined;
}

/**
 * The HTTP headers that say "SOAP" and which action: 1.1 sends `text/xml` and a quoted `SOAPAction`
 * header (quoted even when empty, as the spec asks); 1.2 sends `application/soap+xml` with the
 * action as a content-type parameter.
 *
 * @example
 * soapHttpHeaders("1.2", "urn:crm#CreateCustomer");
 * // { "content-type": 'application/soap+xml; charset=utf-8; action="urn:crm#CreateCustomer"' }
 */
export function soapHttpHeaders(version: SoapVersion, soapAction: string): Record<string, string> {
  if (version === "1.1") return { "content-type": "text/xml; charset=utf-8", soapaction: `"${soapAction}"` };
  return { "content-type": `application/soap+xml; charset=utf-8${soapAction ? `; action="${soapAction}"` : ""}` };
}
