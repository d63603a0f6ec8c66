/**
 * Where a character of a YAML string value sits in the file, so that an error found inside the
 * value (a JSONata syntax error at character 97 of a `|` block) is reported at its own line and
 * column. The value is decoded again from its source with the offset of every character: block
 * literals line by line, quoted strings with their escapes and line folding; anything else (or a
 * value changed by `${VAR}` since) by walking source and value side by side.
 */

/** The part of a yaml Scalar node this needs. */
export interface ScalarSource {
  readonly type?: string | undefined;
  readonly range?: readonly [number, number, number] | null | undefined;
  readonly value: unknown;
}

/**
 * The offset in `text` of character `index` of the node's string value; undefined when it cannot
 * be told (then the caller points at the value's start).
 *
 * @example
 * sourceOffsetOf("t: |\n  a +\n", node, 2); // 9: the "+" on line 2
 */
export function sourceOffsetOf(text: string, node: ScalarSource, index: number): number | undefined {
  const range = node.range;
  if (!range || typeof node.value !== "string" || index < 0 || index >= node.value.length) return undefined;
  const value = node.value;
  const [start, end] = range;
  const decoded = decode(text, node.type, start, end);
  if (decoded?.chars.startsWith(value)) return decoded.offsets[index];
  return alongside(text, value, decoded?.contentStart ?? start, end, index);
}

interface Decoded {
  /** The value as decoded from the source. */
  readonly chars: string;
  /** The source offset of each character of `chars`. */
  readonly offsets: readonly number[];
  /** Where the content begins (after a block header or an opening quote). */
  readonly contentStart: number;
}

function decode(text: string, type: string | undefined, start: number, end: number): Decoded | undefined {
  if (type === "BLOCK_LITERAL") return decodeLiteral(text, start, end);
  if (type === "QUOTE_DOUBLE" || type === "QUOTE_SINGLE")
    return decodeQuoted(text, start, end, type === "QUOTE_DOUBLE");
  if (type === "BLOCK_FOLDED") {
    const newline = text.indexOf("\n", start);
    return newline < 0 || newline >= end ? undefined : { chars: "", offsets: [], contentStart: newline + 1 };
  }
  return undefined;
}

/** `|` blocks: each line without its indentation, then its line break. */
function decodeLiteral(text: string, start: number, end: number): Decoded | undefined {
  const newline = text.indexOf("\n", start);
  if (newline < 0 || newline >= end) return undefined;
  const header = text.slice(start, newline);
  // An explicit indentation indicator counts from the parent's indentation, which is not known here.
  if (/^[|>][+-]?\d|^[|>]\d/.test(header)) return { chars: "", offsets: [], contentStart: newline + 1 };
  const contentStart = newline + 1;
  const lines: { from: number; text: string }[] = [];
  for (let from = contentStart; from < end; ) {
    const lineEnd = text.indexOf("\n", from);
    const to = lineEnd < 0 || lineEnd > end ? end : lineEnd;
    lines.push({ from, text: text.slice(from, to) });
    from = to + 1;
  }
  const first = lines.find((line) => line.text.trim() !== "");
  if (!first) return undefined;
  const indent = /^ */.exec(first.text)![0].length;
  let chars = "";
  const offsets: number[] = [];
  for (const line of lines) {
    const content = line.text.slice(indent);
    for (let i = 0; i < content.length; i++) {
      chars += content[i];
      offsets.push(line.from + indent + i);
    }
    chars += "\n";
    offsets.push(line.from + line.text.length);
  }
  return { chars, offsets, contentStart };
}

const DOUBLE_QUOTE_ESCAPES: Readonly<Record<string, string>> = {
  "0": "\0",
  a: "\x07",
  b: "\b",
  t: "\t",
  "\t": "\t",
  n: "\n",
  v: "\v",
  f: "\f",
  r: "\r",
  e: "\x1b",
  " ": " ",
  '"': '"',
  "/": "/",
  "\\": "\\",
  N: "\u0085",
  _: "\u00a0",
  L: "\u2028",
  P: "\u2029",
};
const HEX_ESCAPE_LENGTH: Readonly<Record<string, number>> = { x: 2, u: 4, U: 8 };

/** `'...'` and `"..."`: escapes, `''`, and line breaks folded into a space (or kept when a line is empty). */
function decodeQuoted(text: string, start: number, end: number, double: boolean): Decoded | undefined {
  const quote = text[start];
  if (quote !== (double ? '"' : "'")) return undefined;
  let chars = "";
  const offsets: number[] = [];
  const emit = (char: string, offset: number) => {
    chars += char;
    offsets.push(offset);
  };
  let at = start + 1;
  while (at < end) {
    const char = text[at]!;
    if (char === quote) {
      if (!double && text[at + 1] === "'") {
        emit("'", at);
        at += 2;
        continue;
      }
      break;
    }
    if (double && char === "\\") {
      const next = text[at + 1];
      if (next === undefined) return undefined;
      if (next === "\n" || next === "\r") {
        at = skipBlank(text, at + 1 + (next === "\r" && text[at + 2] === "\n" ? 2 : 1));
        continue;
      }
      const hexLength = HEX_ESCAPE_LENGTH[next];
      if (hexLength !== undefined) {
        const code = Number.parseInt(text.slice(at + 2, at + 2 + hexLength), 16);
        if (Number.isNaN(code)) return undefined;
        const decodedChar = String.fromCodePoint(code);
        for (let unit = 0; unit < decodedChar.length; unit++) emit(decodedChar[unit]!, at);
        at += 2 + hexLength;
        continue;
      }
      const escaped = DOUBLE_QUOTE_ESCAPES[next];
      if (escaped === undefined) return undefined;
      emit(escaped, at);
      at += 2;
      continue;
    }
    if (char === "\n" || char === "\r") {
      // Trailing blanks before a line break are not part of the value.
      while (chars.endsWith(" ") || chars.endsWith("\t")) {
        chars = chars.slice(0, -1);
        offsets.pop();
      }
      let lineBreak = at;
      let emptyLines = 0;
      at = skipBlank(text, at + 1);
      while (text[at] === "\n" || text[at] === "\r") {
        emptyLines++;
        lineBreak = at;
        at = skipBlank(text, at + 1);
      }
      if (emptyLines === 0) emit(" ", lineBreak);
      for (let i = 0; i < emptyLines; i++) emit("\n", lineBreak);
      continue;
    }
    emit(char, at);
    at++;
  }
  return { chars, offsets, contentStart: start + 1 };
}

function skipBlank(text: string, at: number): number {
  let next = at;
  if (text[next] === "\n" && text[next - 1] === "\r") next++;
  while (text[next] === " " || text[next] === "\t") next++;
  return next;
}

/**
 * Walks the value and its source together: each visible character of the value is the next same
 * character of the source; white space may have been folded or indentation taken away.
 */
function alongside(text: string, value: string, from: number, end: number, index: number): number | undefined {
  let cursor = from;
  for (let i = 0; i <= index; i++) {
    const char = value[i]!;
    if (/\s/.test(char)) {
      if (text[cursor] === char) cursor++;
      if (i === index) return Math.min(cursor, end);
      continue;
    }
    const found = text.indexOf(char, cursor);
    if (found < 0 || found >= end) return undefined;
    if (i === index) return found;
    cursor = found + 1;
  }
  return undefined;
}
