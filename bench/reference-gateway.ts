/**
 * The practical limit on one Bun event loop: verify Ed25519 with a cached key, parse, pick three fields,
 * forward with fetch. No replay guard, no config, no logging: what actiongate is measured against.
 * Env: PUBLIC_KEY_PEM, UPSTREAM_URL. Prints `{"port": N}` once listening.
 */
import { createPublicKey, verify } from "node:crypto";

const key = createPublicKey(process.env.PUBLIC_KEY_PEM!);
const upstream = process.env.UPSTREAM_URL!;
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: Number(process.env.PORT ?? 0),
  async fetch(request) {
    const body = Buffer.from(await request.arrayBuffer());
    const id = request.headers.get("webhook-id") ?? "";
    const ts = request.headers.get("webhook-timestamp") ?? "";
    const signature = (request.headers.get("webhook-signature") ?? "").split(" ").find((s) => s.startsWith("v1a,"));
    if (!signature || Math.abs(Date.now() / 1000 - Number(ts)) > 300) return new Response("{}", { status: 401 });
    const content = Buffer.concat([Buffer.from(`${id}.${ts}.`), body]);
    if (!verify(null, content, key, Buffer.from(signature.slice(4), "base64")))
      return new Response("{}", { status: 401 });
    const { data } = JSON.parse(body.toString("utf8")) as any;
    const forwarded = {
      contract: data.entity.contract_number,
      status: data.entity.status,
      customer: data.entity.customer_number,
    };
    const answer = await fetch(upstream, {
      method: "POST",
      body: JSON.stringify(forwarded),
      headers: { "content-type": "application/json", "idempotency-key": id },
    });
    await answer.arrayBuffer();
    return new Response("{}", { status: answer.ok ? 200 : 502, headers: { "content-type": "application/json" } });
  },
});
console.log(JSON.stringify({ port: server.port }));
