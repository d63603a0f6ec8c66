import { describe, expect, test } from "bun:test";
import { soapAnswerEnvelope } from "./answer-envelope.ts";
import { interpretAnswer, readSoapAnswer } from "./response.ts";

/** The answers route tests give SOAP targets must read back exactly as a real service's would. */
describe("soapAnswerEnvelope", () => {
  test("a body: a 1.1 and a 1.2 envelope whose Body content reads back as the JSON given", () => {
    const body = { CreateCustomerResponse: { CustomerRef: "CRM-7", Status: "created", Tag: ["a", "b"] } };
    for (const version of ["1.1", "1.2"] as const) {
      const xml = soapAnswerEnvelope(version, { body });
      expect(readSoapAnswer(xml)).toEqual({ kind: "envelope", version, body });
    }
  });

  test("no body: an empty Body, which a 200 delivers", () => {
    const xml = soapAnswerEnvelope("1.1", {});
    expect(xml).toContain("<soap:Body/>");
    expect(interpretAnswer(200, {}, xml)).toEqual({
      kind: "delivered",
      response: { status: 200, headers: {}, body: {} },
    });
  });

  test("a 1.1 fault: faultcode in the envelope's namespace, faultstring, detail; read as a rejection that is not retried", () => {
    const xml = soapAnswerEnvelope("1.1", {
      fault: { code: "Client", reason: "Customer exists", detail: { Conflict: { Message: "duplicate of CRM-7" } } },
    });
    expect(xml).toContain("<faultcode>soap:Client</faultcode><faultstring>Customer exists</faultstring>");
    expect(interpretAnswer(500, {}, xml)).toEqual({
      kind: "rejected",
      response: {
        status: 500,
        headers: {},
        body: {
          Fault: {
            faultcode: "soap:Client",
            faultstring: "Customer exists",
            detail: { Conflict: { Message: "duplicate of CRM-7" } },
          },
        },
      },
      reason: "SOAP fault Client: Customer exists",
      info: { target_status: 500, fault_code: "Client", fault_string: "Customer exists" },
      retryable: false,
    });
  });

  test("a 1.2 fault: Code/Value with a Subcode, Reason/Text; a service's own code is written as given", () => {
    const receiver = interpretAnswer(
      500,
      {},
      soapAnswerEnvelope("1.2", { fault: { code: "Receiver", reason: "CRM is busy", subcode: "Overload" } }),
    );
    expect(receiver).toMatchObject({
      kind: "rejected",
      reason: "SOAP fault Receiver/Overload: CRM is busy",
      info: { fault_code: "Receiver", fault_subcode: "Overload" },
      retryable: true,
    });
    const own = interpretAnswer(500, {}, soapAnswerEnvelope("1.2", { fault: { code: "crm:Duplicate", reason: "x" } }));
    expect(own).toMatchObject({ kind: "rejected", info: { fault_code: "Duplicate" } });
  });

  test("values are escaped: a reason holding markup stays text", () => {
    const xml = soapAnswerEnvelope("1.1", { fault: { code: "Server", reason: "<b>&</b>" } });
    expect(readSoapAnswer(xml)).toMatchObject({ fault: { code: "Server", text: "<b>&</b>" } });
  });
});
