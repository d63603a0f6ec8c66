import { type CompiledTemplate, compileTemplate } from "../../transform/template.ts";

export { findPlaceholders, type Placeholder } from "../../transform/template.ts";

/** Text with `{{ <JSONata> }}` placeholders, for XML: values are escaped as they are placed. */
export type XmlTextTemplate = CompiledTemplate;

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
 * Compiles `{{ }}` placeholders for XML (throws `ExpressionSyntaxError`). Unlike URL templates, an
 * empty string or `null` is a legitimate XML value (an empty element); only a placeholder whose
 * expression yields nothing at all fails the call, so a typo in a path cannot send an empty field.
 *
 * @example
 * const name = compileXmlTemplate("<Name>{{ data.entity.name }}</Name>", escapeXml);
 * await name.render({ data: { entity: { name: "A & B" } } }); // "<Name>A &amp; B</Name>"
 */
export function compileXmlTemplate(source: string, encode: (value: string) => string): XmlTextTemplate {
  return compileTemplate(source, { encode, allowEmpty: true });
}
