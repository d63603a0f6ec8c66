import { describe, expect, test } from "bun:test";
import { generateKeyPairSync, randomBytes, sign, verify } from "node:crypto";
import { generateTestKeyPair, readFixture } from "../../test/support/signing.ts";
import { KeyFormatError, parseHmacSecret, parsePublicKey } from "./keys.ts";

const vectors = JSON.parse(readFixture("standard-webhooks-vectors.json")) as any;
/** The raw 32 bytes of the vector's public key, as base64url (the JWK `x`). */
const VECTOR_X = Buffer.from(vectors.v1a.public_key.slice("whpk_".length), "base64").toString("base64url");

function rawX(key: ReturnType<typeof parsePublicKey>): string | undefined {
  return key.export({ format: "jwk" }).x;
}

function expectKeyFormatError(run: () => unknown, messagePart?: RegExp): void {
  let thrown: unknown;
  try {
    run();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(KeyFormatError);
  expect((thrown as Error).name).toBe("KeyFormatError");
  if (messagePart) expect((thrown as Error).message).toMatch(messagePart);
}

describe("parsePublicKey", () => {
  test("reads a PEM (SPKI) Ed25519 key", () => {
    const key = parsePublicKey(vectors.v1a.public_key_pem);
    expect(key.type).toBe("public");
    expect(key.asymmetricKeyType).toBe("ed25519");
    expect(rawX(key)).toBe(VECTOR_X);
  });

  test("reads a whpk_ key", () => {
    const key = parsePublicKey(vectors.v1a.public_key);
    expect(key.type).toBe("public");
    expect(key.asymmetricKeyType).toBe("ed25519");
    expect(rawX(key)).toBe(VECTOR_X);
  });

  test("reads epilot's JSON key document", () => {
    const key = parsePublicKey(readFixture("epilot-public-key.json"));
    expect(key.asymmetricKeyType).toBe("ed25519");
    expect(rawX(key)).toBe(VECTOR_X);
  });

  test('reads the document as epilot\'s webhook pages show it, {"publicKey": ...}; public_key wins when both are there', () => {
    const pair = generateTestKeyPair();
    const other = generateTestKeyPair();
    expect(parsePublicKey(JSON.stringify({ publicKey: pair.publicKeyPem })).equals(parsePublicKey(pair.whpk))).toBe(
      true,
    );
    const both = JSON.stringify({ public_key: pair.publicKeyPem, publicKey: other.publicKeyPem });
    expect(parsePublicKey(both).equals(parsePublicKey(pair.whpk))).toBe(true);
  });

  test("all three forms of a generated key are the same key and verify its signatures", () => {
    const pair = generateTestKeyPair();
    const fromPem = parsePublicKey(pair.publicKeyPem);
    const fromWhpk = parsePublicKey(pair.whpk);
    const fromDocument = parsePublicKey(pair.keyDocument);
    expect(fromPem.equals(fromWhpk)).toBe(true);
    expect(fromPem.equals(fromDocument)).toBe(true);
    const message = Buffer.from("msg.1.{}");
    const signature = sign(null, message, pair.privateKey);
    for (const key of [fromPem, fromWhpk, fromDocument]) expect(verify(null, message, key, signature)).toBe(true);
    expect(fromPem.equals(parsePublicKey(vectors.v1a.public_key))).toBe(false);
  });

  test("ignores whitespace and newlines around each form", () => {
    for (const text of [
      `\n  ${vectors.v1a.public_key_pem}\n\n`,
      `  ${vectors.v1a.public_key}\n`,
      `\r\n\t${readFixture("epilot-public-key.json")}  \n`,
    ]) {
      expect(rawX(parsePublicKey(text))).toBe(VECTOR_X);
    }
  });

  test("rejects an RSA PEM, naming its type", () => {
    const { publicKey } = generateKeyPairSync("rsa", { modulusLength: 1024 });
    const pem = publicKey.export({ type: "spki", format: "pem" }).toString();
    expectKeyFormatError(() => parsePublicKey(pem), /rsa/);
  });

  test("rejects an RSA PEM inside epilot's JSON document", () => {
    const { publicKey } = generateKeyPairSync("rsa", { modulusLength: 1024 });
    const pem = publicKey.export({ type: "spki", format: "pem" }).toString();
    expectKeyFormatError(() => parsePublicKey(JSON.stringify({ public_key: pem })), /not ed25519/);
  });

  test("rejects a PEM whose content is not a key", () => {
    expectKeyFormatError(() => parsePublicKey("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"), /PEM/);
  });

  test("rejects a whpk_ key of the wrong length", () => {
    expectKeyFormatError(() => parsePublicKey(`whpk_${randomBytes(31).toString("base64")}`), /32 bytes/);
    expectKeyFormatError(() => parsePublicKey(`whpk_${randomBytes(33).toString("base64")}`), /32 bytes/);
    expectKeyFormatError(() => parsePublicKey("whpk_"), /32 bytes/);
  });

  test("rejects a JSON document without a public_key string", () => {
    expectKeyFormatError(() => parsePublicKey(JSON.stringify({ key: vectors.v1a.public_key_pem })), /public_key/);
    expectKeyFormatError(() => parsePublicKey(JSON.stringify({ public_key: 42 })), /public_key/);
    expectKeyFormatError(() => parsePublicKey("{}"), /public_key/);
  });

  test("rejects a document that starts like JSON but is not", () => {
    expectKeyFormatError(() => parsePublicKey('{"public_key": '), /not valid JSON/);
  });

  test("rejects random text", () => {
    for (const text of [
      "hello world",
      "",
      "   ",
      randomBytes(32).toString("base64"),
      "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    ]) {
      expectKeyFormatError(() => parsePublicKey(text), /expected a PEM public key/);
    }
  });
});

describe("parseHmacSecret", () => {
  const secretBytes = Buffer.from("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "base64");

  test("reads a whsec_ secret as its base64-decoded bytes", () => {
    const bytes = parseHmacSecret(vectors.v1.secret);
    expect(bytes.length).toBe(24);
    expect(bytes.equals(secretBytes)).toBe(true);
  });

  test("reads the same secret without the whsec_ prefix, and with whitespace around", () => {
    expect(parseHmacSecret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").equals(secretBytes)).toBe(true);
    expect(parseHmacSecret("  whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n").equals(secretBytes)).toBe(true);
  });

  test("accepts padded base64", () => {
    const raw = randomBytes(31);
    const encoded = raw.toString("base64");
    expect(encoded.endsWith("=")).toBe(true);
    expect(parseHmacSecret(`whsec_${encoded}`).equals(raw)).toBe(true);
  });

  test("rejects a secret that is not base64", () => {
    for (const text of [
      "whsec_not base64 at all!",
      "whsec_abc$def0123456789abcdefghij",
      "plain-text-password-1234567890",
      "whsec_",
    ]) {
      expectKeyFormatError(() => parseHmacSecret(text), /base64/);
    }
  });

  test("rejects a secret shorter than 16 bytes", () => {
    expectKeyFormatError(() => parseHmacSecret(`whsec_${randomBytes(15).toString("base64")}`), /16 bytes/);
    expectKeyFormatError(() => parseHmacSecret("whsec_c2hvcnQ="), /16 bytes/);
    expect(parseHmacSecret(`whsec_${randomBytes(16).toString("base64")}`).length).toBe(16);
  });
});
