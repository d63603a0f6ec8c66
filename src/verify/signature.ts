import { createHmac, type KeyObject, timingSafeEqual, verify as verifyEd25519 } from "node:crypto";

/** The raw request as it arrived: headers and the body bytes, before anything trusts them. */
export interface IncomingCall {
  readonly headers: Headers;
  readonly body: Uint8Array;
}

/** The one way to make a {@link VerifiedCall}; set by the class itself, used only by verifySignature below. */
let issueVerifiedCall: (
  incoming: IncomingCall,
  webhookId: string,
  timestamp: number,
  scheme: "v1" | "v1a",
) => VerifiedCall;

/**
 * A call whose signature, timestamp and id have been checked. Only {@link verifySignature} makes one
 * (the constructor is private, and the private field makes the type nominal: a plain object of the
 * same shape, a spread copy with another body, or a cast from JSON does not compile as one), and
 * the parser, router and targets accept nothing else.
 */
export class VerifiedCall {
  readonly #verified = true;

  private constructor(
    readonly headers: Headers,
    readonly body: Uint8Array,
    readonly webhookId: string,
    /** Seconds since the epoch, from `webhook-timestamp`. */
    readonly timestamp: number,
    /** Which signature matched: `v1a` (Ed25519) or `v1` (HMAC). */
    readonly scheme: "v1" | "v1a",
  ) {}

  /**
   * Whether `value` was made by verifySignature: a runtime check for what a cast could slip past the
   * compiler (the cast-ban test in test/architecture keeps casts out of the code).
   */
  static is(value: unknown): value is VerifiedCall {
    return typeof value === "object" && value !== null && #verified in value;
  }

  static {
    issueVerifiedCall = (incoming, webhookId, timestamp, scheme) =>
      new VerifiedCall(incoming.headers, incoming.body, webhookId, timestamp, scheme);
  }
}

/** The Ed25519 keys trusted; a remote source may fetch again after a failure (key rotation). */
export interface PublicKeySource {
  /** The keys trusted now: a v1a signature valid under any one of them passes. Empty while none has loaded. */
  current(): readonly KeyObject[];
  /**
   * Called when no v1a signature verified: may fetch again (the source rate-limits it) and resolves to
   * the keys trusted afterwards when a new one came, undefined otherwise.
   */
  refreshAfterFailure(): Promise<readonly KeyObject[] | undefined>;
  /**
   * True while a key the config names has not loaded yet (a URL that has not answered): a v1a
   * signature that no key verified may be signed with it, so the call gets 503 to retry, not 401.
   */
  awaitingKey(): boolean;
}

export interface SignatureVerifierOptions {
  keySource?: PublicKeySource | undefined;
  hmacSecrets?: readonly Buffer[];
  /** How far `webhook-timestamp` may be from now, in either direction. */
  toleranceMs: number;
  /** The clock, replaceable in tests that check the known-answer vectors. */
  now?: () => number;
}

export type VerificationFailureReason =
  | "missing_headers"
  | "invalid_webhook_id"
  | "invalid_timestamp"
  | "timestamp_too_old"
  | "timestamp_in_future"
  | "no_matching_signature"
  | "too_many_signatures"
  | "key_unavailable";

export type VerificationResult =
  | { ok: true; call: VerifiedCall }
  | { ok: false; reason: VerificationFailureReason; message: string };

const PRINTABLE_ASCII = /^[\x21-\x7e]+$/;

/**
 * A webhook-signature header with more signatures than this is refused as a whole (401, saying so):
 * each v1a signature costs an Ed25519 verification per trusted key (about 55 µs), so a forged header
 * costs at most 16 of them per key, and a sender rotating secrets sends two or three. Refusing, rather
 * than checking only the first ones, means a valid signature is never ignored without a word.
 */
export const MAX_SIGNATURES = 16;

/**
 * Checks a call the Standard Webhooks way, on the raw body bytes: headers present, timestamp within
 * tolerance, at most {@link MAX_SIGNATURES} space-separated signatures and at least one of them valid
 * (`v1a,` Ed25519 with any key from `keySource`, `v1,` HMAC-SHA256 with any of `hmacSecrets`,
 * compared in constant time).
 *
 * @example
 * const result = await verifySignature({ headers, body }, { keySource, toleranceMs: 300_000 });
 * if (!result.ok) return unauthorized(result.message);
 */
