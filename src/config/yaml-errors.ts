import { type Document, isMap, isScalar, isSeq, type LineCounter, type YAMLError } from "yaml";
import type { ConfigProblem } from "../kit/config-errors.ts";

/**
 * YAML syntax errors as a person reads them: one line each, pointing at the line to change (the
 * parser often notices a mistake a line late, or at the start of the next token), the key path
 * when the mistake sits under a key, and a hint for the usual causes: a tab in the indentation, a
 * key indented one space off, a `: ` inside an unquoted value, a quote or `{` never closed.
 *
 * @example
 * describeYamlErrors(text, document, lineCounter);
 * // [{ path: ["server"], line: 3, column: 4, message: "this key starts in column 4, the one above it in column 3: ..." }]
 */
export function describeYamlErrors(text: string, document: Document, lineCounter: LineCounter): ConfigProblem[] {
  const lines = new SourceLines(text);
  const seenLines = new Set<number>();
  const problems: ConfigProblem[] = [];
  for (const error of withoutEchoes(document.errors, lines)) {
    let described: Described;
    try {
      described = describe(error, text, lines, document);
    } catch {
      described = { offset: error.pos[0], message: firstLine(error.message) };
    }
    const { line, col } = lineCounter.linePos(Math.min(described.offset, text.length));
    // One mistake often makes the parser report two or three things on the same line.
    if (seenLines.has(line)) continue;
    seenLines.add(line);
    const pathOffset = described.pathOffset === undefined ? described.offset : described.pathOffset;
    problems.push({
      path: pathOffset === null ? [] : pathAt(document, pathOffset),
      message: described.message,
      line,
      column: col,
    });
  }
  return problems;
}

interface Described {
  /** Where the problem is shown. */
  readonly offset: number;
  readonly message: string;
  /** Where its key path is read; null when the broken structure makes any path a guess. */
  readonly pathOffset?: number | null;
}

/**
 * The parser reports a key that runs over two lines once for each reading of it; the report that
 * spans the lines says what happened, the others only echo it.
 */
function withoutEchoes(errors: readonly YAMLError[], lines: SourceLines): YAMLError[] {
  const spansLines = (error: YAMLError) =>
    lines.lineOf(Math.max(error.pos[0], error.pos[1] - 1)) > lines.lineOf(error.pos[0]);
  const implicitKey = (error: YAMLError) =>
    error.code === "BLOCK_AS_IMPLICIT_KEY" || error.code === "MULTILINE_IMPLICIT_KEY";
  return errors.filter(
    (error, index) =>
      // Once the parser lost its way, every token after is "unexpected": only the first says why.
      !(index > 0 && error.code === "UNEXPECTED_TOKEN") &&
      (!implicitKey(error) ||
        spansLines(error) ||
        !errors.some(
          (other) => other !== error && implicitKey(other) && other.pos[0] === error.pos[0] && spansLines(other),
        )),
  );
}

