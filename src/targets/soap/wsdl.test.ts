import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { readWsdl, WsdlError } from "./wsdl.ts";

const CRM_WSDL = readFileSync(join(import.meta.dir, "..", "..", "..", "test", "soap", "crm.wsdl"), "utf8");

const definitions = (inner: string, extra = "") => `<?xml version="1.0"?>
<definitions xmlns="http://schemas.xmlsoap.org/wsdl/" xmlns:s="http://schemas.xmlsoap.org/wsdl/soap/"
  xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:o="urn:orders" targetNamespace="urn:orders" ${extra}>${inner}</definitions>`;

describe("readWsdl", () => {
  test("reads both ports of the fixture: version, address, soapAction, element, namespace, element form", () => {
    const wsdl = readWsdl(CRM_WSDL);
    expect(wsdl.operations).toEqual(["CreateCustomer", "GetCustomer"]);
    expect(wsdl.ports).toEqual([
      {
        service: "CustomerService",
        port: "CustomerServiceSoap11",
        binding: "CustomerSoap11Binding",
        version: "1.1",
        url: "http://crm.example.invalid/crm/soap11",
      },
      {
        service: "CustomerService",
        port: "CustomerServiceSoap12",
        binding: "CustomerSoap12Binding",
        version: "1.2",
        url: "http://crm.example.invalid/crm/soap12",
      },
    ]);
    expect(wsdl.lookup("CreateCustomer")).toEqual([
      {
        operation: "CreateCustomer",
        service: "CustomerService",
        port: "CustomerServiceSoap11",
        binding: "CustomerSoap11Binding",
        version: "1.1",
        url: "http://crm.example.invalid/crm/soap11",
        soapAction: "urn:example:crm/CreateCustomer",
        style: "document",
        use: "literal",
        element: "CreateCustomer",
        namespace: "urn:example:crm",
        elementForm: "qualified",
      },
      expect.objectContaining({
        port: "CustomerServiceSoap12",
        version: "1.2",
        url: "http://crm.example.invalid/crm/soap12",
      }),
    ]);
    expect(wsdl.lookup("DeleteCustomer")).toEqual([]);
  });

  test("document style: the body element is the input part's element, which may differ from the operation", () => {
    const wsdl = readWsdl(
      definitions(`
      <types><xs:schema targetNamespace="urn:orders:types"><xs:element name="PlaceOrderRequest"/></xs:schema></types>
      <message name="In"><part name="body" element="t:PlaceOrderRequest" xmlns:t="urn:orders:types"/></message>
      <portType name="P"><operation name="PlaceOrder"><input message="o:In"/></operation></portType>
      <binding name="B" type="o:P"><s:binding/><operation name="PlaceOrder"><s:operation/><input><s:body use="literal"/></input></operation></binding>
      <service name="S"><port name="Port" binding="o:B"><s:address location="http://erp/orders"/></port></service>`),
    );
    expect(wsdl.lookup("PlaceOrder")[0]).toMatchObject({
      element: "PlaceOrderRequest",
      namespace: "urn:orders:types",
      // XML Schema's default when elementFormDefault is absent
      elementForm: "unqualified",
      soapAction: undefined,
      style: "document",
    });
  });

  test("rpc style: the operation's name in soap:body's namespace, unqualified parts", () => {
    const wsdl = readWsdl(
      definitions(`
      <message name="In"><part name="id" type="xs:string"/></message>
      <portType name="P"><operation name="Cancel"><input message="o:In"/></operation></portType>
      <binding name="B" type="o:P"><s:binding style="rpc"/><operation name="Cancel"><s:operation soapAction="cancel"/>
        <input><s:body use="literal" namespace="urn:orders:rpc"/></input></operation></binding>
      <service name="S"><port name="Port" binding="o:B"><s:address location="http://erp/rpc"/></port></service>`),
    );
    expect(wsdl.lookup("Cancel")[0]).toMatchObject({
      style: "rpc",
      element: "Cancel",
      namespace: "urn:orders:rpc",
      elementForm: "unqualified",
      soapAction: "cancel",
    });
  });

  test("HTTP bindings are not SOAP ports", () => {
    const wsdl = readWsdl(
      definitions(
        `<portType name="P"><operation name="Get"/></portType>
        <binding name="H" type="o:P"><http:binding verb="GET"/><operation name="Get"/></binding>
        <service name="S"><port name="HttpPort" binding="o:H"><http:address location="http://erp/"/></port></service>`,
        'xmlns:http="http://schemas.xmlsoap.org/wsdl/http/"',
      ),
    );
    expect(wsdl.ports).toEqual([]);
    expect(wsdl.operations).toEqual([]);
  });

  test("what is not a usable WSDL 1.1 says so", () => {
    expect(() => readWsdl("not xml")).toThrow(WsdlError);
    expect(() => readWsdl('<description xmlns="http://www.w3.org/ns/wsdl"/>')).toThrow("WSDL 2.0 is not supported");
    expect(() => readWsdl("<definitions/>")).toThrow("not a WSDL 1.1 document");
    expect(() => readWsdl(CRM_WSDL.slice(0, 2000))).toThrow("not well-formed XML");
  });
});
