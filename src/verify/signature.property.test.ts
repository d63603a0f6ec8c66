import { describe, expect, test } from "bun:test";
import { createHmac, generateKeyPairSync, sign } from "node:crypto";
import fc from "fast-check";
import { staticKeySource } from "./key-source.ts";
import { parseHmacSecret } from "./keys.ts";
import { type SignatureVerifierOptions, verifySignature } from "./signature.ts";

/**
 * Properties of verification over generated input: nothing throws, nothing unsigned is accepted,
 * and any change to a signed call (body, id, timestamp) breaks the signature.
 */
const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const hmacKey = parseHmacSecret(SECRET);
const { privateKey, publicKey } = generateKeyPairSync("ed25519");
const NOW_SECONDS = 1_700_000_000;
const options: SignatureVerifierOptions = {
  hmacSecrets: [hmacKey],
  keySource: staticKeySource(publicKey),
  toleranceMs: 300_000,
  now: () => NOW_SECONDS * 1000,
};

/** Text a header value may hold (visible ASCII and space), so that `new Headers` accepts it. */
const headerText = (maxLength: number) =>
  fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((code) => String.fromCharCode(code)), maxLength });
const body = fc.uint8Array({ maxLength: 512 });
const webhookId = fc.oneof(
  headerText(40).filter((id) => id.trim() === id && id.length > 0),
  fc.constant("msg_2yZn3"),
);
const timestamp = fc.oneof(
  fc.integer({ min: NOW_SECONDS - 400, max: NOW_SECONDS + 400 }).map(String),
  headerText(14).filter((text) => text.trim() === text),
);
const base64 = (length: number) =>
  fc.uint8Array({ minLength: length, maxLength: length }).map((bytes) => Buffer.from(bytes).toString("base64"));
/** Signature headers that look right (right schemes, right lengths) but are not signatures of anything. */
const forgedSignatureHeader = fc
  .array(
    fc.oneof(
      base64(32).map((s) => `v1,${s}`),
      base64(64).map((s) => `v1a,${s}`),
      headerText(30),
    ),
    { maxLength: 10 },
  )
  .map((tokens) => tokens.join(" "));

const hmacSignature = (id: string, ts: string, bytes: Uint8Array) =>
  createHmac("sha256", hmacKey)
    .update(Buffer.concat([Buffer.from(`${id}.${ts}.`), bytes]))
    .digest("base64");
const ed25519Signature = (id: string, ts: string, bytes: Uint8Array) =>
  sign(null, Buffer.concat([Buffer.from(`${id}.${ts}.`), bytes]), privateKey).toString("base64");

function call(id: string, ts: string, signature: string, bytes: Uint8Array) {
  return {
    headers: new Headers({ "webhook-id": id, "webhook-timestamp": ts, "webhook-signature": signature }),
    body: bytes,
  };
}

describe("verifySignature properties", () => {
  test("arbitrary headers and bodies never throw and are never accepted", async () => {
    await fc.assert(
      fc.asyncProperty(webhookId, timestamp, forgedSignatureHeader, body, async (id, ts, signature, bytes) => {
        const result = await verifySignature(call(id, ts, signature, bytes), options);
        expect(result.ok).toBe(false);
        if (!result.ok) expect(typeof result.message).toBe("string");
      }),
      { numRuns: 300 },
    );
  });

  test("a missing header is refused whatever the others hold", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom("webhook-id", "webhook-timestamp", "webhook-signature"),
        body,
        async (missing, bytes) => {
          const ts = String(NOW_SECONDS);
          const headers = new Headers({
            "webhook-id": "msg_1",
            "webhook-timestamp": ts,
            "webhook-signature": `v1,${hmacSignature("msg_1", ts, bytes)}`,
          });
          headers.delete(missing);
          const result = await verifySignature({ headers, body: bytes }, options);
          expect(result).toMatchObject({ ok: false, reason: "missing_headers" });
        },
      ),
      { numRuns: 30 },
    );
  });

  test("a correctly signed call within the tolerance is accepted with either scheme, among any noise", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.stringMatching(/^msg_[A-Za-z0-9]{1,30}$/),
        fc.integer({ min: -299, max: 299 }),
        body,
        fc.boolean(),
        forgedSignatureHeader,
        fc.nat(),
        async (id, skew, bytes, useEd25519, noise, position) => {
          const ts = String(NOW_SECONDS + skew);
          const valid = useEd25519 ? `v1a,${ed25519Signature(id, ts, bytes)}` : `v1,${hmacSignature(id, ts, bytes)}`;
          // Every signature is checked (up to 16), so the valid one may sit anywhere among the noise.
          const tokens = noise.split(" ").filter(Boolean);
          tokens.splice(position % (tokens.length + 1), 0, valid);
          const result = await verifySignature(call(id, ts, tokens.join(" "), bytes), options);
          expect(result).toMatchObject({ ok: true, call: { webhookId: id, scheme: useEd25519 ? "v1a" : "v1" } });
        },
      ),
      { numRuns: 150 },
    );
  });

  test("changing one byte of the body, the id or the timestamp of a signed call breaks it", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.stringMatching(/^msg_[A-Za-z0-9]{1,30}$/),
        fc.uint8Array({ minLength: 1, maxLength: 256 }),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        fc.constantFrom("body", "id", "timestamp"),
        fc.boolean(),
        async (id, bytes, position, flip, what, useEd25519) => {
          const ts = String(NOW_SECONDS);
          const signature = useEd25519
            ? `v1a,${ed25519Signature(id, ts, bytes)}`
            : `v1,${hmacSignature(id, ts, bytes)}`;
          let tampered = call(id, ts, signature, bytes);
          if (what === "body") {
            const changed = Uint8Array.from(bytes);
            const index = position % changed.length;
            changed[index] = changed[index]! ^ flip;
            tampered = call(id, ts, signature, changed);
          } else if (what === "id") {
            tampered = call(`${id}x`, ts, signature, bytes);
          } else {
            tampered = call(id, String(NOW_SECONDS - 1), signature, bytes);
          }
          const result = await verifySignature(tampered, options);
          expect(result).toMatchObject({ ok: false, reason: "no_matching_signature" });
        },
      ),
      { numRuns: 200 },
    );
  });

  test("a validly signed call outside the tolerance is refused", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 301, max: 10 ** 9 }), fc.boolean(), body, async (distance, past, bytes) => {
        const ts = String(NOW_SECONDS + (past ? -distance : distance));
        const result = await verifySignature(
          call("msg_1", ts, `v1,${hmacSignature("msg_1", ts, bytes)}`, bytes),
          options,
        );
        expect(result).toMatchObject({ ok: false, reason: past ? "timestamp_too_old" : "timestamp_in_future" });
      }),
      { numRuns: 100 },
    );
  });
});
