import { compileExpression, type CompiledExpression } from "../../transform/expression.ts";
import { TemplateValueError } from "../../transform/template.ts";

/** Text with `{{ <JSONata> }}` placeholders, for XML: values are escaped as they are placed. */
export interface XmlTextTemplate {
  readonly isStatic: boolean;
  /** `bindings` are JSONata variables (`$body`) next to the input. */
  render(input: unknown, bindings?: Record<string, unknown>): Promise<string>;
}

/** One `{{ }}` in a source text: where it is and its expression text. */
export interface Placeholder {
  readonly start: number;
  readonly end: number;
  readonly text: string;
  readonly expression: string;
}

const PLACEHOLDER = /\{\{([\s\S]*?)\}\}/g;

/** Every `{{ }}` in `source`, in order. */
export function findPlaceholders(source: string): Placeholder[] {
  return [...source.matchAll(PLACEHOLDER)].map((match) => ({
    start: match.index,
    end: match.index + match[0].length,
    text: match[0],
    expression: match[1]!.trim(),
  }));
}

/** `&`, `<`, `>`, `"`, `'` as references, and CR as `&#13;` so it survives parsing: safe in text and in attribute values. */
export function escapeXml(value: string): string {
  return value
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;")
    .replace(/\r/g, "&#13;");
}

/**
 * Compiles `{{ }}` placeholders (throws `ExpressionSyntaxError`). Unlike URL templates, an empty
 * string or `null` is a legitimate XML value (an empty element); only a placeholder whose
 * expression yields nothing at all fails the call, so a typo in a path cannot send an empty field.
 * Objects and arrays are placed as JSON text.
 *
 * @example
 * const name = compileXmlTemplate("<Name>{{ data.entity.name }}</Name>", escapeXml);
 * await name.render({ data: { entity: { name: "A & B" } } }); // "<Name>A &amp; B</Name>"
 */
export function compileXmlTemplate(source: string, encode: (value: string) => string): XmlTextTemplate {
  type Part = { literal: string } | { expression: CompiledExpression; placeholder: string };
  const parts: Part[] = [];
  let last = 0;
  for (const placeholder of findPlaceholders(source)) {
    if (placeholder.start > last) parts.push({ literal: source.slice(last, placeholder.start) });
    parts.push({ expression: compileExpression(placeholder.expression), placeholder: placeholder.text });
    last = placeholder.end;
  }
  if (last < source.length) parts.push({ literal: source.slice(last) });
  const isStatic = parts.every((part) => "literal" in part);

  return {
    isStatic,
    async render(input, bindings) {
      if (isStatic) return source;
      let out = "";
      for (const part of parts) {
        if ("literal" in part) {
          out += part.literal;
          continue;
        }
        const value = await part.expression.evaluate(input, bindings);
        if (value === undefined) throw new TemplateValueError(`placeholder ${part.placeholder} has no value for this payload`, part.placeholder);
        const text = value === null ? "" : typeof value === "object" ? JSON.stringify(value) : String(value);
        out += encode(text);
      }
      return out;
    },
  };
}
