import { describe, expect, test } from "bun:test";
import { fixturePollMessage } from "../../test/support/signing.ts";
import { ParsedMessage, parsePollMessage } from "./message.ts";
import { ParsedCall } from "./parse.ts";

function refused(edit: (raw: Record<string, any>) => void): string {
  const raw = fixturePollMessage();
  edit(raw);
  const result = parsePollMessage(raw, "erp-feed");
  if (result.ok) throw new Error("expected the message to be refused");
  return result.message;
}

describe("parsePollMessage", () => {
  test("the example message (epilot's shape) parses: the envelope typed, the payload and unknown fields as sent", () => {
    const raw = { ...fixturePollMessage(), delivered_by: "a field epilot adds later" };
    const result = parsePollMessage(raw, "erp-feed");
    if (!result.ok) throw new Error(result.message);
    const parsed = result.parsed;
    expect(parsed.kind).toBe("message");
    expect(parsed.source).toBe("erp-feed");
    expect(parsed.message as unknown).toEqual(raw);
    expect(parsed.message.event_id).toBe("01JDXK7PZ8H4N6Q2S0V3X5Z7B9");
    expect(parsed.message.mapping_version).toBeUndefined();
    expect(ParsedMessage.is(parsed)).toBe(true);
    expect(ParsedCall.is(parsed)).toBe(false);
    expect(ParsedMessage.is({ ...parsed })).toBe(false);
  });

  test("the outbox id is the duplicate key; the idempotency key is the event id", () => {
    const result = parsePollMessage(fixturePollMessage(), "erp-feed");
    if (!result.ok) throw new Error(result.message);
    expect(result.parsed.id).toBe("poll:5b0c7a4e-2f1d-4e6a-9c3b-8d7e6f5a4b21:01JDXK7PZ8H4N6Q2S0V3X5Z7B9");
    expect(result.parsed.idempotencyKey).toBe("01JDXK7PZ8H4N6Q2S0V3X5Z7B9");
    // The same event under another message id (epilot's rare race) is the same outbox event.
    const again = parsePollMessage({ ...fixturePollMessage(), id: "msg_other", lease_token: "lt_other" }, "erp-feed");
    expect(again.ok && again.parsed.id).toBe(result.parsed.id);
  });

  test("what expressions read is the message without its lease token", () => {
    const result = parsePollMessage(fixturePollMessage(), "erp-feed");
    if (!result.ok) throw new Error(result.message);
    expect(result.parsed.document).not.toHaveProperty("lease_token");
    expect(result.parsed.document).toMatchObject({
      id: fixturePollMessage().id,
      event_name: "contract.updated",
      org_id: "739224",
      group: "0",
      payload: { contract: { contract_number: "2026-0042" } },
    });
  });

  test("a numeric org_id and group become text", () => {
    const result = parsePollMessage({ ...fixturePollMessage(), org_id: 739224, group: 0 }, "erp-feed");
    expect(result.ok && [result.parsed.message.org_id, result.parsed.message.group]).toEqual(["739224", "0"]);
  });

  test("mapping_version, when epilot's transform made the payload, is kept", () => {
    const result = parsePollMessage({ ...fixturePollMessage(), mapping_version: "3f9a1c0b7d2e4a65" }, "erp-feed");
    expect(result.ok && result.parsed.document.mapping_version).toBe("3f9a1c0b7d2e4a65");
  });

  test("each missing or wrong envelope field is named, never its value", () => {
    expect(refused((raw) => delete raw.event_id)).toBe("not a poll message: event_id: is required");
    expect(refused((raw) => delete raw.lease_token)).toContain("lease_token: is required");
    expect(refused((raw) => delete raw.payload)).toContain("payload");
    expect(refused((raw) => (raw.use_case_id = "uc:with-colon"))).toContain("use_case_id: must not contain `:`");
    expect(refused((raw) => (raw.event_id = "évènement"))).toContain("event_id: must be printable ASCII");
    expect(refused((raw) => (raw.id = "x".repeat(257)))).toContain("id: must be at most 256 characters");
    expect(refused((raw) => (raw.enqueued_at = "yesterday"))).toContain("enqueued_at: must be an ISO 8601 time");
    const secret = refused((raw) => (raw.event_id = "secret value 4711"));
    expect(secret).not.toContain("4711");
  });

  test("something that is no object at all is refused", () => {
    for (const value of [null, "text", 42, [], undefined]) {
      const result = parsePollMessage(value, "erp-feed");
      expect(result.ok).toBe(false);
    }
  });
});
