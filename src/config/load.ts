import { readFileSync } from "node:fs";
import { type Document, isMap, isScalar, isSeq, LineCounter, type Node, parseDocument, visit } from "yaml";
import type { z } from "zod";
import { ConfigError, type ConfigProblem, formatPath } from "../kit/config-errors.ts";
import { targetDefinitions } from "../targets/registry.ts";
import { holdsReference, InvalidReferenceError, interpolateEnv, MissingVariableError } from "./interpolate.ts";
import { configSchema, type GatewayConfig } from "./schema.ts";

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

  const yamlProblems: ConfigProblem[] = document.errors.map((error) => ({
    path: [],
    message: error.message.split("\n")[0]!,
    ...position(error.pos[0]),
  }));
  if (yamlProblems.length > 0) throw new ConfigError(file, yamlProblems);

  const problems: ConfigProblem[] = [];
  const envPaths = new Set<string>();
  visit(document, {
    Scalar(key, node, ancestors) {
      if (key === "key" || typeof node.value !== "string") return;
      if (holdsReference(node.value)) envPaths.add(formatPath(pathOf(ancestors, node)));
      try {
        // Values stay text; number and boolean keys read numeric text themselves (see envNumber in units.ts),
        // so `X-Client-Id: ${CLIENT_ID}` keeps its leading zeros.
        node.value = interpolateEnv(node.value, env);
      } catch (error) {
        if (!(error instanceof MissingVariableError) && !(error instanceof InvalidReferenceError)) throw error;
        problems.push({ path: pathOf(ancestors, node), message: error.message, ...position(node.range?.[0]) });
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
  if (problems.length > 0) throw new ConfigError(file, sortProblems(problems));
  return { file, config: parsed.data!, locate, fromEnv: (path) => envPaths.has(formatPath(path)) };
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
    case "unrecognized_keys":
      return issue.keys.map((key) => ({
        path: [...issue.path, key],
        message: "unknown key",
        ...position(findPairKey(document, issue.path, key)?.range?.[0]),
      }));
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
      return [at(issue.path, `must be one of: ${issue.values.map(String).join(", ")}`)];
    case "invalid_union":
      if ("discriminator" in issue && issue.discriminator) {
        const types = targetDefinitions.map((definition) => definition.type).join(", ");
        const path =
          issue.path.at(-1) === issue.discriminator ? issue.path : [...issue.path, issue.discriminator as string];
        return [at(path, `must be one of: ${types}`)];
      }
      return [at(issue.path, issue.message)];
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
