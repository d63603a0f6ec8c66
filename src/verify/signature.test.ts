import { describe, expect, test } from "bun:test";
import { type KeyObject, randomBytes } from "node:crypto";
import { generateTestKeyPair, readFixture, signedHeaders } from "../../test/support/signing.ts";
import { type RemoteKeySet, staticKeySource, trustedKeys } from "./key-source.ts";
import { parseHmacSecret, parsePublicKey } from "./keys.ts";
import type { IncomingCall } from "./signature.ts";
import {
  MAX_SIGNATURES,
  type PublicKeySource,
  type SignatureVerifierOptions,
  type VerificationResult,
  verifySignature,
} from "./signature.ts";

const vectors = JSON.parse(readFixture("standard-webhooks-vectors.json")) as {
  message: { webhook_id: string; webhook_timestamp: string; body: string };
  v1: { secret: string; signature: string };
  v1a: { public_key: string; public_key_pem: string; signature: string };
};
const VECTOR_TS = Number(vectors.message.webhook_timestamp);
const VECTOR_NOW = () => VECTOR_TS * 1000;
const TOLERANCE_MS = 300_000;

function incoming(headers: Record<string, string>, body: string | Uint8Array): IncomingCall {
  return { headers: new Headers(headers), body: typeof body === "string" ? new TextEncoder().encode(body) : body };
}

function vectorCall(signature: string): IncomingCall {
  return incoming(
    {
      "webhook-id": vectors.message.webhook_id,
      "webhook-timestamp": vectors.message.webhook_timestamp,
      "webhook-signature": signature,
    },
    vectors.message.body,
  );
}

function expectAccepted(
  result: VerificationResult,
  expected: { id: string; timestamp: number; scheme: "v1" | "v1a"; body: string | Uint8Array },
): void {
  if (!result.ok) throw new Error(`expected acceptance, got ${result.reason}: ${result.message}`);
  expect(result.call.webhookId).toBe(expected.id);
  expect(result.call.timestamp).toBe(expected.timestamp);
  expect(result.call.scheme).toBe(expected.scheme);
  const body = typeof expected.body === "string" ? new TextEncoder().encode(expected.body) : expected.body;
  expect(Buffer.from(result.call.body).equals(Buffer.from(body))).toBe(true);
}

function expectRefused(result: VerificationResult, reason: string): void {
  if (result.ok) throw new Error(`expected refusal with ${reason}, but the call was accepted (${result.call.scheme})`);
  expect(result.reason).toBe(reason as typeof result.reason);
  expect(result.message.length).toBeGreaterThan(0);
}

/** trustedKeys over a stand-in for a URL key set (only the PublicKeySource part is used). */
function trustedKeysOf(configured: KeyObject[], remote: PublicKeySource) {
  // cast: the combination reads only current(), refreshAfterFailure() and awaitingKey() of the set.
  return trustedKeys(configured, remote as unknown as RemoteKeySet);
}

function whsec(): string {
  return `whsec_${randomBytes(32).toString("base64")}`;
}

