import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fixturePayload, REPO_DIR } from "../../test/support/signing.ts";
import { LOCAL_WEBHOOK_ID, localInputOf } from "./local-input.ts";

describe("localInputOf", () => {
  test("a custom action payload becomes a custom_action input under the fixed local webhook-id, with no headers", () => {
    const result = localInputOf(fixturePayload());
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.input.kind).toBe("custom_action");
    expect(result.input.call.id).toBe(LOCAL_WEBHOOK_ID);
    expect(result.input.call.call).toMatchObject({ scheme: "unsigned", webhookId: "msg_local" });
    expect([...result.input.call.call.headers.keys()]).toEqual([]);
  });

  test("a Pollable Outbound message is named as such (not supported yet), anything else with the schema's words", () => {
    const poll: unknown = JSON.parse(readFileSync(join(REPO_DIR, "examples", "payloads", "poll-message.json"), "utf8"));
    expect(localInputOf(poll)).toEqual({
      ok: false,
      message: expect.stringContaining("a Pollable Outbound message (event_id, payload)"),
    });
    expect(localInputOf([1, 2])).toEqual({
      ok: false,
      message: expect.stringMatching(/^not a custom action payload: /),
    });
  });
});
