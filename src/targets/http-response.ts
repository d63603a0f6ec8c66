/** `body` for `response.*` expressions: parsed when the answer says (or looks like) JSON, text otherwise. */
export function parseResponseBody(text: string, contentType: string | undefined): unknown {
  const looksJson = contentType?.includes("json") || /^\s*[{[]/.test(text);
  if (looksJson && text.trim() !== "") {
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  return text;
}