describe("known-answer vectors", () => {
  const vectorKeys: [string, string][] = [
    ["whpk_ key", vectors.v1a.public_key],
    ["PEM", vectors.v1a.public_key_pem],
    ["epilot JSON key document", readFixture("epilot-public-key.json")],
  ];

  for (const [label, keyText] of vectorKeys) {
    test(`v1a verifies with the ${label} and the clock pinned to the vector timestamp`, async () => {
      const result = await verifySignature(vectorCall(vectors.v1a.signature), {
        keySource: staticKeySource(parsePublicKey(keyText)),
        toleranceMs: TOLERANCE_MS,
        now: VECTOR_NOW,
      });
      expectAccepted(result, {
        id: vectors.message.webhook_id,
        timestamp: VECTOR_TS,
        scheme: "v1a",
        body: vectors.message.body,
      });
    });

    test(`v1a with the ${label} is refused as too old when the clock is not pinned`, async () => {
      const result = await verifySignature(vectorCall(vectors.v1a.signature), {
        keySource: staticKeySource(parsePublicKey(keyText)),
        toleranceMs: TOLERANCE_MS,
      });
      expectRefused(result, "timestamp_too_old");
    });
  }

  test("v1 verifies with the whsec_ secret and the clock pinned", async () => {
    const result = await verifySignature(vectorCall(vectors.v1.signature), {
      hmacSecrets: [parseHmacSecret(vectors.v1.secret)],
      toleranceMs: TOLERANCE_MS,
      now: VECTOR_NOW,
    });
    expectAccepted(result, {
      id: vectors.message.webhook_id,
      timestamp: VECTOR_TS,
      scheme: "v1",
      body: vectors.message.body,
    });
  });

  test("v1 is refused as too old when the clock is not pinned", async () => {
    const result = await verifySignature(vectorCall(vectors.v1.signature), {
      hmacSecrets: [parseHmacSecret(vectors.v1.secret)],
      toleranceMs: TOLERANCE_MS,
    });
    expectRefused(result, "timestamp_too_old");
  });

  test("the two vector signatures together in one header verify with either mechanism", async () => {
    const header = `${vectors.v1.signature} ${vectors.v1a.signature}`;
    const v1aOnly = await verifySignature(vectorCall(header), {
      keySource: staticKeySource(parsePublicKey(vectors.v1a.public_key)),
      toleranceMs: TOLERANCE_MS,
      now: VECTOR_NOW,
    });
    expectAccepted(v1aOnly, {
      id: vectors.message.webhook_id,
      timestamp: VECTOR_TS,
      scheme: "v1a",
      body: vectors.message.body,
    });
    const v1Only = await verifySignature(vectorCall(header), {
      hmacSecrets: [parseHmacSecret(vectors.v1.secret)],
      toleranceMs: TOLERANCE_MS,
      now: VECTOR_NOW,
    });
    expectAccepted(v1Only, {
      id: vectors.message.webhook_id,
      timestamp: VECTOR_TS,
      scheme: "v1",
      body: vectors.message.body,
    });
  });

  test("the v1a vector signature does not verify against a different body", async () => {
    const call = incoming(
      {
        "webhook-id": vectors.message.webhook_id,
        "webhook-timestamp": vectors.message.webhook_timestamp,
        "webhook-signature": vectors.v1a.signature,
      },
      vectors.message.body.replace("2432232314", "2432232315"),
    );
    const result = await verifySignature(call, {
      keySource: staticKeySource(parsePublicKey(vectors.v1a.public_key)),
      toleranceMs: TOLERANCE_MS,
      now: VECTOR_NOW,
    });
    expectRefused(result, "no_matching_signature");
  });
});