/** `port: ${PORT}` inside `{ }` or `[ ]`: there `{` opens another mapping, so the reference must be quoted. */
function referenceInFlow(text: string, offset: number): Described | undefined {
  const at = text[offset] === "{" && text[offset - 1] === "$" ? offset - 1 : undefined;
  if (at === undefined) return undefined;
  const reference = /^\$\{[^}\s]*\}?/.exec(text.slice(at))?.[0] ?? "${";
  // The whole value is quoted, not only the reference: `Authorization: "Bearer ${ERP_TOKEN}"`.
  const lineStart = text.lastIndexOf("\n", at) + 1;
  const before = text.slice(lineStart, at);
  const separator = Math.max(
    before.lastIndexOf(": "),
    before.lastIndexOf(","),
    before.lastIndexOf("["),
    before.lastIndexOf("{"),
  );
  const valueStart = lineStart + separator + (before.startsWith(": ", separator) ? 2 : 1);
  const value = `${text.slice(valueStart, at).trimStart()}${reference}`;
  const key = before.startsWith(": ", separator) ? /([^\s{,[]+)$/.exec(before.slice(0, separator))?.[1] : undefined;
  return {
    offset: at,
    message: `a \${...} inside { } or [ ] must be quoted, since { starts a mapping there: write ${key ? `${key}: ` : ""}"${value}"`,
    pathOffset: Math.max(lineStart, valueStart - 1),
  };
}

function describe(error: YAMLError, text: string, lines: SourceLines, document: Document): Described {
  const [start, end] = error.pos;
  const message = firstLine(error.message);
  switch (error.code) {
    case "TAB_AS_INDENT":
      return { offset: start, message: "a tab in the indentation: YAML indents with spaces only (replace the tab)" };
    case "DUPLICATE_KEY":
      return { offset: start, message: duplicateKey(document, start, lines) ?? message };
    case "UNEXPECTED_TOKEN":
      return referenceInFlow(text, start) ?? { offset: start, message };
    case "MISSING_CHAR": {
      const inFlow = referenceInFlow(text, start);
      if (inFlow) return inFlow;
      const quote = /^Missing closing (["'])quote/.exec(message)?.[1];
      if (quote) return unclosedQuote(text, lines, start, quote) ?? { offset: start, message };
      return indentation(lines, start) ?? { offset: start, message };
    }
    case "BAD_INDENT": {
      if (/^Flow (map|sequence)/.test(message)) return unclosedFlow(text, lines, start) ?? { offset: start, message };
      return misaligned(lines, start) ?? indentation(lines, start) ?? { offset: start, message };
    }
    case "BLOCK_AS_IMPLICIT_KEY":
    case "MULTILINE_IMPLICIT_KEY": {
      const first = lines.lineOf(start);
      const last = lines.lineOf(Math.max(start, end - 1));
      if (last > first) return deeperThanAbove(lines, last);
      return colonInValue(lines, first) ?? indentation(lines, start) ?? { offset: start, message };
    }
    default:
      return { offset: start, message };
  }
}

/** `key: a: b`: the second `: ` starts a mapping YAML does not allow there. */
function colonInValue(lines: SourceLines, line: number): Described | undefined {
  const content = lines.text(line);
  const match = /^(\s*(?:-\s+)?)([^\s:#][^:#]*?):\s+(.*?)\s*(?:\s#.*)?$/.exec(content);
  if (!match) return undefined;
  const [, lead, key, value] = match;
  const inner = value!.indexOf(": ");
  if (inner < 0) return undefined;
  const offset = lines.start(line) + content.indexOf(value!, lead!.length + key!.length) + inner;
  const example = value!.length > 40 ? `${value!.slice(0, 37)}...` : value!;
  return {
    offset,
    message: `a value holds ": " (a colon and a space), which YAML reads as a new key: put the value in quotes, ${key}: "${example.replaceAll('"', '\\"')}"`,
    pathOffset: lines.start(line) + lead!.length,
  };
}

/** A line indented deeper than the key above it: YAML reads it as the rest of that key's value. */
function deeperThanAbove(lines: SourceLines, line: number): Described {
  const column = lines.indent(line) + 1;
  const above = lines.previousContent(line);
  const aboveColumn = above === undefined ? 1 : lines.indent(above) + 1;
  if (above !== undefined && column <= aboveColumn) {
    return {
      offset: lines.start(line) + column - 1,
      message: `line ${above} above holds text that is not "key: value", so YAML reads it and this line as one key: write it as "key: value" or remove it`,
      pathOffset: null,
    };
  }
  return {
    offset: lines.start(line) + column - 1,
    message: `this line starts in column ${column}, deeper than the key above it (column ${aboveColumn}), so YAML reads it as part of that value: indent it like the key it belongs with`,
    // The value it ran into is the key above's.
    pathOffset: above === undefined ? null : lines.start(above) + aboveColumn - 1,
  };
}

/** Keys of one mapping that do not start in the same column. */
function misaligned(lines: SourceLines, offset: number): Described | undefined {
  const line = lines.lineOf(offset);
  const above = lines.previousContent(line);
  if (above === undefined) return undefined;
  const column = lines.indent(line) + 1;
  const aboveColumn = lines.indent(above) + 1;
  if (column === aboveColumn) return undefined;
  return {
    offset: lines.start(line) + column - 1,
    message: `this key starts in column ${column}, the one above it in column ${aboveColumn}: the keys of one mapping start in the same column (check the indentation)`,
    pathOffset: null,
  };
}

/** A line whose indentation matches none of the keys above it. */
function indentation(lines: SourceLines, offset: number): Described | undefined {
  const line = lines.lineOf(offset);
  const column = lines.indent(line) + 1;
  const previous = lines.previousContent(line);
  // Deeper than the line above is how a value under a key begins: not an indentation mistake.
  if (previous === undefined || column > lines.indent(previous) + 1) return undefined;
  const columns = new Set<number>();
  for (let above = lines.previousContent(line); above !== undefined; above = lines.previousContent(above)) {
    const content = lines.text(above);
    const dash = /^(\s*)-\s+/.exec(content);
    columns.add(lines.indent(above) + 1);
    if (dash) columns.add(dash[0].length + 1);
    if (lines.indent(above) === 0) break;
  }
  if (columns.size === 0 || columns.has(column)) return undefined;
  const known = [...columns].sort((a, b) => a - b).join(", ");
  return {
    offset: lines.start(line) + column - 1,
    message: `this line starts in column ${column}, which matches no key above it (they start in column ${known}): check the indentation`,
    pathOffset: null,
  };
}

/** The opening quote of a quoted value that never closes. */
function unclosedQuote(text: string, lines: SourceLines, offset: number, quote: string): Described | undefined {
  for (let at = Math.min(offset, text.length) - 1; at >= 0; at--) {
    if (text[at] !== quote) continue;
    const before = text.slice(lines.start(lines.lineOf(at)), at);
    if (!/(^\s*|[:,[{-]\s*)$/.test(before)) continue;
    const line = lines.lineOf(at);
    return {
      offset: at,
      message: `the ${quote} opened here (line ${line}, column ${at - lines.start(line) + 1}) is never closed: add the closing ${quote}`,
    };
  }
  return undefined;
}

/** The `{` or `[` of a flow collection that is never closed. */
function unclosedFlow(text: string, lines: SourceLines, offset: number): Described | undefined {
  const open: number[] = [];
  let quote: string | undefined;
  for (let at = 0; at < Math.min(offset, text.length); at++) {
    const char = text[at]!;
    if (quote) {
      if (char === quote) quote = undefined;
      continue;
    }
    if (char === "#" && (at === 0 || /\s/.test(text[at - 1]!))) {
      while (at < text.length && text[at] !== "\n") at++;
    } else if ((char === '"' || char === "'") && (at === 0 || /[\s:,[{]/.test(text[at - 1]!))) quote = char;
    else if (char === "{" || char === "[") open.push(at);
    else if ((char === "}" || char === "]") && open.length > 0) open.pop();
  }
  const opener = open.at(-1);
  if (opener === undefined) return undefined;
  const line = lines.lineOf(opener);
  const [name, close] = text[opener] === "{" ? ["mapping", "}"] : ["list", "]"];
  return {
    offset: opener,
    message: `the ${text[opener]} of this flow ${name} (line ${line}, column ${opener - lines.start(line) + 1}) is never closed: add the ${close}, or write the ${name} on indented lines`,
  };
}

function duplicateKey(document: Document, offset: number, lines: SourceLines): string | undefined {
  let found: string | undefined;
  const visitMap = (node: unknown): void => {
    if (found !== undefined) return;
    if (isMap(node)) {
      const pair = node.items.find((item) => isScalar(item.key) && item.key.range?.[0] === offset);
      if (pair && isScalar(pair.key)) {
        const name = String(pair.key.value);
        const first = node.items.find((item) => isScalar(item.key) && String(item.key.value) === name);
        const firstAt = isScalar(first?.key) ? first.key.range?.[0] : undefined;
        found = `duplicate key "${name}"${firstAt !== undefined && firstAt !== offset ? ` (first at line ${lines.lineOf(firstAt)})` : ""}: each key may appear once in a mapping`;
        return;
      }
      for (const item of node.items) visitMap(item.value);
    } else if (isSeq(node)) {
      for (const item of node.items) visitMap(item);
    }
  };
  visitMap(document.contents);
  return found;
}

/** The key path of the deepest node of the (partly parsed) document that holds `offset`. */
function pathAt(document: Document, offset: number): PropertyKey[] {
  const path: PropertyKey[] = [];
  let node: unknown = document.contents;
  for (let depth = 0; depth < 100; depth++) {
    if (isMap(node)) {
      const pair = node.items.find((item) => {
        const from = (item.key as { range?: number[] } | null)?.range?.[0];
        const to =
          (item.value as { range?: number[] } | null)?.range?.[2] ??
          (item.key as { range?: number[] } | null)?.range?.[2];
        return from !== undefined && to !== undefined && offset >= from && offset <= to;
      });
      if (!pair || !isScalar(pair.key)) break;
      path.push(String(pair.key.value));
      node = pair.value;
    } else if (isSeq(node)) {
      const index = node.items.findIndex((item) => {
        const range = (item as { range?: number[] } | null)?.range;
        return range !== undefined && offset >= range[0]! && offset <= range[2]!;
      });
      if (index < 0) break;
      path.push(index);
      node = node.items[index];
    } else {
      break;
    }
  }
  return path;
}

function firstLine(message: string): string {
  return message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "");
}

/** The source split in lines (1-based), for looking around an error. */
class SourceLines {
  private readonly starts: number[] = [0];
  constructor(private readonly source: string) {
    for (let at = source.indexOf("\n"); at >= 0; at = source.indexOf("\n", at + 1)) this.starts.push(at + 1);
  }
  lineOf(offset: number): number {
    let low = 0;
    let high = this.starts.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if (this.starts[mid]! <= offset) low = mid;
      else high = mid - 1;
    }
    return low + 1;
  }
  start(line: number): number {
    return this.starts[line - 1] ?? this.source.length;
  }
  text(line: number): string {
    const from = this.start(line);
    const to = this.starts[line] ?? this.source.length + 1;
    return this.source.slice(from, to - 1).replace(/\r$/, "");
  }
  indent(line: number): number {
    return /^ */.exec(this.text(line))![0].length;
  }
  /** The nearest line above with content (not blank, not only a comment). */
  previousContent(line: number): number | undefined {
    for (let above = line - 1; above >= 1; above--) if (!/^\s*(#.*)?$/.test(this.text(above))) return above;
    return undefined;
  }
}
