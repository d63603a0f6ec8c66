import { readFileSync } from "node:fs";
import { type Document, isMap, isScalar, isSeq, LineCounter, type Node, parseDocument, visit } from "yaml";
import type { z } from "zod";
import { ConfigError, type ConfigProblem, formatPath, withRouteNames } from "../kit/config-errors.ts";
import { isRecord } from "../kit/records.ts";
import { targetDefinitions } from "../targets/registry.ts";
import {
  BareVariableError,
  findBareVariable,
  holdsReference,
  InvalidReferenceError,
  interpolateEnv,
  MissingVariableError,
} from "./interpolate.ts";
import { configSchema, type GatewayConfig } from "./schema.ts";
import { isExpressionAt, knownKeysAt } from "./schema-walk.ts";
import { sourceOffsetOf } from "./value-positions.ts";
import { describeYamlErrors } from "./yaml-errors.ts";

/** A parsed, schema-checked config and what is needed to point at its lines later. */
export interface LoadedConfig {
  readonly file: string;
  readonly config: GatewayConfig;
  /** Finds the line and column of a key path, for problems found after the schema (compile step). */
  locate(path: readonly PropertyKey[]): { line: number; column: number } | undefined;
  /**
   * Whether the value at `path` (`["routes", 0, "target", "headers", "Authorization"]`) held a
   * `${VAR}` in the file: `explain` and `test` show such values as `***`, whatever they are.
   */
  fromEnv(path: readonly PropertyKey[]): boolean;
  /**
   * The line and column of character `index` of the string value at `path` (a JSONata error inside a
   * multi-line block); the value's own position when that character cannot be told.
   */
  locateInValue(path: readonly PropertyKey[], index: number): { line: number; column: number } | undefined;
}

/**
 * Reads and checks a config file: YAML with positions, `${ENV}` interpolation, then the zod schema.
 * Throws {@link ConfigError} listing every problem with `file:line:col key.path: message`.
 *
 * @example
 * const { config } = loadConfigFile("config.yaml", process.env);
 */
export function loadConfigFile(file: string, env: Readonly<Record<string, string | undefined>>): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    const code = (error as { code?: string }).code;
    throw new ConfigError(file, [
      { path: [], message: code === "ENOENT" ? "file not found" : `cannot read the file (${code ?? "error"})` },
    ]);
  }
  return loadConfigText(file, text, env);
}