export async function verifySignature(
  incoming: IncomingCall,
  options: SignatureVerifierOptions,
): Promise<VerificationResult> {
  const webhookId = incoming.headers.get("webhook-id");
  const timestampText = incoming.headers.get("webhook-timestamp");
  const signatureHeader = incoming.headers.get("webhook-signature");
  if (!webhookId || !timestampText || !signatureHeader) {
    return fail("missing_headers", "webhook-id, webhook-timestamp and webhook-signature headers are required");
  }
  if (webhookId.length > 256) return fail("invalid_webhook_id", "webhook-id is longer than 256 characters");
  // Header values arrive decoded as ISO-8859-1, so an id with other characters could never match
  // what the sender signed (its UTF-8 bytes); Standard Webhooks ids are ASCII anyway.
  if (!PRINTABLE_ASCII.test(webhookId)) return fail("invalid_webhook_id", "webhook-id must be printable ASCII");
  if (!/^\d{1,12}$/.test(timestampText))
    return fail("invalid_timestamp", "webhook-timestamp must be whole seconds since the epoch");

  const timestamp = Number(timestampText);
  const nowSeconds = Math.floor((options.now ?? Date.now)() / 1000);
  const toleranceSeconds = Math.floor(options.toleranceMs / 1000);
  if (timestamp < nowSeconds - toleranceSeconds) return fail("timestamp_too_old", "webhook-timestamp is too old");
  if (timestamp > nowSeconds + toleranceSeconds)
    return fail("timestamp_in_future", "webhook-timestamp is too far in the future");

  const signatures = parseSignatureHeader(signatureHeader);
  if (signatures === undefined)
    return fail("too_many_signatures", `webhook-signature holds more than ${MAX_SIGNATURES} signatures`);
  const signedContent = signedContentOf(webhookId, timestampText, incoming.body);
  const accept = (scheme: "v1" | "v1a"): VerificationResult => ({
    ok: true,
    call: issueVerifiedCall(incoming, webhookId, timestamp, scheme),
  });

  const hmacCandidates = signatures.filter((s) => s.version === "v1");
  if (hmacCandidates.length > 0 && options.hmacSecrets?.length) {
    for (const secret of options.hmacSecrets) {
      const expected = createHmac("sha256", secret).update(signedContent).digest();
      if (hmacCandidates.some((s) => s.bytes.length === expected.length && timingSafeEqual(s.bytes, expected)))
        return accept("v1");
    }
  }

  const ed25519Candidates = signatures.filter((s) => s.version === "v1a");
  if (ed25519Candidates.length > 0 && options.keySource) {
    const keys = options.keySource.current();
    if (keys.some((key) => matchesEd25519(ed25519Candidates, signedContent, key))) return accept("v1a");
    // A failure may mean epilot rotated its key: look once more (the source rate-limits this).
    const refreshed = await options.keySource.refreshAfterFailure();
    const fresh = refreshed?.filter((key) => !keys.includes(key)) ?? [];
    if (fresh.some((key) => matchesEd25519(ed25519Candidates, signedContent, key))) return accept("v1a");
    // A key the config names is still missing (and no v1 matched): the call may well be epilot's,
    // so it gets 503 to retry later, never 401, whatever else the header holds.
    if (options.keySource.awaitingKey()) {
      return fail("key_unavailable", "the verification key is not available yet; try again shortly");
    }
  }
  return fail("no_matching_signature", "no matching signature");
}

interface SignatureCandidate {
  version: string;
  bytes: Buffer;
}

/** The header's signatures, or undefined when it holds more than {@link MAX_SIGNATURES}. */
function parseSignatureHeader(header: string): SignatureCandidate[] | undefined {
  const out: SignatureCandidate[] = [];
  for (const token of header.split(" ")) {
    const comma = token.indexOf(",");
    if (comma <= 0) continue;
    if (out.length === MAX_SIGNATURES) return undefined;
    out.push({ version: token.slice(0, comma), bytes: Buffer.from(token.slice(comma + 1), "base64") });
  }
  return out;
}

function matchesEd25519(candidates: SignatureCandidate[], content: Buffer, key: KeyObject): boolean {
  return candidates.some((candidate) => {
    if (candidate.bytes.length !== 64) return false;
    try {
      return verifyEd25519(null, content, key, candidate.bytes);
    } catch {
      return false;
    }
  });
}

function fail(reason: VerificationFailureReason, message: string): VerificationResult {
  return { ok: false, reason, message };
}

/**
 * What a Standard Webhooks signature covers: `${id}.${timestamp}.` followed by the body's exact bytes.
 * The one definition for verifying and for signing (`signWebhook`).
 */
export function signedContentOf(webhookId: string, timestamp: string, body: string | Uint8Array): Buffer {
  return Buffer.concat([
    Buffer.from(`${webhookId}.${timestamp}.`),
    typeof body === "string" ? Buffer.from(body) : body,
  ]);
}
