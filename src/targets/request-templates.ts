import { InvalidConfigValue } from "../kit/config-errors.ts";
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
  const headerTemplates = Object.entries(headers).map(([name, value]) => {
    checkHeaderText(value, ["headers", name]);
    return { name: name.toLowerCase(), value: compileTargetTemplate(value, ["headers", name], headerValueGuard(name)) };
  });
  return {
    async render(payload) {
      try {
        const rendered: Record<string, string> = {};
        for (const header of headerTemplates) rendered[header.name] = await header.value.render(payload);
        return { ok: true, value: { url: new URL(await urlTemplate.render(payload)), headers: rendered } };
      } catch (error) {
        if (error instanceof TemplateValueError) return { ok: false, reason: error.message };
        // A placeholder whose expression fails for this payload (`{{ data.n + 1 }}` with a text n):
        // the payload's fault, answered 400, never a failure of the target.
        if (error instanceof ExpressionEvaluationError) {
          return { ok: false, reason: `a {{ }} placeholder failed for this payload: ${error.message}` };
        }
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

/**
 * Checks the URL with each placeholder stood in for by a plain value, so mistakes surface at load.
 * Placeholders may stand only in the path, query or fragment: payload data must never choose the
 * scheme, host or port a call goes to (`{{ data.host }}` could point it at any machine).
 */
export function checkUrlShape(source: string, path: PropertyKey[]): void {
  const authority = /^([^:/?#]*:\/\/)?([^/?#]*)/.exec(source)!;
  if ((authority[1] ?? "").includes("{{") || authority[2]!.includes("{{") || /^\{\{/.test(source)) {
    throw new InvalidConfigValue(
      `may hold {{ }} placeholders only in the path, query or fragment, not in the scheme, host or port (got "${source}")`,
      path,
    );
  }
  let parsed: URL;
  try {
    parsed = new URL(source.replace(/\{\{[\s\S]*?\}\}/g, "x"));
  } catch {
    throw new InvalidConfigValue(`must be an absolute http(s) URL (got "${source}")`, path);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:")
    throw new InvalidConfigValue(`must be an absolute http(s) URL (got "${source}")`, path);
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

/**
 * What a header value may hold: no control characters (C0 but tab, DEL), which could split or
 * confuse the request, and nothing beyond ISO-8859-1, which HTTP cannot carry (a value such as
 * "Łukasz" must be encoded by the route: `{{ $encodeUrlComponent(...) }}`, or RFC 8187's
 * `UTF-8''{{ $encodeUrlComponent(...) }}`). Characters up to U+00FF go out as ISO-8859-1 bytes.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is what it is for.
const CONTROL_CHARACTER = /[\u0000-\u0008\u000a-\u001f\u007f]/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: the range is all of ISO-8859-1, controls included.
const BEYOND_LATIN1 = /[^\u0000-\u00ff]/;

/** A placeholder value for header `name`: refused (the payload's fault, 400) when HTTP cannot carry it. */
function headerValueGuard(name: string): (value: string) => string {
  return (value) => {
    const control = CONTROL_CHARACTER.exec(value);
    if (control) {
      throw new TemplateValueError(
        `header ${name}: a value holds the control character ${codePoint(control[0])}`,
        value,
      );
    }
    const beyond = BEYOND_LATIN1.exec(value);
    if (beyond) {
      throw new TemplateValueError(
        `header ${name}: a value holds ${codePoint(beyond[0])}, which an HTTP header cannot carry; encode it in the route, e.g. {{ $encodeUrlComponent(...) }}`,
        value,
      );
    }
    return value;
  };
}

/** The text of a configured header value (around its placeholders) follows the same rules, checked at load. */
function checkHeaderText(value: string, path: PropertyKey[]): void {
  const literal = value.replace(/\{\{[\s\S]*?\}\}/g, "");
  const bad = CONTROL_CHARACTER.exec(literal) ?? BEYOND_LATIN1.exec(literal);
  if (bad) throw new InvalidConfigValue(`holds ${codePoint(bad[0])}, which an HTTP header cannot carry`, path);
}

function codePoint(character: string): string {
  return `U+${character.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}`;
}
