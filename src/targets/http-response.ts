import { DEFAULT_MAX_JSON_DEPTH, exceedsJsonDepth } from "../kit/json-depth.ts";

/**
 * `body` for `response.*` expressions: parsed when the answer says (or looks like) JSON, text
 * otherwise. An answer nested deeper than {@link DEFAULT_MAX_JSON_DEPTH} levels stays text, like
 * any answer that does not parse: walking it would stall the gateway (see kit/json-depth.ts).
 */
export function parseResponseBody(text: string, contentType: string | undefined): unknown {
  const looksJson = contentType?.includes("json") || /^\s*[{[]/.test(text);
  if (looksJson && text.trim() !== "" && !exceedsJsonDepth(text, DEFAULT_MAX_JSON_DEPTH)) {
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  return text;
}