describe("signatures made with test keys", () => {
  const pair = generateTestKeyPair();
  const key = parsePublicKey(pair.publicKeyPem);
  const body = JSON.stringify({ type: "external_integration", data: { org_id: "1", entity: { _id: "e1" } } });
  const nowSeconds = 1_800_000_000;
  const now = () => nowSeconds * 1000;
  const options = (extra: Partial<SignatureVerifierOptions> = {}): SignatureVerifierOptions => ({
    keySource: staticKeySource(key),
    toleranceMs: TOLERANCE_MS,
    now,
    ...extra,
  });

  test("a valid v1a signature is accepted and the call carries id, timestamp, scheme, body and headers", async () => {
    const headers = signedHeaders(body, { id: "msg_v1a_ok", timestamp: nowSeconds, privateKey: pair.privateKey });
    const result = await verifySignature(incoming(headers, body), options());
    expectAccepted(result, { id: "msg_v1a_ok", timestamp: nowSeconds, scheme: "v1a", body });
    if (result.ok) expect(result.call.headers.get("webhook-signature")).toBe(headers["webhook-signature"]!);
  });

  test("a valid v1 signature is accepted", async () => {
    const secret = whsec();
    const headers = signedHeaders(body, { id: "msg_v1_ok", timestamp: nowSeconds, hmacSecret: secret });
    const result = await verifySignature(
      incoming(headers, body),
      options({ keySource: undefined, hmacSecrets: [parseHmacSecret(secret)] }),
    );
    expectAccepted(result, { id: "msg_v1_ok", timestamp: nowSeconds, scheme: "v1", body });
  });

  test("one valid signature among several (including an unknown version) is accepted", async () => {
    const other = generateTestKeyPair();
    const good = signedHeaders(body, { id: "msg_multi", timestamp: nowSeconds, privateKey: pair.privateKey })[
      "webhook-signature"
    ]!;
    const wrong = signedHeaders(body, { id: "msg_multi", timestamp: nowSeconds, privateKey: other.privateKey })[
      "webhook-signature"
    ]!;
    const wrongHmac = signedHeaders(body, { id: "msg_multi", timestamp: nowSeconds, hmacSecret: whsec() })[
      "webhook-signature"
    ]!;
    const header = ["v2,xxx", wrong, wrongHmac, "v1a,AAAA", good].join(" ");
    const call = incoming(
      { "webhook-id": "msg_multi", "webhook-timestamp": String(nowSeconds), "webhook-signature": header },
      body,
    );
    const result = await verifySignature(call, options({ hmacSecrets: [parseHmacSecret(whsec())] }));
    expectAccepted(result, { id: "msg_multi", timestamp: nowSeconds, scheme: "v1a", body });
  });

  describe("how many signatures a header may hold", () => {
    const other = generateTestKeyPair();
    // Signatures of the same call with a key and secrets the verifier does not trust, v1a and v1 in turn.
    const forged = (count: number) =>
      Array.from({ length: count }, (_, i) =>
        i % 2 === 0
          ? signedHeaders(body, { id: "msg_many", timestamp: nowSeconds, privateKey: other.privateKey })[
              "webhook-signature"
            ]!
          : signedHeaders(body, { id: "msg_many", timestamp: nowSeconds, hmacSecret: whsec() })["webhook-signature"]!,
      );
    const good = signedHeaders(body, { id: "msg_many", timestamp: nowSeconds, privateKey: pair.privateKey })[
      "webhook-signature"
    ]!;
    const header = (tokens: readonly string[]) =>
      incoming(
        { "webhook-id": "msg_many", "webhook-timestamp": String(nowSeconds), "webhook-signature": tokens.join(" ") },
        body,
      );

    test(`a valid signature in 9th place, and in the last of ${MAX_SIGNATURES}, is accepted`, async () => {
      expectAccepted(await verifySignature(header([...forged(8), good]), options()), {
        id: "msg_many",
        timestamp: nowSeconds,
        scheme: "v1a",
        body,
      });
      expectAccepted(await verifySignature(header([...forged(MAX_SIGNATURES - 1), good]), options()), {
        id: "msg_many",
        timestamp: nowSeconds,
        scheme: "v1a",
        body,
      });
    });

    test(`more than ${MAX_SIGNATURES} are refused as a whole, saying so, even with a valid one first`, async () => {
      const result = await verifySignature(header([good, ...forged(MAX_SIGNATURES)]), options());
      expectRefused(result, "too_many_signatures");
      if (!result.ok) expect(result.message).toBe("webhook-signature holds more than 16 signatures");
    });
  });

  test("keys from the config and from a URL are trusted together: a signature valid under either passes", async () => {
    const fetched = generateTestKeyPair();
    const remote: PublicKeySource = {
      current: () => [parsePublicKey(fetched.whpk)],
      refreshAfterFailure: async () => undefined,
      awaitingKey: () => false,
    };
    const both = { keySource: trustedKeysOf([key], remote) };
    for (const privateKey of [pair.privateKey, fetched.privateKey]) {
      const headers = signedHeaders(body, { id: "msg_both", timestamp: nowSeconds, privateKey });
      expect((await verifySignature(incoming(headers, body), options(both))).ok).toBe(true);
    }
    const stranger = generateTestKeyPair();
    const headers = signedHeaders(body, { timestamp: nowSeconds, privateKey: stranger.privateKey });
    expectRefused(await verifySignature(incoming(headers, body), options(both)), "no_matching_signature");
  });

  test("a config key beside a URL that has not answered: a signature the config key does not verify is key_unavailable", async () => {
    const waiting: PublicKeySource = {
      current: () => [],
      refreshAfterFailure: async () => undefined,
      awaitingKey: () => true,
    };
    const keySource = trustedKeysOf([key], waiting);
    const mine = signedHeaders(body, { timestamp: nowSeconds, privateKey: pair.privateKey });
    expect((await verifySignature(incoming(mine, body), options({ keySource }))).ok).toBe(true);
    const epilots = signedHeaders(body, { timestamp: nowSeconds, privateKey: generateTestKeyPair().privateKey });
    expectRefused(await verifySignature(incoming(epilots, body), options({ keySource })), "key_unavailable");
  });

  test("a header with only unknown versions is refused", async () => {
    const call = incoming(
      { "webhook-id": "msg_v2", "webhook-timestamp": String(nowSeconds), "webhook-signature": "v2,xxx v3,yyy" },
      body,
    );
    expectRefused(await verifySignature(call, options()), "no_matching_signature");
  });

  test("a signature made with another key is refused", async () => {
    const other = generateTestKeyPair();
    const headers = signedHeaders(body, { timestamp: nowSeconds, privateKey: other.privateKey });
    expectRefused(await verifySignature(incoming(headers, body), options()), "no_matching_signature");
  });

  test("a body with one byte changed is refused", async () => {
    const headers = signedHeaders(body, { timestamp: nowSeconds, privateKey: pair.privateKey });
    const bytes = new TextEncoder().encode(body);
    bytes[10] = bytes[10]! ^ 0x01;
    expectRefused(await verifySignature(incoming(headers, bytes), options()), "no_matching_signature");
  });

  test("a one-byte change of an HMAC-signed body is refused", async () => {
    const secret = whsec();
    const headers = signedHeaders(body, { timestamp: nowSeconds, hmacSecret: secret });
    const bytes = new TextEncoder().encode(body);
    bytes[bytes.length - 2] = bytes[bytes.length - 2]! ^ 0x01;
    expectRefused(
      await verifySignature(incoming(headers, bytes), options({ hmacSecrets: [parseHmacSecret(secret)] })),
      "no_matching_signature",
    );
  });

  test("a changed webhook-id is refused", async () => {
    const headers = signedHeaders(body, { id: "msg_original", timestamp: nowSeconds, privateKey: pair.privateKey });
    headers["webhook-id"] = "msg_originaM";
    expectRefused(await verifySignature(incoming(headers, body), options()), "no_matching_signature");
  });

  test("a changed webhook-timestamp (still within tolerance) is refused", async () => {
    const headers = signedHeaders(body, { timestamp: nowSeconds, privateKey: pair.privateKey });
    headers["webhook-timestamp"] = String(nowSeconds + 1);
    expectRefused(await verifySignature(incoming(headers, body), options()), "no_matching_signature");
  });

  describe("timestamp tolerance", () => {
    const toleranceSeconds = TOLERANCE_MS / 1000;
    const cases: [string, number, string | null][] = [
      ["just inside, in the past", nowSeconds - toleranceSeconds, null],
      ["just beyond, in the past", nowSeconds - toleranceSeconds - 1, "timestamp_too_old"],
      ["just inside, in the future", nowSeconds + toleranceSeconds, null],
      ["just beyond, in the future", nowSeconds + toleranceSeconds + 1, "timestamp_in_future"],
      ["far in the future", nowSeconds + 86_400, "timestamp_in_future"],
      ["zero", 0, "timestamp_too_old"],
    ];
    for (const [label, timestamp, reason] of cases) {
      test(`${label} (${timestamp - nowSeconds}s): ${reason ?? "accepted"}`, async () => {
        const headers = signedHeaders(body, { id: "msg_ts", timestamp, privateKey: pair.privateKey });
        const result = await verifySignature(incoming(headers, body), options());
        if (reason === null) expectAccepted(result, { id: "msg_ts", timestamp, scheme: "v1a", body });
        else expectRefused(result, reason);
      });
    }
  });

  for (const header of ["webhook-id", "webhook-timestamp", "webhook-signature"]) {
    test(`a missing ${header} header is refused`, async () => {
      const headers = signedHeaders(body, { timestamp: nowSeconds, privateKey: pair.privateKey });
      delete headers[header];
      expectRefused(await verifySignature(incoming(headers, body), options()), "missing_headers");
    });

    test(`an empty ${header} header is refused`, async () => {
      const headers = signedHeaders(body, { timestamp: nowSeconds, privateKey: pair.privateKey });
      headers[header] = "";
      expectRefused(await verifySignature(incoming(headers, body), options()), "missing_headers");
    });
  }

  for (const timestamp of ["abc", "1800000000.5", "-1800000000", "1e9", "0x6B49D200"]) {
    test(`a non-numeric timestamp ${JSON.stringify(timestamp)} is refused as invalid`, async () => {
      const headers = signedHeaders(body, { timestamp: nowSeconds, privateKey: pair.privateKey });
      headers["webhook-timestamp"] = timestamp;
      expectRefused(await verifySignature(incoming(headers, body), options()), "invalid_timestamp");
    });
  }

  const garbage: [string, string][] = [
    ["v1a with non-base64", "v1a,!!!not*base64###"],
    ["v1a too short", `v1a,${randomBytes(32).toString("base64")}`],
    ["v1a too long", `v1a,${randomBytes(128).toString("base64")}`],
    ["v1a right length, random bytes", `v1a,${randomBytes(64).toString("base64")}`],
    ["v1a empty", "v1a,"],
    ["v1 with non-base64", "v1,%%%%"],
    ["v1 too short", `v1,${randomBytes(16).toString("base64")}`],
    ["v1 too long", `v1,${randomBytes(64).toString("base64")}`],
    ["no comma", "v1a"],
    ["leading comma", `,${randomBytes(64).toString("base64")}`],
    ["several garbage entries with double spaces", "v1a,AAAA  v1,BBBB   v2,CCCC"],
  ];
  for (const [label, signature] of garbage) {
    test(`garbage signature (${label}) is refused without throwing`, async () => {
      const call = incoming(
        { "webhook-id": "msg_garbage", "webhook-timestamp": String(nowSeconds), "webhook-signature": signature },
        body,
      );
      const result = await verifySignature(call, options({ hmacSecrets: [parseHmacSecret(whsec())] }));
      expectRefused(result, "no_matching_signature");
    });
  }

  test("an HMAC header is checked against every configured secret (the second one matches)", async () => {
    const first = whsec();
    const second = whsec();
    const headers = signedHeaders(body, { id: "msg_second_secret", timestamp: nowSeconds, hmacSecret: second });
    const result = await verifySignature(
      incoming(headers, body),
      options({ keySource: undefined, hmacSecrets: [parseHmacSecret(first), parseHmacSecret(second)] }),
    );
    expectAccepted(result, { id: "msg_second_secret", timestamp: nowSeconds, scheme: "v1", body });
    const onlyFirst = await verifySignature(
      incoming(headers, body),
      options({ keySource: undefined, hmacSecrets: [parseHmacSecret(first)] }),
    );
    expectRefused(onlyFirst, "no_matching_signature");
  });

  test("a v1 signature is refused when no HMAC secret is configured", async () => {
    const headers = signedHeaders(body, { timestamp: nowSeconds, hmacSecret: whsec() });
    expectRefused(await verifySignature(incoming(headers, body), options()), "no_matching_signature");
  });

  test("a v1a signature is refused when no key source is configured", async () => {
    const headers = signedHeaders(body, { timestamp: nowSeconds, privateKey: pair.privateKey });
    expectRefused(
      await verifySignature(
        incoming(headers, body),
        options({ keySource: undefined, hmacSecrets: [parseHmacSecret(whsec())] }),
      ),
      "no_matching_signature",
    );
  });

  test("key_unavailable when the key source has no key and only v1a is present", async () => {
    let refreshes = 0;
    const empty: PublicKeySource = {
      current: () => [],
      refreshAfterFailure: async () => {
        refreshes++;
        return undefined;
      },
      awaitingKey: () => true,
    };
    const headers = signedHeaders(body, { timestamp: nowSeconds, privateKey: pair.privateKey });
    expectRefused(await verifySignature(incoming(headers, body), options({ keySource: empty })), "key_unavailable");
    expect(refreshes).toBe(1);
  });

  test("a key source without a key that finds one on refresh accepts the call", async () => {
    let loaded = false;
    const late: PublicKeySource = {
      current: () => [],
      refreshAfterFailure: async () => {
        loaded = true;
        return [key];
      },
      awaitingKey: () => !loaded,
    };
    const headers = signedHeaders(body, { id: "msg_late_key", timestamp: nowSeconds, privateKey: pair.privateKey });
    expectAccepted(await verifySignature(incoming(headers, body), options({ keySource: late })), {
      id: "msg_late_key",
      timestamp: nowSeconds,
      scheme: "v1a",
      body,
    });
  });

  test("during a key outage a valid v1a beside a bogus v1 is key_unavailable (503 to retry), not a 401", async () => {
    const empty: PublicKeySource = {
      current: () => [],
      refreshAfterFailure: async () => undefined,
      awaitingKey: () => true,
    };
    const headers = signedHeaders(body, { timestamp: nowSeconds, privateKey: pair.privateKey, hmacSecret: whsec() });
    expectRefused(
      await verifySignature(
        incoming(headers, body),
        options({ keySource: empty, hmacSecrets: [parseHmacSecret(whsec())] }),
      ),
      "key_unavailable",
    );
  });

  test("a webhook-id that is not printable ASCII, or longer than 256, is refused as invalid_webhook_id", async () => {
    for (const id of ["msg_Łukasz", "msg_with space", "msg_\u00e4", "m".repeat(257)]) {
      const headers = signedHeaders(body, {
        id: "msg_placeholder",
        timestamp: nowSeconds,
        privateKey: pair.privateKey,
      });
      const latin1 = Buffer.from(id, "utf8").toString("latin1");
      expectRefused(
        await verifySignature(incoming({ ...headers, "webhook-id": latin1 }, body), options()),
        "invalid_webhook_id",
      );
    }
  });

  test("a rotated key returned by refreshAfterFailure is accepted", async () => {
    const rotated = generateTestKeyPair();
    const newKey = parsePublicKey(rotated.whpk);
    const calls: string[] = [];
    const source: PublicKeySource = {
      current: () => {
        calls.push("current");
        return [key];
      },
      refreshAfterFailure: async () => {
        calls.push("refresh");
        return [key, newKey];
      },
      awaitingKey: () => false,
    };
    const headers = signedHeaders(body, { id: "msg_rotated", timestamp: nowSeconds, privateKey: rotated.privateKey });
    expectAccepted(await verifySignature(incoming(headers, body), options({ keySource: source })), {
      id: "msg_rotated",
      timestamp: nowSeconds,
      scheme: "v1a",
      body,
    });
    expect(calls).toEqual(["current", "refresh"]);
  });

  test("a valid signature with the current key does not ask the source to refresh", async () => {
    let refreshes = 0;
    const source: PublicKeySource = {
      current: () => [key],
      refreshAfterFailure: async () => {
        refreshes++;
        return undefined;
      },
      awaitingKey: () => false,
    };
    const headers = signedHeaders(body, { timestamp: nowSeconds, privateKey: pair.privateKey });
    expect((await verifySignature(incoming(headers, body), options({ keySource: source }))).ok).toBe(true);
    expect(refreshes).toBe(0);
  });

  test("a refresh returning a key that still does not match is refused", async () => {
    const other = generateTestKeyPair();
    const source: PublicKeySource = {
      current: () => [key],
      refreshAfterFailure: async () => [parsePublicKey(other.whpk) as KeyObject],
      awaitingKey: () => false,
    };
    const attacker = generateTestKeyPair();
    const headers = signedHeaders(body, { timestamp: nowSeconds, privateKey: attacker.privateKey });
    expectRefused(
      await verifySignature(incoming(headers, body), options({ keySource: source })),
      "no_matching_signature",
    );
  });
});
