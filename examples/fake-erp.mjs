#!/usr/bin/env node
/**
 * A stand-in ERP for trying a route on one machine: `node examples/fake-erp.mjs` listens on
 * 127.0.0.1:8081 (ERP_PORT changes it), prints one line for every call it gets (method, path, the
 * Authorization header's scheme, the JSON body) and answers 200 {"id": "E-1", "success": true}, the
 * way the example routes expect an ERP to answer. Only the standard library: nothing to install.
 */
import { createServer } from "node:http";

const port = Number(process.env.ERP_PORT ?? 8081);
let calls = 0;

const server = createServer((request, response) => {
  const chunks = [];
  request.on("data", (chunk) => chunks.push(chunk));
  request.on("end", () => {
    calls++;
    const body = Buffer.concat(chunks).toString("utf8");
    // The token itself is not printed: a log line is no place for it.
    const scheme = (request.headers.authorization ?? "").split(" ")[0] || "none";
    process.stdout.write(`fake ERP: ${request.method} ${request.url} authorization=${scheme} ${body}\n`);
    response.writeHead(200, { "content-type": "application/json" });
    response.end(JSON.stringify({ id: `E-${calls}`, success: true }));
  });
});

server.listen(port, "127.0.0.1", () => {
  process.stdout.write(`fake ERP listening on http://127.0.0.1:${port} (Ctrl-C stops it)\n`);
});
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => server.close(() => process.exit(0)));
