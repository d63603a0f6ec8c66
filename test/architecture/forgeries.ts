/**
 * Attempts to forge the request path's nominal types. Each `@ts-expect-error` below asserts that the
 * line does NOT compile: `npm run typecheck` fails if one of them ever compiles again (an unused
 * `@ts-expect-error` is an error), and forgeries.test.ts checks each error is the one meant.
 *
 * The cast `{...} as VerifiedCall` is not here: TypeScript allows `as` from any type a value of the
 * target type could be seen as, so no nominal type can stop a cast. casts.test.ts refuses every cast
 * to these types in the code instead.
 */
import { prepareMessage } from "../../src/delivery/prepare.ts";
import type { Route } from "../../src/delivery/route.ts";
import { deliverSync } from "../../src/delivery/sync.ts";
import { silentLogger } from "../../src/log/logger.ts";
import type { ParsedMessage } from "../../src/payload/message.ts";
import { type ParsedCall, parseCustomAction } from "../../src/payload/parse.ts";
import type { VerifiedCall } from "../../src/verify/signature.ts";

export function forgeries(verified: VerifiedCall, route: Route, text: string): unknown[] {
  const payload = { type: "external_integration", data: { org_id: "1", entity: {} } } as const;
  const polled = {
    id: "msg_1",
    lease_token: "lt_1",
    org_id: "1",
    use_case_id: "uc",
    event_name: "contract.updated",
    event_id: "evt_1",
    group: "0",
    payload: {},
    enqueued_at: "2026-06-09T08:00:00Z",
  };
  const { lease_token: _, ...document } = polled;
  const message = {
    kind: "message",
    source: "feed",
    message: polled,
    document,
    id: "poll:uc:evt_1",
    idempotencyKey: "evt_1",
  } as const;
  return [
    // 2. JSON.parse gives unknown, not any (src/types.d.ts):
    // @ts-expect-error FORGERY json-parse
    ((call: VerifiedCall = JSON.parse(text)) => call)(),
    // 3. A copy with another body is no longer a VerifiedCall:
    // @ts-expect-error FORGERY spread-copy
    parseCustomAction({ ...verified, body: new Uint8Array([123, 125]) }),
    // 4. A hand-built ParsedCall:
    // @ts-expect-error FORGERY hand-built-parsed-call
    ((call: ParsedCall = { call: verified, payload, id: verified.webhookId }) => call)(),
    // 5. A target called with a plain object:
    // @ts-expect-error FORGERY plain-message
    route.target.deliver({ body: {}, payload, webhookId: "msg_forged", forwardedHeaders: {} }),
    // 6. deliverSync with a hand-built ParsedCall:
    // @ts-expect-error FORGERY deliver-sync-hand-built
    deliverSync({ call: verified, payload, id: verified.webhookId }, route, { logger: silentLogger }),
    // 7. An unsigned call (what explain and test read from a file) passed off as a verified one:
    // @ts-expect-error FORGERY unsigned-as-verified
    parseCustomAction({ headers: verified.headers, webhookId: "msg_local", scheme: "unsigned", body: verified.body }),
    // 7. A hand-built ParsedMessage (a message that did not come from the poll source's parser):
    // @ts-expect-error FORGERY hand-built-parsed-message
    ((parsed: ParsedMessage = message) => parsed)(),
    // 8. A route's shaping handed a hand-built message:
    // @ts-expect-error FORGERY prepare-hand-built-message
    prepareMessage(message, route, silentLogger),
  ];
}
