import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { outboundMessageOf } from "../../test/support/calls.ts";
import { generateTestCertificates, type TestCertificates } from "../../test/support/certs.ts";
import { tempDir } from "../../test/support/gateway.ts";
import { loadConfigText } from "../config/load.ts";
import { compileConfig } from "../gateway/compile.ts";
import { ConfigError } from "../kit/config-errors.ts";
import { createLogger, silentLogger } from "../log/logger.ts";
import { createHttpTarget, httpTargetSchema } from "./http.ts";
import type { OutboundMessage } from "./types.ts";

/**
 * TLS towards legacy systems against a real node:https server that requires a client certificate
 * signed by the test CA, and the load-time checks of every PEM file named in the config.
 */
let certs: TestCertificates;
let server: Server;
let url: string;
const received: string[] = [];
let message: OutboundMessage;
const context = () => ({ configDir: certs.dir, logger: silentLogger, userAgent: "actiongate/test" });

beforeAll(async () => {
  message = await outboundMessageOf({ body: { a: 1 }, payload: {} }, "msg_tls");
  certs = generateTestCertificates();
  server = createServer(
    { cert: certs.serverCert, key: certs.serverKey, ca: certs.ca, requestCert: true, rejectUnauthorized: true },
    (req, res) => {
      let body = "";
      req.on("data", (chunk) => (body += chunk));
      req.on("end", () => {
        received.push(body);
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ ok: true }));
      });
    },
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/erp`;
});
afterAll(() => {
  // Keep-alive connections from the targets' pools would hold close() open.
  server.closeAllConnections();
  server.close();
});

describe("target tls (mutual TLS with a private CA)", () => {
  test("with the CA and a client certificate the call is delivered", async () => {
    const target = createHttpTarget(
      httpTargetSchema.parse({
        type: "http",
        url,
        tls: { ca_file: "ca.pem", cert_file: "client.pem", key_file: "client-key.pem" },
      }),
      context(),
    );
    const outcome = await target.deliver(message);
    await target.close();
    expect(outcome).toMatchObject({ kind: "delivered", response: { status: 200, body: { ok: true } } });
    expect(received.at(-1)).toBe('{"a":1}');
  });

  test("without a client certificate the target refuses the handshake: unreachable", async () => {
    const count = received.length;
    const target = createHttpTarget(
      httpTargetSchema.parse({ type: "http", url, timeout: "3s", tls: { ca_file: "ca.pem" } }),
      context(),
    );
    const outcome = await target.deliver(message);
    await target.close();
    expect(outcome.kind).toBe("unreachable");
    expect(received.length).toBe(count);
  });

  test("a CA that did not sign the target's certificate fails with a TLS reason that does not name the host", async () => {
    const target = createHttpTarget(
      httpTargetSchema.parse({
        type: "http",
        url,
        tls: { ca_file: certs.otherCaFile, cert_file: "client.pem", key_file: "client-key.pem" },
      }),
      context(),
    );
    const outcome = await target.deliver(message);
    await target.close();
    expect(outcome).toMatchObject({ kind: "unreachable", reason: "TLS handshake failed" });
    // The reason (what epilot may see) names no host; only the operator's `url` does.
    const { url: sentTo, ...shown } = outcome as Extract<typeof outcome, { kind: "unreachable" }>;
    expect(JSON.stringify(shown)).not.toContain("127.0.0.1");
    expect(sentTo?.hostname).toBe("127.0.0.1");
  });

  test("reject_unauthorized: false accepts the untrusted certificate (test rigs)", async () => {
    const target = createHttpTarget(
      httpTargetSchema.parse({
        type: "http",
        url,
        tls: { cert_file: "client.pem", key_file: "client-key.pem", reject_unauthorized: false },
      }),
      context(),
    );
    const outcome = await target.deliver(message);
    await target.close();
    expect(outcome.kind).toBe("delivered");
  });
});

describe("PEM files are checked at load, with the key path", () => {
  const compile = (yaml: string, dir: string) => {
    const lines: string[] = [];
    const logger = createLogger({ sink: (line) => lines.push(line) });
    const compiled = compileConfig(loadConfigText(join(dir, "config.yaml"), yaml, {}), { logger, userAgent: "t" });
    return { compiled, lines };
  };
  const problems = (yaml: string, dir: string): string[] => {
    try {
      compile(yaml, dir).compiled.close();
    } catch (error) {
      if (error instanceof ConfigError) return error.message.split("\n");
      throw error;
    }
    return [];
  };
  const base = (server: string, tls: string) => `server: { port: 0${server} }
verification: { secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"] }
routes:
  - name: erp
    target:
      type: http
      url: https://127.0.0.1:1/erp
      tls: ${tls}
`;

  test("a missing CA file, a key that is not a key and a mismatched client pair are each reported", () => {
    const dir = tempDir({
      "ca.pem": certs.ca,
      "client.pem": certs.clientCert,
      "client-key.pem": certs.clientKey,
      "server-key.pem": certs.serverKey,
    });
    expect(problems(base("", "{ ca_file: missing.pem }"), dir)).toEqual([
      `${join(dir, "config.yaml")}:8:23 routes[0] (erp).target.tls.ca_file: file not found: missing.pem`,
    ]);
    expect(problems(base("", "{ ca_file: client-key.pem }"), dir)[0]).toEndWith(
      "routes[0] (erp).target.tls.ca_file: client-key.pem does not hold a PEM certificate",
    );
    expect(problems(base("", "{ cert_file: client.pem, key_file: ca.pem }"), dir)[0]).toEndWith(
      "routes[0] (erp).target.tls.key_file: ca.pem does not hold a PEM private key",
    );
    expect(problems(base("", "{ cert_file: client.pem, key_file: server-key.pem }"), dir)[0]).toEndWith(
      "routes[0] (erp).target.tls.key_file: is not the private key of the certificate in client.pem",
    );
  });

  test("server.tls: a missing certificate and a key of another certificate are config errors", () => {
    const dir = tempDir({
      "ca.pem": certs.ca,
      "server.pem": certs.serverCert,
      "server-key.pem": certs.serverKey,
      "client-key.pem": certs.clientKey,
    });
    const ok = "{ ca_file: ca.pem }";
    expect(problems(base(", tls: { cert_file: nope.pem, key_file: server-key.pem }", ok), dir)[0]).toEndWith(
      "server.tls.cert_file: file not found: nope.pem",
    );
    expect(problems(base(", tls: { cert_file: server.pem, key_file: client-key.pem }", ok), dir)[0]).toEndWith(
      "server.tls.key_file: is not the private key of the certificate in server.pem",
    );
    const { compiled } = compile(base(", tls: { cert_file: server.pem, key_file: server-key.pem }", ok), dir);
    expect(compiled.serverTls).toEqual({ cert: certs.serverCert, key: certs.serverKey });
    void compiled.close();
  });

  test("reject_unauthorized: false is logged as a warning naming the route", () => {
    const dir = tempDir({});
    const { compiled, lines } = compile(base("", "{ reject_unauthorized: false }"), dir);
    void compiled.close();
    const warning = lines.map((line) => JSON.parse(line) as any).find((log) => log.level === "warn");
    expect(warning).toMatchObject({ route: "erp" });
    expect(warning.msg).toContain("reject_unauthorized: false");
  });
});
