import { compileExpression, type CompiledExpression } from "./expression.ts";

/** A string with `{{ <JSONata> }}` placeholders, compiled once. */
export interface CompiledTemplate {
  readonly source: string;
  /** True when the string has no placeholder, so callers can skip evaluation entirely. */
  readonly isStatic: boolean;
  render(input: unknown): Promise<string>;
}

/** A placeholder whose value is missing or unusable for this payload. */
export class TemplateValueError extends Error {
  constructor(
    message: string,
    readonly placeholder: string,
  ) {
    super(message);
    this.name = "TemplateValueError";
  }
}

type Part = { literal: string } | { expression: CompiledExpression; placeholder: string };

const PLACEHOLDER = /\{\{([\s\S]*?)\}\}/g;

/**
 * Compiles `http://erp/api/contracts/{{ data.entity.contract_number }}`.
 * `encode` is applied to each placeholder value (percent-encoding for URLs); a value that is
 * missing fails the call rather than silently becoming an empty path segment.
 *
 * @example
 * const url = compileTemplate("http://erp/c/{{ data.entity._id }}", { encode: encodeURIComponent });
 * await url.render(payload); // "http://erp/c/3f2c1a90-..."
 */
export function compileTemplate(source: string, options: { encode?: (value: string) => string } = {}): CompiledTemplate {
  const parts: Part[] = [];
  let last = 0;
  for (const match of source.matchAll(PLACEHOLDER)) {
    if (match.index > last) parts.push({ literal: source.slice(last, match.index) });
    parts.push({ expression: compileExpression(match[1]!.trim()), placeholder: match[0] });
    last = match.index + match[0].length;
  }
  if (last < source.length) parts.push({ literal: source.slice(last) });
  const encode = options.encode ?? ((value: string) => value);
  const isStatic = parts.every((part) => "literal" in part);

  return {
    source,
    isStatic,
    async render(input) {
      if (isStatic) return source;
      let out = "";
      for (const part of parts) {
        if ("literal" in part) {
          out += part.literal;
          continue;
        }
        const value = await part.expression.evaluate(input);
        if (value === undefined || value === null || value === "") {
          throw new TemplateValueError(`placeholder ${part.placeholder} has no value for this payload`, part.placeholder);
        }
        out += encode(typeof value === "object" ? JSON.stringify(value) : String(value));
      }
      return out;
    },
  };
}
