/**
 * The legacy HTTP system under load: answers every request 200 `{"ok":true}` after reading the body.
 * Prints `{"port": N}` once listening (port 0 by default: the orchestrator reads it).
 */
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: Number(process.env.PORT ?? 0),
  async fetch(request) {
    await request.arrayBuffer();
    return new Response('{"ok":true}', { headers: { "content-type": "application/json" } });
  },
});
console.log(JSON.stringify({ port: server.port }));

export {};
