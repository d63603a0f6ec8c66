import { describe, expect, test } from "bun:test";
import { passwordDigest as nodeSoapDigest } from "soap";
import { serializeXml } from "./envelope.ts";
import { SOAP11_ENVELOPE } from "./soap-version.ts";
import { passwordDigest, type UsernameTokenOptions, usernameToken } from "./ws-security.ts";
import { attributeValue, childElements, firstChild, parseXmlTree, textContent } from "./xml-tree.ts";

const WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
const options: UsernameTokenOptions = {
  username: "gateway",
  password: "s3cr&t<",
  passwordType: "PasswordText",
  nonce: true,
  mustUnderstand: true,
  envelopeNamespace: SOAP11_ENVELOPE,
};
const token = (overrides: Partial<UsernameTokenOptions> = {}, now?: Date) => {
  const security = parseXmlTree(serializeXml([usernameToken({ ...options, ...overrides }, now)]));
  const usernameToken_ = firstChild(security, "UsernameToken")!;
  const part = (name: string) => firstChild(usernameToken_, name);
  return { security, part, text: (name: string) => (part(name) ? textContent(part(name)!) : undefined) };
};

describe("usernameToken", () => {
  test("PasswordText: the password (escaped on the wire), a Nonce and Created, mustUnderstand", () => {
    const { security, part, text } = token({}, new Date("2026-11-20T09:14:03.512Z"));
    expect(security).toMatchObject({ localName: "Security", namespace: WSSE });
    expect(attributeValue(security, "mustUnderstand", SOAP11_ENVELOPE)).toBe("1");
    expect(text("Username")).toBe("gateway");
    expect(text("Password")).toBe("s3cr&t<");
    expect(attributeValue(part("Password"), "Type")).toEndWith("#PasswordText");
    expect(Buffer.from(text("Nonce")!, "base64")).toHaveLength(16);
    expect(text("Created")).toBe("2026-11-20T09:14:03.512Z");
  });

  test("PasswordText without nonce sends only Username and Password", () => {
    const { part } = token({ nonce: false, mustUnderstand: false });
    expect(part("Nonce")).toBeUndefined();
    expect(part("Created")).toBeUndefined();
  });

  test("PasswordDigest: Base64(SHA-1(nonce + created + password)), as node-soap's server computes it; never the password", () => {
    const { part, text } = token({ passwordType: "PasswordDigest", nonce: false });
    expect(attributeValue(part("Password"), "Type")).toEndWith("#PasswordDigest");
    expect(text("Password")).toBe(nodeSoapDigest(text("Nonce")!, text("Created")!, "s3cr&t<"));
    expect(text("Password")).not.toContain("s3cr");
    expect(passwordDigest(Buffer.alloc(16), "2026-01-01T00:00:00Z", "pw")).toBe(
      nodeSoapDigest(Buffer.alloc(16).toString("base64"), "2026-01-01T00:00:00Z", "pw"),
    );
  });

  test("a fresh nonce per call", () => {
    const nonces = new Set(Array.from({ length: 20 }, () => token({ passwordType: "PasswordDigest" }).text("Nonce")));
    expect(nonces.size).toBe(20);
  });

  test("timestamp: wsu:Timestamp with Created and Expires", () => {
    const { security } = token({ timestampTtlMs: 300_000 }, new Date("2026-11-20T09:00:00.000Z"));
    const timestamp = childElements(security, "Timestamp")[0]!;
    expect(textContent(firstChild(timestamp, "Created")!)).toBe("2026-11-20T09:00:00.000Z");
    expect(textContent(firstChild(timestamp, "Expires")!)).toBe("2026-11-20T09:05:00.000Z");
  });
});
