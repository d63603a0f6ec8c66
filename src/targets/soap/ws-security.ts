import { createHash, randomBytes, randomUUID } from "node:crypto";
import { mustUnderstandAttributes, type XmlNode } from "./envelope.ts";

const WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
const WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
const TOKEN_PROFILE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0";
const BASE64_BINARY = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary";

export interface UsernameTokenOptions {
  readonly username: string;
  readonly password: string;
  readonly passwordType: "PasswordText" | "PasswordDigest";
  /** Send `wsse:Nonce` and `wsu:Created` with PasswordText too (PasswordDigest always has them). */
  readonly nonce: boolean;
  /** When set, a `wsu:Timestamp` valid this long is added (servers that require one). */
  readonly timestampTtlMs?: number;
  readonly mustUnderstand: boolean;
  readonly envelopeNamespace: string;
}

/**
 * The `wsse:Security` header with a UsernameToken (OASIS Username Token Profile 1.0). With
 * PasswordDigest the password itself is never sent: `Base64(SHA-1(nonce + created + password))`,
 * with a fresh 16-byte nonce and the current time per call, so a captured header cannot be replayed
 * once the server's window has passed.
 *
 * @example
 * serializeXml([usernameToken({ username: "gw", password: "s3cret", passwordType: "PasswordDigest", nonce: true,
 *   mustUnderstand: true, envelopeNamespace: SOAP11_ENVELOPE })]);
 */
export function usernameToken(options: UsernameTokenOptions, now = new Date()): XmlNode {
  const created = now.toISOString();
  const digest = options.passwordType === "PasswordDigest";
  const nonce = digest || options.nonce ? randomBytes(16) : undefined;
  const password = digest ? passwordDigest(nonce!, created, options.password) : options.password;

  const token: XmlNode = {
    name: "wsse:UsernameToken",
    attributes: { "wsu:Id": `UsernameToken-${randomUUID()}` },
    children: [
      { name: "wsse:Username", text: options.username },
      { name: "wsse:Password", attributes: { Type: `${TOKEN_PROFILE}#${options.passwordType}` }, text: password },
      ...(nonce
        ? [
            { name: "wsse:Nonce", attributes: { EncodingType: BASE64_BINARY }, text: nonce.toString("base64") },
            { name: "wsu:Created", text: created },
          ]
        : []),
    ],
  };
  const timestamp: XmlNode[] =
    options.timestampTtlMs !== undefined
      ? [
          {
            name: "wsu:Timestamp",
            attributes: { "wsu:Id": `TS-${randomUUID()}` },
            children: [
              { name: "wsu:Created", text: created },
              { name: "wsu:Expires", text: new Date(now.getTime() + options.timestampTtlMs).toISOString() },
            ],
          },
        ]
      : [];
  return {
    name: "wsse:Security",
    attributes: {
      "xmlns:wsse": WSSE,
      "xmlns:wsu": WSU,
      ...(options.mustUnderstand ? mustUnderstandAttributes(options.envelopeNamespace) : {}),
    },
    children: [...timestamp, token],
  };
}

/** `Base64(SHA-1(nonce bytes + created + password))`, as the Username Token Profile defines it. */
export function passwordDigest(nonce: Buffer, created: string, password: string): string {
  return createHash("sha1")
    .update(Buffer.concat([nonce, Buffer.from(created, "utf8"), Buffer.from(password, "utf8")]))
    .digest("base64");
}

/**
 * The text of the `wsse:Password` element in a header made by {@link usernameToken}: the password
 * (PasswordText) or its digest (PasswordDigest), both credentials that `explain` shows as `***`.
 *
 * @example
 * passwordTextOf(usernameToken(options)); // "s3cret"
 */
export function passwordTextOf(security: XmlNode): string | undefined {
  const token = security.children?.find((child) => child.name === "wsse:UsernameToken");
  return token?.children?.find((child) => child.name === "wsse:Password")?.text;
}
