/** Brand that only `verifySignature` attaches; see DESIGN.md ("state in the type"). */
declare const VERIFIED: unique symbol;

/** The raw request as it arrived: headers and the body bytes, before anything trusts them. */
export interface IncomingCall {
  readonly headers: Headers;
  readonly body: Uint8Array;
}

/**
 * A call whose signature, timestamp and id have been checked. Only `verifySignature` produces one,
 * and the router, transforms and targets accept nothing else, so forwarding an unverified call
 * does not compile.
 */
export interface VerifiedCall extends IncomingCall {
  readonly webhookId: string;
  /** Seconds since the epoch, from `webhook-timestamp`. */
  readonly timestamp: number;
  /** Which signature matched: `v1a` (Ed25519) or `v1` (HMAC). */
  readonly scheme: "v1" | "v1a";
  readonly [VERIFIED]: true;
}
