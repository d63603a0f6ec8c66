import { createPublicKey, type KeyObject } from "node:crypto";

/** Key material that is not a usable Ed25519 public key or HMAC secret. */
export class KeyFormatError extends Error {
  override name = "KeyFormatError";
}

/**
 * Reads an Ed25519 public key in any form epilot or the Standard Webhooks tools hand out:
 * PEM (SPKI), `whpk_<base64 of the 32 raw bytes>`, or epilot's JSON document `{"public_key": "<PEM>"}`.
 * epilot's SDK reads `public_key` while its webhook pages show `{"publicKey": ...}`: both are read
 * (`public_key` first, when a document has both). The result is a `KeyObject`, imported once and
 * reused for every call.
 *
 * @example
 * parsePublicKey("whpk_1SiA4o9hyqTCpIqC5V9HUakiiaeACeqfZTInDBbOir4=");
 */
export function parsePublicKey(text: string): KeyObject {
  const trimmed = text.trim();
  if (trimmed.startsWith("{")) {
    let document: unknown;
    try {
      document = JSON.parse(trimmed);
    } catch {
      throw new KeyFormatError("key document is not valid JSON");
    }
    const fields = (document ?? {}) as { public_key?: unknown; publicKey?: unknown };
    const inner = typeof fields.public_key === "string" ? fields.public_key : fields.publicKey;
    if (typeof inner !== "string") throw new KeyFormatError('key document has no "public_key" (or "publicKey") string');
    return parsePublicKey(inner);
  }
  if (trimmed.startsWith("whpk_")) {
    const raw = Buffer.from(trimmed.slice("whpk_".length), "base64");
    if (raw.length !== 32) throw new KeyFormatError("whpk_ key must hold 32 bytes of base64");
    return createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: raw.toString("base64url") }, format: "jwk" });
  }
  if (trimmed.startsWith("-----BEGIN")) {
    let key: KeyObject;
    try {
      key = createPublicKey({ key: trimmed, format: "pem" });
    } catch {
      throw new KeyFormatError("PEM is not a valid public key");
    }
    if (key.asymmetricKeyType !== "ed25519") throw new KeyFormatError(`key is ${key.asymmetricKeyType}, not ed25519`);
    return key;
  }
  throw new KeyFormatError("expected a PEM public key, a whpk_ key or epilot's JSON key document");
}

/**
 * Reads a Standard Webhooks HMAC secret: `whsec_<base64>`. The prefix is optional, the base64 is not:
 * a secret that is not base64 would silently sign with the wrong bytes.
 */
export function parseHmacSecret(text: string): Buffer {
  const encoded = text.trim().replace(/^whsec_/, "");
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded))
    throw new KeyFormatError("HMAC secret must be whsec_ followed by base64");
  const bytes = Buffer.from(encoded, "base64");
  if (bytes.length < 16) throw new KeyFormatError("HMAC secret must hold at least 16 bytes");
  return bytes;
}
