import type { LocalInput } from "../gateway/local-run.ts";
import { isRecord } from "../kit/records.ts";
import { parseUnsignedPayload } from "../payload/parse.ts";

/**
 * The webhook-id of every call `explain` and `test` make from a file (it goes to the target as
 * the idempotency key): fixed, so that a route test can expect it.
 */
export const LOCAL_WEBHOOK_ID = "msg_local";

export type LocalInputResult = { ok: true; input: LocalInput } | { ok: false; message: string };

/**
 * Turns the JSON of a payload file into what the local runner takes. The only place, besides the
 * gateway's own parse step, where a ParsedCall is made, and the only caller of
 * `parseUnsignedPayload`: test/architecture lets only src/cli/explain.ts and src/cli/test.ts import
 * this file, so nothing that serves can turn unsigned bytes into a call. A Pollable Outbound message
 * becomes a second kind of input here.
 *
 * @example
 * const result = localInputOf(JSON.parse(text));
 * if (result.ok) await runner.explain(result.input);
 */
export function localInputOf(json: unknown): LocalInputResult {
  if (isRecord(json) && json.type !== "external_integration" && "event_id" in json && "payload" in json) {
    return {
      ok: false,
      message:
        "this is a Pollable Outbound message (event_id, payload), which this version cannot run yet; give a custom action payload (type: external_integration)",
    };
  }
  const parsed = parseUnsignedPayload(json, { webhookId: LOCAL_WEBHOOK_ID, headers: new Headers() });
  if (!parsed.ok) return { ok: false, message: parsed.message };
  return { ok: true, input: { kind: "custom_action", call: parsed.parsed } };
}
