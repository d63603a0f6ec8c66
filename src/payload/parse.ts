import { DEFAULT_MAX_JSON_DEPTH, exceedsJsonDepth } from "../kit/json-depth.ts";
import type { VerifiedCall } from "../verify/verified-call.ts";
import { type CustomActionPayload, checkCustomActionPayload, describePayloadIssues } from "./schema.ts";

/** A verified call whose body is a custom action payload; the only input routing and delivery take. */
export interface ParsedCall {
  readonly call: VerifiedCall;
  readonly payload: CustomActionPayload;
}

export type ParseResult = { ok: true; parsed: ParsedCall } | { ok: false; message: string };

export interface ParseOptions {
  /** `server.max_json_depth`: a body nested deeper is refused before it is decoded or parsed. */
  readonly maxDepth: number;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Parses the verified body once: depth, UTF-8, JSON, then the custom action schema (unknown fields kept).
 *
 * @example
 * const result = parseCustomAction(verified, { maxDepth: 64 });
 * if (!result.ok) return badRequest(result.message);
 */
export function parseCustomAction(
  call: VerifiedCall,
  options: ParseOptions = { maxDepth: DEFAULT_MAX_JSON_DEPTH },
): ParseResult {
  if (exceedsJsonDepth(call.body, options.maxDepth))
    return { ok: false, message: `the body is nested deeper than ${options.maxDepth} levels` };
  let text: string;
  try {
    text = utf8.decode(call.body);
  } catch {
    return { ok: false, message: "body is not valid UTF-8" };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return { ok: false, message: `body is not JSON: ${(error as Error).message}` };
  }
  const checked = checkCustomActionPayload(json);
  if (!checked.ok)
    return { ok: false, message: `not a custom action payload: ${describePayloadIssues(checked.error)}` };
  return { ok: true, parsed: { call, payload: checked.payload } };
}
