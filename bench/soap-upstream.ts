/**
 * The legacy SOAP system under load: answers every request with one fixed SOAP 1.1 envelope. The `soap`
 * package's server would be the bottleneck here, so this stands in for a fast SOAP backend.
 * Prints `{"port": N}` once listening.
 */
const ENVELOPE = `<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:crm="urn:crm">
  <soap:Body><crm:CreateCustomerResponse><crm:CustomerRef>CUST-0001</crm:CustomerRef></crm:CreateCustomerResponse></soap:Body>
</soap:Envelope>`;

const server = Bun.serve({
  hostname: "127.0.0.1",
  port: Number(process.env.PORT ?? 0),
  async fetch(request) {
    await request.arrayBuffer();
    return new Response(ENVELOPE, { headers: { "content-type": "text/xml; charset=utf-8" } });
  },
});
console.log(JSON.stringify({ port: server.port }));

export {};