/** Same as {@link loadConfigFile}, for text already in memory (tests, reload). */
export function loadConfigText(
  file: string,
  text: string,
  env: Readonly<Record<string, string | undefined>>,
): LoadedConfig {
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const position = (offset: number | undefined) => {
    if (offset === undefined) return undefined;
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  const locate = (path: readonly PropertyKey[]) => position(findNode(document, path)?.range?.[0]);
  const locateInValue = (path: readonly PropertyKey[], index: number) => {
    const node = findNode(document, path);
    if (!isScalar(node)) return locate(path);
    return position(sourceOffsetOf(text, node, index) ?? node.range?.[0]);
  };

  if (document.errors.length > 0) {
    const problems = describeYamlErrors(text, document, lineCounter);
    const firstError = Math.min(...document.errors.map((error) => error.pos[0]));
    throw new ConfigError(file, withRouteNames(problems, routeNamesBefore(document, firstError)));
  }

  const problems: ConfigProblem[] = [];
  const envPaths = new Set<string>();
  visit(document, {
    Scalar(key, node, ancestors) {
      if (key === "key" || typeof node.value !== "string") return;
      const path = pathOf(ancestors, node);
      // JSONata uses `$name` itself; elsewhere `$NAME` is a `${NAME}` with its braces forgotten.
      const literalDollar = node.value.includes("$") && !isExpressionAt(configSchema, path, undefined);
      if (holdsReference(node.value)) envPaths.add(formatPath(path));
      try {
        const bare = literalDollar ? findBareVariable(node.value) : undefined;
        if (bare !== undefined) throw new BareVariableError(bare);
        // Values stay text; number and boolean keys read numeric text themselves (see envNumber in units.ts),
        // so `X-Client-Id: ${CLIENT_ID}` keeps its leading zeros.
        node.value = interpolateEnv(node.value, env, { literalDollar });
      } catch (error) {
        if (
          !(error instanceof MissingVariableError) &&
          !(error instanceof InvalidReferenceError) &&
          !(error instanceof BareVariableError)
        )
          throw error;
        problems.push({
          path,
          message: error.message,
          ...position(node.range?.[0]),
          ...(error instanceof MissingVariableError ? { variable: error.variable } : {}),
        });
      }
    },
  });

  // Aliases are capped so that a "billion laughs" file cannot exhaust memory.
  let raw: unknown;
  try {
    raw = document.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (error) {
    // yaml throws a bare ReferenceError here; it must reach the operator as a config problem, not a crash.
    if (!(error instanceof ReferenceError)) throw error;
    throw new ConfigError(file, [
      { path: [], message: "YAML aliases expand too far (more than 100 uses of *alias); write the values out" },
    ]);
  }
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    // A value whose variable is missing is already reported; "must be a number" for `${PORT}` would be noise.
    const unresolved = new Set(problems.map((problem) => formatPath(problem.path)));
    const schemaProblems = parsed.error.issues.flatMap((issue) => describeIssue(issue, raw, document, position));
    problems.push(...schemaProblems.filter((problem) => !unresolved.has(formatPath(problem.path))));
  }
  if (problems.length > 0) throw new ConfigError(file, withRouteNames(sortProblems(problems), routeNamesOf(raw)));
  return {
    file,
    config: parsed.data!,
    locate,
    locateInValue,
    fromEnv: (path) => envPaths.has(formatPath(path)),
  };
}

/**
 * The names of the routes of a document with syntax errors, where they can be trusted: a plain
 * `name:` that ends before the first error, written once in its route.
 */
function routeNamesBefore(document: Document, offset: number): (string | undefined)[] {
  const routes = isMap(document.contents) ? document.contents.get("routes", true) : undefined;
  if (!isSeq(routes)) return [];
  return routes.items.map((route) => {
    if (!isMap(route)) return undefined;
    const names = route.items.filter((pair) => isScalar(pair.key) && pair.key.value === "name");
    const value = names.length === 1 ? names[0]!.value : undefined;
    if (!isScalar(value) || typeof value.value !== "string" || (value.range?.[2] ?? offset) >= offset) return undefined;
    return /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(value.value) ? value.value : undefined;
  });
}

/** Each route's name as written, for messages (`routes[4] (mapped).transform`). */
function routeNamesOf(raw: unknown): (string | undefined)[] {
  const routes = isRecord(raw) ? raw.routes : undefined;
  if (!Array.isArray(routes)) return [];
  return routes.map((route: unknown) => {
    const name = isRecord(route) ? route.name : undefined;
    return typeof name === "string" && name !== "" ? name : undefined;
  });
}

type Positioner = (offset: number | undefined) => { line: number; column: number } | undefined;

function describeIssue(
  issue: z.core.$ZodIssue,
  raw: unknown,
  document: Document,
  position: Positioner,
): ConfigProblem[] {
  const at = (path: readonly PropertyKey[], message: string): ConfigProblem => ({
    path,
    message,
    ...position(findNode(document, path)?.range?.[0]),
  });
  switch (issue.code) {
    case "unrecognized_keys": {
      const known = knownKeysAt(configSchema, issue.path, raw);
      return issue.keys.map((key) => ({
        path: [...issue.path, key],
        message: unknownKeyMessage(key, known),
        ...position(findPairKey(document, issue.path, key)?.range?.[0]),
      }));
    }
    case "invalid_type": {
      if (valueAt(raw, issue.path) === undefined) return [at(issue.path, "is required")];
      // A schema's own message (units.ts explains `timeout: 10`) says more than the type's name.
      if (!isZodDefault(issue.message)) return [at(issue.path, issue.message)];
      return [at(issue.path, `must be ${typeNoun(issue.expected)}`)];
    }
    case "invalid_key": {
      // A mapping key the schema refuses (a header name): the schema's message, pointing at the key.
      const parent = issue.path.slice(0, -1);
      const key = String(issue.path.at(-1));
      const message =
        issue.issues.find((inner) => !isZodDefault(inner.message))?.message ?? "is not allowed as a key here";
      return [{ path: issue.path, message, ...position(findPairKey(document, parent, key)?.range?.[0]) }];
    }
    case "too_big":
      if (issue.origin === "number" && isZodDefault(issue.message)) {
        return [at(issue.path, `must be ${issue.inclusive ? "at most" : "less than"} ${String(issue.maximum)}`)];
      }
      return [at(issue.path, issue.message)];
    case "invalid_value":
      return [at(issue.path, `must be one of: ${issue.values.map(String).join(", ")}${got(valueAt(raw, issue.path))}`)];
    case "invalid_union": {
      if ("discriminator" in issue && issue.discriminator) {
        const types = targetDefinitions.map((definition) => definition.type).join(", ");
        const path =
          issue.path.at(-1) === issue.discriminator ? issue.path : [...issue.path, issue.discriminator as string];
        return [at(path, `must be one of: ${types}${got(valueAt(raw, path))}`)];
      }
      const message = unionMessage(issue);
      return [at(issue.path, message.includes("(got ") ? message : `${message}${got(valueAt(raw, issue.path))}`)];
    }
    case "too_small":
      if (issue.origin === "array" && issue.minimum === 1)
        return [at(issue.path, issue.message.startsWith("Too small") ? "must not be empty" : issue.message)];
      if (issue.origin === "string" && issue.minimum === 1) return [at(issue.path, "must not be empty")];
      if (issue.origin === "number" && isZodDefault(issue.message)) {
        return [at(issue.path, `must be ${issue.inclusive ? "at least" : "more than"} ${String(issue.minimum)}`)];
      }
      return [at(issue.path, issue.message)];
    default:
      return [at(issue.path, issue.message)];
  }
}

/** `unknown key, did you mean "transform"?`, or the keys this mapping knows when none is close. */
function unknownKeyMessage(key: string, known: readonly string[]): string {
  const nearest = nearestKey(key, known);
  if (nearest !== undefined) return `unknown key, did you mean "${nearest}"?`;
  if (known.length === 0 || known.length > 20) return "unknown key";
  return `unknown key (known here: ${known.join(", ")})`;
}

/**
 * The known key closest to a misspelt one: the edit distance (swaps of neighbours count one) at
 * most a third of the key's length, at least 1 and at most 3; case, `-` and `_` do not count.
 */
function nearestKey(key: string, known: readonly string[]): string | undefined {
  const normal = (text: string) => text.toLowerCase().replaceAll("-", "_");
  const target = normal(key);
  let best: { key: string; distance: number } | undefined;
  for (const candidate of known) {
    const distance = editDistance(target, normal(candidate));
    if (!best || distance < best.distance) best = { key: candidate, distance };
  }
  if (!best) return undefined;
  const allowed = Math.min(3, Math.max(1, Math.floor(key.length / 3)));
  return best.distance <= allowed ? best.key : undefined;
}

/** Optimal string alignment distance: insertions, deletions, substitutions and swaps of neighbours. */
function editDistance(a: string, b: string): number {
  const rows = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) rows[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        best = Math.min(best, rows[i - 2]![j - 2]! + 1);
      rows[i]![j] = best;
    }
  }
  return rows[a.length]![b.length]!;
}

