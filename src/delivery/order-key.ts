import type { Logger } from "../log/logger.ts";
import type { ParsedInput } from "../payload/parse.ts";
import { ExpressionEvaluationError } from "../transform/expression.ts";
import { type CallAnswer, failure } from "./answer.ts";
import { expressionFailure } from "./prepare.ts";
import type { Route } from "./route.ts";

export type OrderKeyResult =
  /** `key` undefined: the event is not ordered (a call on a route without `delivery.order_key`). */
  { readonly ok: true; readonly key: string | undefined } | { readonly ok: false; readonly answer: CallAnswer };

/**
 * The order key an outbox event of `route` is stored with: `delivery.order_key` over what the
 * route's expressions read (the stripped payload or message); for a polled message without one, or
 * when it gives no value, the message's `group` (epilot orders by it). Events with the same key are
 * delivered one at a time, in the order they were stored (store/types.ts, `claim`).
 *
 * A call whose order key gives no value is refused (400), as an empty transform is: the route asked
 * for order, and an unordered event would break it silently. A failing expression is a 500, like
 * a failing transform.
 *
 * @example
 * const ordered = await orderKeyOf(parsed, route, prepared.message.payload, logger);
 * if (!ordered.ok) return ordered.answer;
 * await outbox.add(buildOutboxEvent(parsed, route, prepared.message, "deliver", Date.now(), undefined, { orderKey: ordered.key }));
 */
export async function orderKeyOf(
  parsed: ParsedInput,
  route: Route,
  stripped: unknown,
  logger: Logger,
): Promise<OrderKeyResult> {
  const group = parsed.kind === "message" ? parsed.message.group : undefined;
  const expression = route.delivery.orderKey;
  if (!expression) return { ok: true, key: group };
  let value: unknown;
  try {
    value = await expression.evaluate(stripped);
  } catch (error) {
    if (!(error instanceof ExpressionEvaluationError)) throw error;
    return { ok: false, answer: expressionFailure(error, route, "delivery.order_key", logger) };
  }
  const key = orderKeyText(value);
  if (key !== undefined) return { ok: true, key };
  if (group !== undefined) return { ok: true, key: group };
  return {
    ok: false,
    answer: failure(
      400,
      "bad_request",
      `The delivery.order_key of route ${route.name} produced no value for this payload`,
      { route: route.name },
    ),
  };
}

/** A key's text: scalars as text, objects and lists as JSON; nothing, null and "" are no key. */
export function orderKeyText(value: unknown): string | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  try {
    return JSON.stringify(value);
  } catch {
    return undefined;
  }
}
