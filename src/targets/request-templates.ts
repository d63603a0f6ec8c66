import { InvalidConfigValue } from "../config/errors.ts";
import { ExpressionEvaluationError } from "../transform/expression.ts";
import { type CompiledTemplate, compileTemplate, TemplateValueError } from "../transform/template.ts";

/** RFC 9110 token: what a header name may be. */
export const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** The URL and headers of one outbound request, with `{{ }}` placeholders filled for a payload. */
export interface RenderedRequestLine {
  readonly url: URL;
  /** Lower-cased names, as the configured values rendered. */
  readonly headers: Record<string, string>;
}

/** The target's `url` and `headers`, compiled once at load. */
export interface CompiledRequestLine {
  /** `invalid` when this payload cannot fill a placeholder; the payload's fault, not the target's. */
  render(payload: unknown): Promise<{ ok: true; value: RenderedRequestLine } | { ok: false; reason: string }>;
}

/**
 * Compiles a target's `url` and `headers`. URL placeholders are percent-encoded so a value cannot
 * change the path or host; header values may not hold line breaks, so a value cannot add headers.
 * Mistakes throw `InvalidConfigValue` at `url` or `headers.<name>`.
 *
 * @example
 * const line = compileRequestLine("http://erp/c/{{ data.entity._id }}", { "X-Org": "{{ data.org_id }}" });
 * const rendered = await line.render(payload); // { ok: true, value: { url, headers: { "x-org": "739224" } } }
 */
export function compileRequestLine(url: string, headers: Readonly<Record<string, string>>): CompiledRequestLine {
  const urlTemplate = compileTargetTemplate(url, ["url"], encodeUrlValue);
  checkUrlShape(url, ["url"]);
  const headerTemplates = Object.entries(headers).map(([name, value]) => ({
    name: name.toLowerCase(),
    value: compileTargetTemplate(value, ["headers", name], headerValueGuard),
  }));
  return {
    async render(payload) {
      try {
        const rendered: Record<string, string> = {};
        for (const header of headerTemplates) rendered[header.name] = await header.value.render(payload);
        return { ok: true, value: { url: new URL(await urlTemplate.render(payload)), headers: rendered } };
      } catch (error) {
        if (error instanceof TemplateValueError) return { ok: false, reason: error.message };
        // As for SOAP placeholders: a JSONata error, or one stopped at the time limit, fails this payload.
        if (error instanceof ExpressionEvaluationError)
          return { ok: false, reason: `a {{ }} placeholder failed${error.code ? ` (JSONata ${error.code})` : ""}` };
        if (error instanceof TypeError) return { ok: false, reason: "the target URL is not valid for this payload" };
        throw error;
      }
    },
  };
}

/** Compiles `{{ }}` placeholders in a target key; a syntax error is reported at `path`. */
export function compileTargetTemplate(
  source: string,
  path: PropertyKey[],
  encode: (value: string) => string,
): CompiledTemplate {
  try {
    return compileTemplate(source, { encode });
  } catch (error) {
    throw new InvalidConfigValue(`invalid {{ }} expression: ${(error as Error).message}`, path);
  }
}

/** Checks the URL with each placeholder stood in for by a plain value, so mistakes surface at load. */
export function checkUrlShape(source: string, path: PropertyKey[]): void {
  let parsed: URL;
  try {
    parsed = new URL(source.replace(/\{\{[\s\S]*?\}\}/g, "x"));
  } catch {
    throw new InvalidConfigValue("must be an absolute http(s) URL", path);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:")
    throw new InvalidConfigValue("must be an absolute http(s) URL", path);
}

/**
 * Percent-encodes a placeholder value for a URL. `.` and `..` stay dot segments even when encoded
 * (URL parsers resolve `%2e%2e`), so a value that is only dots could climb the path: refuse it.
 */
function encodeUrlValue(value: string): string {
  if (/^(\.|%2e){1,2}$/i.test(value))
    throw new TemplateValueError(`URL placeholder value "${value}" would change the path`, value);
  return encodeURIComponent(value);
}

function headerValueGuard(value: string): string {
  // A CR or LF from the payload would let it smuggle headers into the legacy request.
  if (/[\r\n\0]/.test(value)) throw new TemplateValueError("header value holds a line break", value);
  return value;
}
