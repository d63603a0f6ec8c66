import { describe, expect, test } from "bun:test";
import { readFixture } from "../../test/support/signing.ts";
import { staticKeySource } from "./key-source.ts";
import { KeyFormatError, parseHmacSecret, parsePublicKey } from "./keys.ts";
import { generateSigningKeyPair, newWebhookId, parseSigningKey, signWebhook } from "./sign.ts";
import { verifySignature } from "./signature.ts";

const vectors = JSON.parse(readFixture("standard-webhooks-vectors.json")) as {
  message: { webhook_id: string; webhook_timestamp: string; body: string };
  v1: { secret: string; signature: string };
  v1a: { secret_key: string; public_key: string; public_key_pem: string; signature: string };
};
const message = { id: vectors.message.webhook_id, timestamp: Number(vectors.message.webhook_timestamp) };

describe("signWebhook reproduces the known-answer vectors", () => {
  test("v1a (Ed25519) with the vector's whsk_ key", () => {
    const headers = signWebhook(vectors.message.body, {
      ...message,
      privateKey: parseSigningKey(vectors.v1a.secret_key),
    });
    expect(headers).toEqual({
      "webhook-id": vectors.message.webhook_id,
      "webhook-timestamp": vectors.message.webhook_timestamp,
      "webhook-signature": vectors.v1a.signature,
    });
  });

  test("v1 (HMAC) with the vector's whsec_ secret", () => {
    expect(signWebhook(vectors.message.body, { ...message, hmacSecret: vectors.v1.secret })["webhook-signature"]).toBe(
      vectors.v1.signature,
    );
  });

  test("both at once: two space-separated signatures", () => {
    const headers = signWebhook(vectors.message.body, {
      ...message,
      privateKey: parseSigningKey(vectors.v1a.secret_key),
      hmacSecret: vectors.v1.secret,
    });
    expect(headers["webhook-signature"]).toBe(`${vectors.v1a.signature} ${vectors.v1.signature}`);
  });
});

describe("generateSigningKeyPair", () => {
  test("the whsk_ signs what the whpk_ and the PEM verify, with a fresh id and the current time", async () => {
    const pair = generateSigningKeyPair();
    expect(pair.secretKey).toMatch(/^whsk_[A-Za-z0-9+/]{86}==$/);
    expect(pair.publicKey).toMatch(/^whpk_[A-Za-z0-9+/]{43}=$/);
    expect(pair.publicKeyPem).toStartWith("-----BEGIN PUBLIC KEY-----");
    expect(pair.privateKeyPem).toStartWith("-----BEGIN PRIVATE KEY-----");
    const body = Buffer.from('{"type":"external_integration"}');
    for (const signingKey of [pair.secretKey, pair.privateKeyPem]) {
      for (const publicKey of [pair.publicKey, pair.publicKeyPem]) {
        const headers = signWebhook(body, { privateKey: parseSigningKey(signingKey) });
        expect(headers["webhook-id"]).toMatch(/^msg_[A-Za-z0-9_-]{24}$/);
        expect(Math.abs(Number(headers["webhook-timestamp"]) - Date.now() / 1000)).toBeLessThan(5);
        const result = await verifySignature(
          { headers: new Headers(headers), body },
          { keySource: staticKeySource(parsePublicKey(publicKey)), toleranceMs: 60_000 },
        );
        expect(result.ok).toBe(true);
      }
    }
  });

  test("two pairs and two ids differ", () => {
    expect(generateSigningKeyPair().secretKey).not.toBe(generateSigningKeyPair().secretKey);
    expect(newWebhookId()).not.toBe(newWebhookId());
  });
});

describe("parseSigningKey refuses what is not an Ed25519 private key", () => {
  test.each([
    ["a public key", vectors.v1a.public_key, "expected a whsk_ key or a PEM"],
    ["whsk_ that is not base64", "whsk_not base64!", "must be followed by base64"],
    ["whsk_ of the wrong length", `whsk_${Buffer.alloc(40).toString("base64")}`, "must hold 64 bytes"],
    [
      "whsk_ whose public half belongs to another key",
      `whsk_${Buffer.concat([Buffer.alloc(32, 1), Buffer.alloc(32, 2)]).toString("base64")}`,
      "does not belong",
    ],
    ["a public key PEM", vectors.v1a.public_key_pem, "PEM is not a valid private key"],
  ])("%s", (_what, text, message) => {
    expect(() => parseSigningKey(text)).toThrow(KeyFormatError);
    expect(() => parseSigningKey(text)).toThrow(message);
  });

  test("signing with neither key nor secret is refused; a bad secret too", () => {
    expect(() => signWebhook("{}", {})).toThrow(KeyFormatError);
    expect(() => signWebhook("{}", { hmacSecret: "whsec_***" })).toThrow("base64");
    expect(parseHmacSecret(vectors.v1.secret).length).toBe(24);
  });
});
