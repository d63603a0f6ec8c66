import { randomBytes } from "node:crypto";
import { type ParsedMessage, parsePollMessage } from "../../src/payload/message.ts";
import { type ParsedCall, parseCustomAction } from "../../src/payload/parse.ts";
import { OutboundMessage } from "../../src/targets/message.ts";
import { type VerifiedCall, verifySignature } from "../../src/verify/signature.ts";
import { fixturePayload, fixturePollMessage, signedHeaders, uniqueWebhookId } from "./signing.ts";

/**
 * Real VerifiedCalls and ParsedCalls for unit tests. Only verifySignature and parseCustomAction make
 * them (the types are nominal, and casts are banned by test/architecture), so tests get theirs the
 * way the gateway does: the body is signed with a test secret, then verified and parsed.
 */
const TEST_SECRET = `whsec_${randomBytes(32).toString("base64")}`;
const TEST_SECRET_BYTES = Buffer.from(TEST_SECRET.slice("whsec_".length), "base64");

/**
 * Signs `body` (v1, HMAC) and verifies it: a VerifiedCall carrying `headers` besides the webhook-* ones.
 *
 * @example
 * const call = await verifiedCallOf('{"type":"external_integration",...}', { "x-epilot-token": "t" });
 */
export async function verifiedCallOf(
  body: string | Uint8Array,
  headers: Record<string, string> = {},
  id: string = uniqueWebhookId(),
): Promise<VerifiedCall> {
  const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
  const signed = signedHeaders(bytes, { id, hmacSecret: TEST_SECRET, extraHeaders: headers });
  const result = await verifySignature(
    { headers: new Headers(signed), body: bytes },
    { hmacSecrets: [TEST_SECRET_BYTES], toleranceMs: 300_000 },
  );
  if (!result.ok) throw new Error(`test call did not verify: ${result.message}`);
  return result.call;
}

/**
 * The example payload (changed by `edit`), signed, verified and parsed: a ParsedCall as routes get it.
 *
 * @example
 * const call = await parsedCallOf((raw) => { raw.data.entity.status = "draft"; });
 */
export async function parsedCallOf(
  edit: ((raw: Record<string, any>) => void) | Record<string, unknown> = () => {},
  headers: Record<string, string> = {},
  id?: string,
): Promise<ParsedCall> {
  let raw: Record<string, any>;
  if (typeof edit === "function") {
    raw = fixturePayload();
    edit(raw);
  } else {
    raw = edit;
  }
  const result = parseCustomAction(await verifiedCallOf(JSON.stringify(raw), headers, id));
  if (!result.ok) throw new Error(`test payload did not parse: ${result.message}`);
  return result.parsed;
}

/**
 * An OutboundMessage as a route would hand it to its target, made the sanctioned way (from a real
 * ParsedCall): `body` and `payload` as given, `webhookId` the call's id.
 *
 * @example
 * const message = await outboundMessageOf({ body: { a: 1 }, payload: { data: { id: "a/b" } } });
 */
export async function outboundMessageOf(
  parts: { body: unknown; payload?: unknown; forwardedHeaders?: Record<string, string> },
  id?: string,
): Promise<OutboundMessage> {
  const parsed = await parsedCallOf(() => {}, {}, id);
  return OutboundMessage.fromCall(parsed, {
    body: parts.body,
    payload: parts.payload ?? parsed.payload,
    forwardedHeaders: parts.forwardedHeaders ?? {},
  });
}

/**
 * The example poll message (changed by `edit`), parsed as the poll source parses it: a ParsedMessage
 * as routes get it, leased by the poll entry `source`.
 *
 * @example
 * const message = parsedMessageOf((raw) => { raw.event_name = "contract.created"; });
 */
export function parsedMessageOf(
  edit: ((raw: Record<string, any>) => void) | Record<string, unknown> = () => {},
  source = "erp-feed",
): ParsedMessage {
  let raw: Record<string, any>;
  if (typeof edit === "function") {
    raw = fixturePollMessage();
    edit(raw);
  } else {
    raw = edit;
  }
  const result = parsePollMessage(raw, source);
  if (!result.ok) throw new Error(`test message did not parse: ${result.message}`);
  return result.parsed;
}
