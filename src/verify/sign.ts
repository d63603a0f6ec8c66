import {
  createHmac,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  sign,
} from "node:crypto";
import { KeyFormatError, parseHmacSecret } from "./keys.ts";
import { signedContentOf } from "./signature.ts";

/**
 * The sending side of Standard Webhooks, the counterpart of `verifySignature`: what epilot does
 * before it calls us. Used by `actiongate keygen` and `actiongate send` to try routes without epilot.
 */

/** An Ed25519 pair in the forms Standard Webhooks and PEM tools use. */
export interface SigningKeyPair {
  /** `whsk_<base64 of the 32-byte seed followed by the 32-byte public key>`: signs (`actiongate send --key`). */
  readonly secretKey: string;
  /** `whpk_<base64 of the 32-byte public key>`: verifies (`verification.public_key`). */
  readonly publicKey: string;
  /** The public key as PEM (SPKI), as epilot publishes its own. */
  readonly publicKeyPem: string;
  /** The private key as PEM (PKCS#8). */
  readonly privateKeyPem: string;
}

/**
 * A fresh Ed25519 signing pair.
 *
 * @example
 * const pair = generateSigningKeyPair();
 * pair.publicKey; // "whpk_..." for verification.public_key
 */
export function generateSigningKeyPair(): SigningKeyPair {
  const { privateKey } = generateKeyPairSync("ed25519");
  return describeKeyPair(privateKey);
}

/**
 * Reads an Ed25519 private key: `whsk_<base64 of seed + public key>` (or of the 32-byte seed alone),
 * or a PEM (PKCS#8) private key.
 *
 * @example
 * parseSigningKey("whsk_6Xb/dCcHpPea21PS1N9VY/NZW723CEc77N4rJCubMbfVKIDij2HKpMKkioLlX0dRqSKJp4AJ6p9lMicMFs6Kvg==");
 */
export function parseSigningKey(text: string): KeyObject {
  const trimmed = text.trim();
  if (trimmed.startsWith("whsk_")) {
    const encoded = trimmed.slice("whsk_".length);
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) throw new KeyFormatError("whsk_ key must be followed by base64");
    const bytes = Buffer.from(encoded, "base64");
    if (bytes.length !== 32 && bytes.length !== 64)
      throw new KeyFormatError("whsk_ key must hold 64 bytes (seed and public key) or a 32-byte seed");
    const seed = bytes.subarray(0, 32);
    const key = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: "der", type: "pkcs8" });
    if (bytes.length === 64 && !Buffer.from(rawPublicKey(key)).equals(bytes.subarray(32))) {
      throw new KeyFormatError("whsk_ key's public half does not belong to its seed");
    }
    return key;
  }
  if (trimmed.startsWith("-----BEGIN")) {
    let key: KeyObject;
    try {
      key = createPrivateKey({ key: trimmed, format: "pem" });
    } catch {
      throw new KeyFormatError("PEM is not a valid private key");
    }
    if (key.asymmetricKeyType !== "ed25519") throw new KeyFormatError(`key is ${key.asymmetricKeyType}, not ed25519`);
    return key;
  }
  throw new KeyFormatError("expected a whsk_ key or a PEM (PKCS#8) Ed25519 private key");
}

/** How to sign one message: an Ed25519 key (v1a), an HMAC secret (v1), or both. */
export interface WebhookSigningOptions {
  readonly privateKey?: KeyObject;
  /** `whsec_<base64>` */
  readonly hmacSecret?: string;
  /** Fresh `msg_<random>` by default. */
  readonly id?: string;
  /** Seconds since the epoch; now by default. */
  readonly timestamp?: number;
}

/**
 * The `webhook-id`, `webhook-timestamp` and `webhook-signature` headers epilot would send with
 * `body`: the signature covers `${id}.${timestamp}.${body}` on the exact bytes.
 *
 * @example
 * const headers = signWebhook(body, { privateKey: parseSigningKey(whsk) });
 * await fetch(url, { method: "POST", headers: { ...headers, "content-type": "application/json" }, body });
 */
export function signWebhook(
  body: string | Uint8Array,
  options: WebhookSigningOptions,
): Record<"webhook-id" | "webhook-timestamp" | "webhook-signature", string> {
  if (!options.privateKey && !options.hmacSecret)
    throw new KeyFormatError("signing needs an Ed25519 key or an HMAC secret");
  const id = options.id ?? newWebhookId();
  const timestamp = String(options.timestamp ?? Math.floor(Date.now() / 1000));
  const content = signedContentOf(id, timestamp, body);
  const signatures: string[] = [];
  if (options.privateKey) signatures.push(`v1a,${sign(null, content, options.privateKey).toString("base64")}`);
  if (options.hmacSecret)
    signatures.push(`v1,${createHmac("sha256", parseHmacSecret(options.hmacSecret)).update(content).digest("base64")}`);
  return { "webhook-id": id, "webhook-timestamp": timestamp, "webhook-signature": signatures.join(" ") };
}

/** A fresh webhook id in the form epilot uses: `msg_` and 24 random URL-safe characters. */
export function newWebhookId(): string {
  return `msg_${randomBytes(18).toString("base64url")}`;
}

// DER prefix of a PKCS#8 Ed25519 private key; the 32-byte seed follows it.
const PKCS8_ED25519_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

function rawPublicKey(privateKey: KeyObject): Uint8Array {
  // The last 32 bytes of the SPKI DER form are the raw public key.
  return createPublicKey(privateKey).export({ format: "der", type: "spki" }).subarray(-32);
}

function describeKeyPair(privateKey: KeyObject): SigningKeyPair {
  const publicRaw = rawPublicKey(privateKey);
  const seed = privateKey.export({ format: "der", type: "pkcs8" }).subarray(-32);
  return {
    secretKey: `whsk_${Buffer.concat([seed, publicRaw]).toString("base64")}`,
    publicKey: `whpk_${Buffer.from(publicRaw).toString("base64")}`,
    publicKeyPem: createPublicKey(privateKey).export({ format: "pem", type: "spki" }).toString(),
    privateKeyPem: privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
  };
}
