import { Buffer } from "node:buffer";
import { redactUrl } from "../kit/urls.ts";
import { redact, redactText } from "../log/redact.ts";
import type { AttemptRecord } from "../store/types.ts";
import type { TargetOutcome, TargetResponse } from "../targets/types.ts";

/** How much of the target's answer an attempt keeps (bytes of UTF-8). */
export const ANSWER_EXCERPT_BYTES = 1024;
/** Text is redacted over a window this much larger than the excerpt, so that a secret cut by the excerpt's end is still found whole. */
const REDACTION_WINDOW_BYTES = 8 * ANSWER_EXCERPT_BYTES;

/**
 * What an attempt at the deliver stage keeps of the target's side, for the operator (`dlq show`,
 * the admin API): the URL the request went to with its credentials hidden, and the first KB of the
 * answer, redacted (values under secret-looking names, credentials, JWTs). Never sent to epilot.
 *
 * @example
 * const attempt = { at, stage: "deliver", outcome: "target_failed", status: 400, ...targetSide(outcome) };
 * // { ..., url: "http://erp.internal/api/contracts/2026-0042", answer: '{"error":"contract number unknown"}' }
 */
export function targetSide(outcome: TargetOutcome): Pick<AttemptRecord, "url" | "answer" | "answerBytes"> {
  const url = "url" in outcome && outcome.url ? redactUrl(outcome.url.href) : undefined;
  const answer = outcome.kind === "delivered" || outcome.kind === "rejected" ? answerExcerpt(outcome.response) : {};
  return { ...(url !== undefined ? { url } : {}), ...answer };
}

/**
 * The first KB of an answer's body, redacted; `answerBytes` says how long the whole was when it was cut.
 *
 * @example
 * answerExcerpt({ status: 400, headers: {}, body: { error: "contract number unknown", token: "x" } });
 * // { answer: '{"error":"contract number unknown","token":"[redacted]"}' }
 */
export function answerExcerpt(response: TargetResponse): Pick<AttemptRecord, "answer" | "answerBytes"> {
  const { body } = response;
  if (body === undefined || body === null || body === "") return {};
  const text =
    typeof body === "string"
      ? redactText(cutBytes(body, REDACTION_WINDOW_BYTES))
      : redactText(JSON.stringify(redact(body)));
  const bytes = Buffer.byteLength(text, "utf8");
  if (bytes <= ANSWER_EXCERPT_BYTES && (typeof body !== "string" || body.length <= REDACTION_WINDOW_BYTES)) {
    return { answer: text };
  }
  const total = typeof body === "string" ? Buffer.byteLength(body, "utf8") : bytes;
  return { answer: cutBytes(text, ANSWER_EXCERPT_BYTES), answerBytes: total };
}

/** The longest prefix of `text` within `maxBytes` of UTF-8, never half a character. */
function cutBytes(text: string, maxBytes: number): string {
  if (text.length * 3 <= maxBytes) return text;
  const bytes = Buffer.from(text, "utf8");
  if (bytes.length <= maxBytes) return text;
  let end = maxBytes;
  // Back off continuation bytes (10xxxxxx) so that the cut falls between characters.
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString("utf8");
}
