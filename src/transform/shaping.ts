import { type CompiledExpression, ExpressionEvaluationError } from "./expression.ts";
import { type StripPath, stripPaths } from "./strip.ts";

/** What a route does to a payload before anything is sent: `strip`, `skip_when`/`skip_reason`, `transform`. */
export interface Shaping {
  /** Removed first, so nothing after (expressions, logs, the outbox) sees them. */
  readonly strip: readonly StripPath[];
  readonly skipWhen?: CompiledExpression | undefined;
  readonly skipReason?: CompiledExpression | undefined;
  readonly transform?: CompiledExpression | undefined;
}

/** The expression of a route that failed, as operators know it from the config. */
export type ShapingStage = "skip_when" | "skip_reason" | "transform";

export type ShapeResult =
  /** `body` is the transform's result (the stripped payload without a transform); `stripped` what placeholders read. */
  | { readonly kind: "shaped"; readonly body: unknown; readonly stripped: unknown }
  /** `skip_when` held: nothing is sent. */
  | { readonly kind: "skipped"; readonly reason: string | undefined }
  /** An expression failed at run time; `error` is safe to log (no payload values). */
  | { readonly kind: "failed"; readonly stage: ShapingStage; readonly error: ExpressionEvaluationError }
  /** The transform produced nothing for this payload. */
  | { readonly kind: "empty" };

/**
 * Applies a route's shaping to a payload: strip, then `skip_when` (and `skip_reason` when it holds),
 * then `transform`. The payload itself is not changed (strip copies what it removes from).
 *
 * @example
 * const shaped = await shapePayload(payload, { strip: [parseStripPath("data.app_options")], transform });
 * if (shaped.kind === "shaped") send(shaped.body);
 */
export async function shapePayload(payload: unknown, shaping: Shaping): Promise<ShapeResult> {
  const stripped = stripPaths(payload, shaping.strip);
  let stage: ShapingStage = "skip_when";
  try {
    if (shaping.skipWhen && (await shaping.skipWhen.evaluate(stripped)) === true) {
      stage = "skip_reason";
      const reason = shaping.skipReason ? await shaping.skipReason.evaluate(stripped) : undefined;
      return { kind: "skipped", reason: typeof reason === "string" && reason !== "" ? reason : undefined };
    }
    stage = "transform";
    const body = shaping.transform ? await shaping.transform.evaluate(stripped) : stripped;
    if (body === undefined) return { kind: "empty" };
    return { kind: "shaped", body, stripped };
  } catch (error) {
    if (!(error instanceof ExpressionEvaluationError)) throw error;
    return { kind: "failed", stage, error };
  }
}
