import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { loadConfigText } from "../../src/config/load.ts";
import { compileConfig } from "../../src/gateway/compile.ts";
import { silentLogger } from "../../src/log/logger.ts";
import { type InProcessGateway, startInProcessGateway, tempDir } from "../support/gateway.ts";
import { type RecordingServer, startRecordingServer } from "../support/recording-server.ts";
import { fixturePayload, generateTestKeyPair, signedHeaders, uniqueWebhookId } from "../support/signing.ts";

/**
 * Hostile and oversized SOAP answers through the whole gateway: a million small elements, deep
 * nesting, a DOCTYPE inside the Body. Each is a clear 502 that shows nothing of the answer, costs
 * little memory and time, and leaves the gateway answering other calls and /healthz meanwhile.
 */

const keys = generateTestKeyPair();
const SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/";
const envelope = (body: string) =>
  `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="${SOAP11}"><soap:Body>${body}</soap:Body></soap:Envelope>`;
/** A 9 MB answer of a million small elements, as the red team sent it. */
const MILLION = envelope(`<ListResponse>${"<v>12</v>".repeat(1_000_000)}</ListResponse>`);

let legacy: RecordingServer;
let gateway: InProcessGateway;
let answer = "";

const route = (name: string, extra = "") => `
  - name: ${name}
    transform: '{ "Id": data.entity.customer_number }'
    target:
      type: soap
      url: ${"${LEGACY}"}/${name}
      operation: List
      namespace: urn:example:list
${extra}
    response:
      transform: '{ "first": body.ListResponse.v[0] }'`;

beforeAll(async () => {
  legacy = await startRecordingServer(() => ({ headers: { "content-type": "text/xml; charset=utf-8" }, body: answer }));
  gateway = await startInProcessGateway(
    `
server: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
verification: { public_key: "${keys.whpk}" }
routes:${route("big")}${route("small-limit", "      max_response_elements: 100\n      max_response_depth: 8")}
`,
    { LEGACY: legacy.url },
  );
});
afterAll(async () => {
  await gateway?.stop();
  await legacy?.close();
});

async function call(route: string) {
  const body = JSON.stringify(fixturePayload());
  const response = await fetch(`${gateway.url}/actions/${route}`, {
    method: "POST",
    body,
    headers: signedHeaders(body, { id: uniqueWebhookId(), privateKey: keys.privateKey }),
  });
  return { status: response.status, text: await response.text() };
}

describe("answers past the element and depth limits", () => {
  test("three million-element answers at once: 502 each within a second, /healthz answered all along", async () => {
    answer = MILLION;
    expect(answer.length).toBeGreaterThan(9_000_000);
    let slowestHealthMs = 0;
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const started = performance.now();
        expect((await fetch(`${gateway.adminUrl}/healthz`)).status).toBe(200);
        slowestHealthMs = Math.max(slowestHealthMs, performance.now() - started);
        await Bun.sleep(20);
      }
    })();
    const started = performance.now();
    const answers = await Promise.all([call("big"), call("big"), call("big")]);
    const elapsedMs = performance.now() - started;
    polling = false;
    await poller;

    for (const { status, text } of answers) {
      expect(status).toBe(502);
      const reason = (JSON.parse(text) as any).error_output.error_reason;
      expect(reason).toBe(
        "The target of route big failed: the SOAP answer has more than 50000 elements and attributes (HTTP 200)",
      );
      // Nothing of the answer itself reaches epilot.
      expect(text).not.toContain("<v>");
    }
    // Before the limit: 1.2 GB and 2.4 s for one such answer, /healthz waiting seconds.
    expect(elapsedMs).toBeLessThan(3_000);
    expect(slowestHealthMs).toBeLessThan(1_000);
  });

  test("answers within the limit are read as before", async () => {
    answer = envelope(`<ListResponse>${"<v>12</v>".repeat(40_000)}</ListResponse>`);
    expect(await call("big")).toEqual({ status: 200, text: '{"first":"12"}' });
  });

  test("max_response_elements and max_response_depth are the route's own", async () => {
    answer = envelope(`<ListResponse>${"<v>1</v>".repeat(99)}</ListResponse>`);
    expect((JSON.parse((await call("small-limit")).text) as any).error_output.error_reason).toBe(
      "The target of route small-limit failed: the SOAP answer has more than 100 elements and attributes (HTTP 200)",
    );
    answer = envelope(`<ListResponse>${"<a>".repeat(6)}1${"</a>".repeat(6)}</ListResponse>`);
    expect((JSON.parse((await call("small-limit")).text) as any).error_output.error_reason).toBe(
      "The target of route small-limit failed: the SOAP answer nests elements deeper than 8 levels (HTTP 200)",
    );
    answer = envelope(`<ListResponse>${"<a>".repeat(4)}1${"</a>".repeat(4)}<v>ok</v></ListResponse>`);
    expect((await call("small-limit")).status).toBe(200);
  });
});

describe("a DOCTYPE anywhere", () => {
  const BOMB = '<!DOCTYPE r [<!ENTITY a "internal-secret-0123456789"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>';

  test("inside the Body of an answer: 502, the entities never expanded or shown", async () => {
    answer = envelope(`${BOMB}<ListResponse><v>&b;</v></ListResponse>`);
    const { status, text } = await call("big");
    expect(status).toBe(502);
    expect((JSON.parse(text) as any).error_output.error_reason).toBe(
      "The target of route big failed: the answer holds a DOCTYPE, which SOAP forbids (HTTP 200)",
    );
    expect(text).not.toContain("internal-secret");
  });

  test("inside the Envelope of an envelope template: a config error at envelope_template", () => {
    const template = `<soapenv:Envelope xmlns:soapenv="${SOAP11}"><soapenv:Body>${BOMB}<x>&b;</x></soapenv:Body></soapenv:Envelope>`;
    const dir = tempDir({ "t.xml": template });
    const file = join(dir, "config.yaml");
    const yaml = `verification:\n  public_key: "${keys.whpk}"\nroutes:\n  - name: t\n    target:\n      type: soap\n      url: http://127.0.0.1:1/ws\n      operation: X\n      envelope_template: ./t.xml\n`;
    expect(() => compileConfig(loadConfigText(file, yaml, {}), { logger: silentLogger, userAgent: "test" })).toThrow(
      `${file}:9:26 routes[0] (t).target.envelope_template: ./t.xml: a DOCTYPE is not allowed`,
    );
  });
});
