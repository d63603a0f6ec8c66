/**
 * A collector under load: takes every OTLP/HTTP export (`POST /v1/traces`, either encoding) after
 * reading its body and answers 200, as an OpenTelemetry Collector does when it keeps up.
 * `GET /count` tells how many exports and bytes it took. Prints `{"port": N}` once listening.
 */
let exports = 0;
let bytes = 0;
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: Number(process.env.PORT ?? 0),
  async fetch(request) {
    if (request.method === "GET") return Response.json({ exports, bytes });
    bytes += (await request.arrayBuffer()).byteLength;
    exports++;
    const protobuf = request.headers.get("content-type")?.startsWith("application/x-protobuf");
    return protobuf
      ? new Response(new Uint8Array(0), { headers: { "content-type": "application/x-protobuf" } })
      : Response.json({});
  },
});
console.log(JSON.stringify({ port: server.port }));

export {};