/**
 * A union none of whose options took the value: the schema's own message when it has one; the
 * values allowed when the options are fixed values (SOAP `version`); else what the options that
 * had the value's type said.
 */
function unionMessage(issue: z.core.$ZodIssueInvalidUnion): string {
  if (!isZodDefault(issue.message)) return issue.message;
  const leaves = leafIssues(issue);
  const typed = leaves.filter((leaf) => leaf.code !== "invalid_type");
  const values = [...new Set(typed.flatMap((leaf) => (leaf.code === "invalid_value" ? leaf.values.map(String) : [])))];
  const others = typed.filter((leaf) => leaf.code !== "invalid_value" && !isZodDefault(leaf.message));
  if (others.length > 0) {
    const reasons = [...new Set(others.map((leaf) => leaf.message))].join("; or ");
    return values.length > 0 ? `${reasons}; or one of: ${values.join(", ")}` : reasons;
  }
  if (values.length > 0) return `must be one of: ${values.join(", ")}`;
  const types = [...new Set(leaves.flatMap((leaf) => (leaf.code === "invalid_type" ? [typeNoun(leaf.expected)] : [])))];
  return types.length > 0 ? `must be ${types.join(" or ")}` : issue.message;
}

/** The issues inside a union's options, nested unions opened, at the union's own path. */
function leafIssues(issue: z.core.$ZodIssueInvalidUnion): z.core.$ZodIssue[] {
  return issue.errors.flatMap((option) =>
    option.flatMap((inner) =>
      inner.code === "invalid_union" && inner.path.length === 0
        ? leafIssues(inner)
        : inner.path.length === 0
          ? [inner]
          : [],
    ),
  );
}

