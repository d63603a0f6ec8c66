import { createHmac, createPrivateKey, generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";

/** The shared fixtures folder (`../shared/fixtures` from the project root). */
export const FIXTURES_DIR = join(import.meta.dir, "..", "..", "..", "shared", "fixtures");

export function readFixture(name: string): string {
  return readFileSync(join(FIXTURES_DIR, name), "utf8");
}

/** The realistic custom action body from the fixtures, as an object to modify per test. */
export function fixturePayload(): Record<string, any> {
  return JSON.parse(readFixture("custom-action-payload.json"));
}

export interface TestKeyPair {
  privateKey: KeyObject;
  /** SPKI PEM, as epilot publishes it. */
  publicKeyPem: string;
  /** `whpk_<base64 raw>` */
  whpk: string;
  /** epilot's key document `{"public_key": PEM, ...}` */
  keyDocument: string;
}

/** A fresh Ed25519 pair, the way epilot signs. */
export function generateTestKeyPair(): TestKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const publicKeyPem = publicKey.export({ type: "spki", format: "pem" }).toString();
  const raw = Buffer.from(publicKey.export({ format: "jwk" }).x!, "base64url");
  return {
    privateKey,
    publicKeyPem,
    whpk: `whpk_${raw.toString("base64")}`,
    keyDocument: JSON.stringify({ public_key: publicKeyPem, algorithm: "ed25519", issuer: "epilot" }),
  };
}

/** Rebuilds a private key from a Standard Webhooks `whsk_` (32-byte seed + 32-byte public key). */
export function privateKeyFromWhsk(whsk: string): KeyObject {
  const bytes = Buffer.from(whsk.replace(/^whsk_/, ""), "base64");
  const seed = bytes.subarray(0, 32);
  const publicKey = bytes.subarray(32, 64);
  return createPrivateKey({ key: { kty: "OKP", crv: "Ed25519", d: seed.toString("base64url"), x: publicKey.toString("base64url") }, format: "jwk" });
}

export interface SignOptions {
  id?: string;
  /** Seconds since the epoch; now by default. */
  timestamp?: number;
  privateKey?: KeyObject;
  hmacSecret?: string;
  extraHeaders?: Record<string, string>;
}

let counter = 0;
export function uniqueWebhookId(): string {
  return `msg_test_${process.pid}_${Date.now()}_${counter++}`;
}

/** Headers epilot would send for `body`: webhook-id, webhook-timestamp and a v1a and/or v1 signature. */
export function signedHeaders(body: string | Uint8Array, options: SignOptions): Record<string, string> {
  const id = options.id ?? uniqueWebhookId();
  const timestamp = String(options.timestamp ?? Math.floor(Date.now() / 1000));
  const content = Buffer.concat([Buffer.from(`${id}.${timestamp}.`), Buffer.from(body)]);
  const signatures: string[] = [];
  if (options.privateKey) signatures.push(`v1a,${sign(null, content, options.privateKey).toString("base64")}`);
  if (options.hmacSecret) {
    const secret = Buffer.from(options.hmacSecret.replace(/^whsec_/, ""), "base64");
    signatures.push(`v1,${createHmac("sha256", secret).update(content).digest("base64")}`);
  }
  return {
    "content-type": "application/json",
    "webhook-id": id,
    "webhook-timestamp": timestamp,
    "webhook-signature": signatures.join(" "),
    ...options.extraHeaders,
  };
}
