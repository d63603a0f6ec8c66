import { expect, test } from "bun:test";
import { staticKeySource } from "../verify/key-source.ts";
import { parsePublicKey } from "../verify/keys.ts";
import { parseSigningKey, signWebhook } from "../verify/sign.ts";
import { verifySignature } from "../verify/signature.ts";
import { keygenCommand } from "./keygen.ts";

function keygen(json: boolean): string {
  let out = "";
  expect(keygenCommand({ json }, (text) => (out += text))).toBe(0);
  return out;
}

test("keygen --json prints a pair whose whsk_ signs what its whpk_ and PEM verify", async () => {
  const printed = JSON.parse(keygen(true)) as Record<string, string>;
  expect(Object.keys(printed).sort()).toEqual(["private_key_pem", "public_key", "public_key_pem", "secret_key"]);
  const body = Buffer.from("{}");
  for (const signing of [printed.secret_key!, printed.private_key_pem!]) {
    for (const publicKey of [printed.public_key!, printed.public_key_pem!]) {
      const headers = new Headers(signWebhook(body, { privateKey: parseSigningKey(signing) }));
      const result = await verifySignature(
        { headers, body },
        { keySource: staticKeySource(parsePublicKey(publicKey)), toleranceMs: 60_000 },
      );
      expect(result.ok).toBe(true);
    }
  }
});

test("keygen prints text naming where each half goes, and a new pair each time", () => {
  const text = keygen(false);
  expect(text).toMatch(/^secret key \(actiongate send --key\): +whsk_[A-Za-z0-9+/]{86}==$/m);
  expect(text).toMatch(/^public key \(verification\.public_key in config\): whpk_[A-Za-z0-9+/]{43}=$/m);
  expect(text).toContain("-----BEGIN PUBLIC KEY-----");
  expect(text).toContain("-----BEGIN PRIVATE KEY-----");
  expect(keygen(false)).not.toBe(text);
});
