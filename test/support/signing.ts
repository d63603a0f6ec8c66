import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { signWebhook } from "../../src/verify/sign.ts";

/** The repository's root folder. */
export const REPO_DIR = join(import.meta.dir, "..", "..");
/** Test-only fixtures (known-answer vectors, key documents): `test/fixtures`. */
export const FIXTURES_DIR = join(REPO_DIR, "test", "fixtures");
/** The realistic custom action body that the README, the examples and the tests all use. */
export const EXAMPLE_PAYLOAD_FILE = join(REPO_DIR, "examples", "payloads", "custom-action.json");

export function readFixture(name: string): string {
  return readFileSync(join(FIXTURES_DIR, name), "utf8");
}

/** The Pollable Outbound message that the docs, the examples and the tests use (epilot's shape). */
export const EXAMPLE_POLL_MESSAGE_FILE = join(REPO_DIR, "examples", "payloads", "poll-message.json");

/** The example poll message from `examples/payloads/`, as an object to modify per test. */
export function fixturePollMessage(): Record<string, any> {
  return JSON.parse(readFileSync(EXAMPLE_POLL_MESSAGE_FILE, "utf8")) as any;
}

/** The realistic custom action body from `examples/payloads/`, as an object to modify per test. */
export function fixturePayload(): Record<string, any> {
  const payload = JSON.parse(readFileSync(EXAMPLE_PAYLOAD_FILE, "utf8")) as any;
  // The example names epilot's real resume URL; a test never calls a host off this machine, so its
  // copy points at a closed loopback port that no default callback_hosts allows (the resume is refused
  // and logged, nothing is sent). Tests of resuming put their own epilot stand-in's URL here.
  payload.data.callback_post_url = LOOPBACK_CALLBACK_URL;
  return payload;
}

/**
 * A payload file for tests that send it through a gateway (`actiongate send`): {@link fixturePayload},
 * whose callback URL no default config lets the gateway resume, so nothing leaves the machine.
 */
export function sendablePayloadFile(): string {
  const dir = mkdtempSync(join(tmpdir(), "actiongate-payload-"));
  const file = join(dir, "custom-action.json");
  writeFileSync(file, JSON.stringify(fixturePayload(), null, 2));
  return file;
}

/** The fixture's callback_post_url: loopback, a closed port, allowed by no default `epilot.callback_hosts`. */
export const LOOPBACK_CALLBACK_URL = "https://127.0.0.1:9/v1/automation/public/executions:resume";

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

/**
 * Headers epilot would send for `body`: webhook-id, webhook-timestamp and a v1a and/or v1 signature,
 * signed by the gateway's own `signWebhook` (which the fixture's known-answer vectors pin down).
 */
export function signedHeaders(body: string | Uint8Array, options: SignOptions): Record<string, string> {
  return {
    "content-type": "application/json",
    ...signWebhook(body, {
      id: options.id ?? uniqueWebhookId(),
      ...(options.timestamp !== undefined ? { timestamp: options.timestamp } : {}),
      ...(options.privateKey ? { privateKey: options.privateKey } : {}),
      ...(options.hmacSecret ? { hmacSecret: options.hmacSecret } : {}),
    }),
    ...options.extraHeaders,
  };
}
