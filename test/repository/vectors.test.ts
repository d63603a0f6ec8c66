import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readFixture } from "../support/signing.ts";

/**
 * The known-answer vectors in test/fixtures pin the gateway's signing and verification. They are
 * checked here with openssl, independently of any code of ours, so that a wrong vector cannot make
 * wrong code pass.
 */
const vectors = JSON.parse(readFixture("standard-webhooks-vectors.json")) as {
  message: { webhook_id: string; webhook_timestamp: string; body: string };
  signed_content: string;
  v1: { secret: string; signature: string };
  v1a: { public_key_pem: string; public_key: string; signature: string };
};

function openssl(args: string[], input?: Buffer): { status: number | null; stdout: Buffer; stderr: string } {
  const result = spawnSync("openssl", args, { input });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr.toString() };
}

describe("the Standard Webhooks vectors, checked with openssl", () => {
  const content = Buffer.from(
    `${vectors.message.webhook_id}.${vectors.message.webhook_timestamp}.${vectors.message.body}`,
  );

  test("the signed content is id.timestamp.body", () => {
    expect(vectors.signed_content).toBe(content.toString());
  });

  test("v1: HMAC-SHA256 of the signed content with the whsec_ secret's bytes", () => {
    const key = Buffer.from(vectors.v1.secret.replace(/^whsec_/, ""), "base64").toString("hex");
    const result = openssl(["dgst", "-sha256", "-mac", "HMAC", "-macopt", `hexkey:${key}`, "-binary"], content);
    expect(result.status).toBe(0);
    expect(`v1,${result.stdout.toString("base64")}`).toBe(vectors.v1.signature);
  });

  test("v1a: an Ed25519 signature of the signed content that openssl accepts under the public key", () => {
    const dir = mkdtempSync(join(tmpdir(), "actiongate-vectors-"));
    try {
      writeFileSync(join(dir, "key.pem"), vectors.v1a.public_key_pem);
      writeFileSync(join(dir, "content"), content);
      writeFileSync(join(dir, "sig"), Buffer.from(vectors.v1a.signature.replace(/^v1a,/, ""), "base64"));
      const good = openssl([
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        join(dir, "key.pem"),
        "-rawin",
        "-in",
        join(dir, "content"),
        "-sigfile",
        join(dir, "sig"),
      ]);
      expect(good.status).toBe(0);
      // The same check fails for other content: openssl really verifies here.
      writeFileSync(join(dir, "content"), Buffer.concat([content, Buffer.from(" ")]));
      const bad = openssl([
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        join(dir, "key.pem"),
        "-rawin",
        "-in",
        join(dir, "content"),
        "-sigfile",
        join(dir, "sig"),
      ]);
      expect(bad.status).not.toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("whpk_ is the raw 32 bytes of the PEM's public key", () => {
    const der = openssl(["pkey", "-pubin", "-outform", "DER"], Buffer.from(vectors.v1a.public_key_pem));
    expect(der.status).toBe(0);
    expect(`whpk_${der.stdout.subarray(-32).toString("base64")}`).toBe(vectors.v1a.public_key);
  });
});