/** ` (got "1.3")`: what the file holds, short, so that a typo is seen at once. */
function got(value: unknown): string {
  if (value === undefined) return "";
  if (typeof value === "string")
    return ` (got ${JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value)})`;
  if (typeof value === "number" || typeof value === "boolean" || value === null) return ` (got ${String(value)})`;
  return ` (got ${Array.isArray(value) ? "a list" : "a mapping"})`;
}

function typeNoun(expected: string): string {
  const nouns: Record<string, string> = {
    object: "a mapping",
    record: "a mapping",
    map: "a mapping",
    array: "a list",
    string: "a string",
    number: "a number",
    int: "a whole number",
    boolean: "true or false",
  };
  return nouns[expected] ?? expected;
}

/** zod's own English ("Invalid input: expected string, received number"), as opposed to a message the schema sets. */
function isZodDefault(message: string): boolean {
  return /^(Invalid|Too (big|small)|Unrecognized)\b/.test(message);
}

function valueAt(raw: unknown, path: readonly PropertyKey[]): unknown {
  let current = raw;
  for (const segment of path) {
    if (current === null || typeof current !== "object") return undefined;
    current = (current as Record<PropertyKey, unknown>)[segment];
  }
  return current;
}

/** The deepest YAML node on `path` that exists: a missing key points at the mapping that lacks it. */
function findNode(document: Document, path: readonly PropertyKey[]): Node | undefined {
  let current: unknown = document.contents;
  for (const segment of path) {
    if (isMap(current)) {
      const pair = current.items.find((item) => isScalar(item.key) && String(item.key.value) === String(segment));
      if (!pair) return current;
      current = pair.value ?? pair.key;
    } else if (isSeq(current) && typeof segment === "number" && current.items[segment]) {
      current = current.items[segment];
    } else {
      break;
    }
  }
  return (current ?? undefined) as Node | undefined;
}

function findPairKey(document: Document, path: readonly PropertyKey[], key: string): Node | undefined {
  const parent = findNode(document, path);
  if (!isMap(parent)) return parent;
  const pair = parent.items.find((item) => isScalar(item.key) && String(item.key.value) === key);
  return (pair?.key as Node | undefined) ?? parent;
}

function pathOf(ancestors: readonly unknown[], node: unknown): PropertyKey[] {
  const path: PropertyKey[] = [];
  const chain = [...ancestors, node];
  for (let i = 0; i < chain.length - 1; i++) {
    const parent = chain[i];
    const child = chain[i + 1];
    if (isMap(parent) && child && typeof child === "object" && "key" in child && isScalar(child.key))
      path.push(String(child.key.value));
    if (isSeq(parent)) path.push((parent.items as unknown[]).indexOf(child));
  }
  return path;
}

function sortProblems(problems: ConfigProblem[]): ConfigProblem[] {
  return [...problems].sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
}
