import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import fc from "fast-check";
import { type InProcessGateway, startInProcessGateway } from "../../test/support/gateway.ts";
import { type RecordingServer, startRecordingServer } from "../../test/support/recording-server.ts";
import { fixturePayload, generateTestKeyPair, signedHeaders } from "../../test/support/signing.ts";

/**
 * The gateway's promise, checked over generated calls against a real gateway and a recording legacy
 * system: whatever the headers, body and signatures, the legacy system receives a call only when its
 * signature was valid, and every answer is a defined status with epilot's error shape.
 */
const HMAC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const hmacKey = Buffer.from(HMAC_SECRET.slice("whsec_".length), "base64");
const keys = generateTestKeyPair();
let legacy: RecordingServer;
let gateway: InProcessGateway;

beforeAll(async () => {
  legacy = await startRecordingServer();
  gateway = await startInProcessGateway(
    `
server: { host: 127.0.0.1, port: 0, max_body_size: 16kb }
verification: { secrets: ["${HMAC_SECRET}"], public_key: ${JSON.stringify(keys.whpk)} }
routes:
  - name: erp
    target: { type: http, url: "${"${LEGACY_URL}"}/erp" }
`,
    { LEGACY_URL: legacy.url },
  );
});
afterAll(async () => {
  await gateway.stop();
  await legacy.close();
});

const headerText = (maxLength: number) =>
  fc.string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((code) => String.fromCharCode(code)), maxLength });
const headerName = fc.stringMatching(/^x-[a-z0-9-]{1,20}$/);
const nowSeconds = () => Math.floor(Date.now() / 1000);

/** How a generated call is signed: not at all, with a forgery, or correctly (then maybe tampered with). */
const signing = fc.oneof(
  fc.constant({ kind: "none" as const }),
  fc.record({ kind: fc.constant("forged" as const), signature: headerText(120) }),
  fc.record({ kind: fc.constant("valid" as const), tamper: fc.constantFrom("none", "body", "id", "scheme") }),
);
const body = fc.oneof(
  fc.constant(JSON.stringify(fixturePayload())),
  fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.stringify(value)),
  fc.string({ maxLength: 200 }),
);

let counter = 0;

describe("nothing unverified is ever forwarded", () => {
  test("generated calls: the legacy system sees exactly the validly signed ones", async () => {
    await fc.assert(
      fc.asyncProperty(
        body,
        signing,
        fc.dictionary(headerName, headerText(40), { maxKeys: 5 }),
        fc.integer({ min: -900, max: 900 }),
        async (text, how, extra, skew) => {
          const id = `msg_prop_${process.pid}_${counter++}`;
          const timestamp = nowSeconds() + skew;
          const headers: Record<string, string> = { ...extra, "content-type": "application/json" };
          let sent = text;
          if (how.kind !== "none") {
            headers["webhook-id"] = id;
            headers["webhook-timestamp"] = String(timestamp);
          }
          if (how.kind === "forged") headers["webhook-signature"] = how.signature;
          if (how.kind === "valid") {
            const signed = signedHeaders(text, { id, timestamp, hmacSecret: HMAC_SECRET });
            headers["webhook-signature"] = signed["webhook-signature"]!;
            if (how.tamper === "body") sent = `${text} `;
            if (how.tamper === "id") headers["webhook-id"] = `${id}_`;
            // A valid HMAC presented as an Ed25519 signature must not pass either check.
            if (how.tamper === "scheme")
              headers["webhook-signature"] = headers["webhook-signature"]!.replace(/^v1,/, "v1a,");
          }

          const before = legacy.requests.length;
          const response = await fetch(`${gateway.url}/actions/erp`, { method: "POST", body: sent, headers });
          const answer = (await response.json()) as Record<string, any>;
          const forwarded = legacy.requests.length - before;

          const content = Buffer.concat([
            Buffer.from(`${headers["webhook-id"]}.${headers["webhook-timestamp"]}.`),
            Buffer.from(sent),
          ]);
          const expected = `v1,${createHmac("sha256", hmacKey).update(content).digest("base64")}`;
          const genuinelySigned =
            headers["webhook-signature"]?.split(" ").includes(expected) === true &&
            Math.abs(timestamp - nowSeconds()) <= 300 &&
            how.kind === "valid";

          if (!genuinelySigned) {
            expect(forwarded).toBe(0);
            expect(response.status).toBe(401);
          } else {
            expect(forwarded).toBeLessThanOrEqual(1);
            expect([200, 400]).toContain(response.status);
          }
          if (response.status >= 400) expect(answer.error_output.error_code).toBe("CUSTOM_ACTION_ERROR");
          if (forwarded === 1) expect(response.status).toBe(200);
        },
      ),
      { numRuns: 120 },
    );
  });
});
