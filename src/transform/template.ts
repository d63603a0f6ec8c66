import { type CompiledExpression, compileExpression } from "./expression.ts";

/** A string with `{{ <JSONata> }}` placeholders, compiled once. */
export interface CompiledTemplate {
  readonly source: string;
  /** True when the string has no placeholder, so callers can skip evaluation entirely. */
  readonly isStatic: boolean;
  /** `bindings` are JSONata variables (`$body`) next to the input. */
  render(input: unknown, bindings?: Record<string, unknown>): Promise<string>;
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

export interface TemplateOptions {
  /** Applied to each placeholder value (percent-encoding for URLs, escaping for XML). */
  encode?: (value: string) => string;
  /**
   * Whether `null` and `""` are values (placed as an empty string). In a URL or header they are
   * not: an empty path segment or token would reach the wrong place. In XML an empty element is
   * legitimate. A placeholder that yields nothing at all (`undefined`) always fails the call.
   */
  allowEmpty?: boolean;
}

type Part = { literal: string } | { expression: CompiledExpression; placeholder: string };

/**
 * Compiles `http://erp/api/contracts/{{ data.entity.contract_number }}` (throws
 * `ExpressionSyntaxError`). A value that is missing fails the call rather than silently becoming
 * an empty path segment; objects and arrays are placed as JSON text.
 *
 * @example
 * const url = compileTemplate("http://erp/c/{{ data.entity._id }}", { encode: encodeURIComponent });
 * await url.render(payload); // "http://erp/c/3f2c1a90-..."
 */
export function compileTemplate(source: string, options: TemplateOptions = {}): CompiledTemplate {
  const parts: Part[] = [];
  let last = 0;
  for (const placeholder of findPlaceholders(source)) {
    if (placeholder.start > last) parts.push({ literal: source.slice(last, placeholder.start) });
    parts.push({ expression: compileExpression(placeholder.expression), placeholder: placeholder.text });
    last = placeholder.end;
  }
  if (last < source.length) parts.push({ literal: source.slice(last) });
  const encode = options.encode ?? ((value: string) => value);
  const allowEmpty = options.allowEmpty ?? false;
  const isStatic = parts.every((part) => "literal" in part);

  return {
    source,
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
        if (value === undefined || (!allowEmpty && (value === null || value === ""))) {
          throw new TemplateValueError(
            `placeholder ${part.placeholder} has no value for this payload`,
            part.placeholder,
          );
        }
        out += encode(value === null ? "" : typeof value === "object" ? JSON.stringify(value) : String(value));
      }
      return out;
    },
  };
}
