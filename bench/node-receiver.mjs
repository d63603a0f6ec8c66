/**
 * What an integrator writes today: a node:http receiver that verifies epilot's v1a signature the way
 * epilot's app examples do (crypto.verify with the cached PEM string), parses, and forwards with fetch.
 * Run with `node` (v20+). Env: PUBLIC_KEY_PEM, UPSTREAM_URL. Prints `{"port": N}` once listening.
 */
import { verify } from "node:crypto";
import { createServer } from "node:http";

const publicKeyPem = process.env.PUBLIC_KEY_PEM;
const upstream = process.env.UPSTREAM_URL;

const server = createServer(async (req, res) => {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const body = Buffer.concat(chunks).toString("utf8");
  const id = req.headers["webhook-id"];
  const ts = req.headers["webhook-timestamp"];
  const signature = String(req.headers["webhook-signature"] ?? "")
    .split(" ")
    .find((s) => s.startsWith("v1a,"));
  if (!signature || Math.abs(Date.now() / 1000 - Number(ts)) > 300) {
    res.writeHead(401).end("{}");
    return;
  }
  const valid = verify(
    null,
    Buffer.from(`${id}.${ts}.${body}`),
    publicKeyPem,
    Buffer.from(signature.slice(4), "base64"),
  );
  if (!valid) {
    res.writeHead(401).end("{}");
    return;
  }
  try {
    const { data } = JSON.parse(body);
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
    res.writeHead(answer.ok ? 200 : 502, { "content-type": "application/json" }).end("{}");
  } catch {
    res.writeHead(502).end("{}");
  }
});
server.keepAliveTimeout = 30_000;
server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () =>
  console.log(JSON.stringify({ port: server.address().port })),
);
