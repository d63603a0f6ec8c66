import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { type Document, isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from "yaml";
import { z } from "zod";
import type { ConfigProblem } from "../kit/config-errors.ts";
import { isRecord } from "../kit/records.ts";
import type { StandInAnswer } from "../targets/stand-in.ts";

const text = z.union([z.string(), z.number(), z.boolean()]).transform(String);
const headers = z.record(z.string().min(1), text);

const targetResponseSchema = z
  .strictObject({
    status: z.number().int().min(100).max(599).optional(),
    headers: headers.optional(),
    body: z.json().optional(),
    fault: z
      .strictObject({
        code: z.string().min(1),
        reason: z.string(),
        subcode: z.string().min(1).optional(),
        detail: z.json().optional(),
      })
      .optional(),
  })
  .refine((answer) => answer.body === undefined || answer.fault === undefined, {
    message: "a SOAP answer holds a body or a fault, not both",
    path: ["fault"],
  });

const expectedRequestSchema = z.strictObject({
  method: z.string().min(1).optional(),
  url: z.string().min(1).optional(),
  headers: headers.optional(),
  body: z.json().optional(),
  soap_body: z.json().optional(),
});

const expectSchema = z.strictObject({
  route: z.string().min(1).nullable().optional(),
  skipped: z.boolean().optional(),
  request: expectedRequestSchema.nullable().optional(),
  answer: z
    .strictObject({ status: z.number().int().min(100).max(599).optional(), body: z.json().optional() })
    .optional(),
});

const routeTestSchema = z.strictObject({
  name: z.string().min(1),
  payload: z.union([z.string().min(1), z.record(z.string(), z.json())], {
    error: "must be a payload file (relative to this file) or the payload itself (a mapping)",
  }),
  set: z.record(z.string().min(1), z.json()).optional(),
  route: z.string().min(1).optional(),
  target_response: targetResponseSchema.optional(),
  expect: expectSchema,
});

const routeTestFileSchema = z.strictObject({
  env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be a variable name"), text).default({}),
  tests: z.array(routeTestSchema).min(1, "must list at least one test"),
});

export type RouteTestExpectation = z.output<typeof expectSchema>;
export type ExpectedRequest = z.output<typeof expectedRequestSchema>;

/** One test of a file, its payload read and `set` applied. */
export interface RouteTest {
  /** Its index in `tests`, for the positions of later problems. */
  readonly index: number;
  readonly name: string;
  /** The payload as JSON, `set` applied: a fresh copy for this test alone. */
  readonly payload: unknown;
  readonly route?: string | undefined;
  readonly targetResponse: StandInAnswer;
  readonly expect: RouteTestExpectation;
}

/** A test file, read and checked. */
export interface RouteTestFile {
  readonly file: string;
  /** The variables the config sees for these tests (and no others). */
  readonly env: Readonly<Record<string, string>>;
  readonly tests: readonly RouteTest[];
  /** A problem at a key path of the file, with its line and column. */
  problemAt(path: readonly PropertyKey[], message: string): ConfigProblem;
}

/**
 * A file that could be read (its tests, without those whose payload or `set` failed) with its
 * problems, or only problems when its YAML or its keys are wrong.
 */
export type RouteTestFileResult =
  | { ok: true; testFile: RouteTestFile; problems: readonly ConfigProblem[] }
  | { ok: false; problems: readonly ConfigProblem[] };

/**
 * Reads a route test file: YAML with positions, the format's keys (unknown keys are problems), each
 * test's payload (a file relative to the test file, or inline) and its `set` paths, which must
 * exist in the payload. Every problem is reported, each with its line and column.
 *
 * @example
 * const result = readRouteTestFile("examples/http-route/erp-contract.test.yaml");
 * for (const problem of result.problems) console.error(formatProblem(file, problem));
 */
export function readRouteTestFile(file: string): RouteTestFileResult {
  let source: string;
  try {
    source = readFileSync(file, "utf8");
  } catch (error) {
    const code = (error as { code?: string }).code;
    return { ok: false, problems: [{ path: [], message: `cannot read the file (${code ?? "error"})` }] };
  }
  const lineCounter = new LineCounter();
  const document = parseDocument(source, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const position = (offset: number | undefined) => {
    if (offset === undefined) return {};
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  if (document.errors.length > 0) {
    return {
      ok: false,
      problems: document.errors.map((error) => ({
        path: [],
        message: error.message.split("\n")[0]!,
        ...position(error.pos[0]),
      })),
    };
  }
  const problemAt = (path: readonly PropertyKey[], message: string): ConfigProblem => ({
    path,
    message,
    ...position(findNode(document, path)?.range?.[0]),
  });
  const keyProblemAt = (path: readonly PropertyKey[], key: string, message: string): ConfigProblem => ({
    path: [...path, key],
    message,
    ...position(findKey(document, path, key)?.range?.[0]),
  });

  let raw: unknown;
  try {
    raw = document.toJS({ maxAliasCount: 100 });
  } catch {
    return { ok: false, problems: [{ path: [], message: "YAML aliases expand too far (more than 100 uses)" }] };
  }
  const parsed = routeTestFileSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    const problems = parsed.error.issues.flatMap((issue): ConfigProblem[] => {
      if (issue.code === "unrecognized_keys")
        return issue.keys.map((key) => keyProblemAt(issue.path, key, `unknown key (${knownKeys(issue.path)})`));
      if (issue.code === "invalid_type" && valueAt(raw, issue.path) === undefined)
        return [problemAt(issue.path, "is required")];
      if (issue.code === "invalid_type") return [problemAt(issue.path, `must be ${typeNoun(issue.expected)}`)];
      if (issue.code === "invalid_key")
        return [keyProblemAt(issue.path.slice(0, -1), String(issue.path.at(-1)), "is not a valid name here")];
      return [problemAt(issue.path, issue.message)];
    });
    return { ok: false, problems: sortByPosition(problems) };
  }

  const problems: ConfigProblem[] = [];
  const payloadFiles = new Map<string, { ok: true; json: unknown } | { ok: false; message: string }>();
  const names = new Set<string>();
  const tests: RouteTest[] = [];
  parsed.data.tests.forEach((test, index) => {
    const at = ["tests", index];
    if (names.has(test.name))
      problems.push(problemAt([...at, "name"], `another test of this file is named "${test.name}"`));
    names.add(test.name);
    let payload: unknown;
    if (typeof test.payload === "string") {
      const path = resolve(dirname(file), test.payload);
      const read = payloadFiles.get(path) ?? readPayloadFile(path, test.payload);
      payloadFiles.set(path, read);
      if (!read.ok) {
        problems.push(problemAt([...at, "payload"], read.message));
        return;
      }
      payload = structuredClone(read.json);
    } else {
      payload = structuredClone(test.payload);
    }
    let settable = true;
    for (const [path, value] of Object.entries(test.set ?? {})) {
      const missing = setPath(payload, path, value);
      if (missing) {
        problems.push(keyProblemAt([...at, "set"], path, missing));
        settable = false;
      }
    }
    if (!settable) return;
    tests.push({
      index,
      name: test.name,
      payload,
      route: test.route,
      targetResponse: test.target_response ?? {},
      expect: test.expect,
    });
  });
  return { ok: true, testFile: { file, env: parsed.data.env, tests, problemAt }, problems };
}

function readPayloadFile(path: string, written: string): { ok: true; json: unknown } | { ok: false; message: string } {
  let source: string;
  try {
    source = readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as { code?: string }).code;
    return { ok: false, message: `cannot read ${written} (${code === "ENOENT" ? "not found" : code})` };
  }
  try {
    return { ok: true, json: JSON.parse(source) };
  } catch (error) {
    return { ok: false, message: `${written} is not valid JSON (${(error as Error).message})` };
  }
}

/**
 * Sets the value at a dot path (`data.entity.status`, `data.items.0.qty`) of `payload`. Every
 * segment must exist already, so that a typo is a problem rather than a new field no route reads;
 * returns what is missing, or undefined when the value was set.
 */
function setPath(payload: unknown, path: string, value: unknown): string | undefined {
  const segments = path.split(".");
  let node: unknown = payload;
  for (const [depth, segment] of segments.entries()) {
    const container = Array.isArray(node) ? node : isRecord(node) ? node : undefined;
    const exists =
      container !== undefined &&
      (Array.isArray(container)
        ? /^\d+$/.test(segment) && Number(segment) < container.length
        : Object.hasOwn(container, segment));
    if (!exists) {
      const parent = segments.slice(0, depth).join(".") || "the payload";
      return `does not exist in the payload (${parent} has no ${Array.isArray(container) ? "index" : "key"} "${segment}")`;
    }
    if (depth === segments.length - 1) {
      (container as Record<string, unknown>)[segment] = value;
      return undefined;
    }
    node = (container as Record<string, unknown>)[segment];
  }
  return undefined;
}

/** The keys allowed where an unknown one was found, for its message. */
function knownKeys(path: readonly PropertyKey[]): string {
  const keys = (() => {
    const inTest = path[0] === "tests" && typeof path[1] === "number";
    if (path.length === 0) return ["env", "tests"];
    if (inTest && path.length === 2) return Object.keys(routeTestSchema.shape);
    if (inTest && path[2] === "expect" && path.length === 3) return Object.keys(expectSchema.shape);
    if (inTest && path[2] === "expect" && path[3] === "request") return Object.keys(expectedRequestSchema.shape);
    if (inTest && path[2] === "expect" && path[3] === "answer") return ["status", "body"];
    if (inTest && path[2] === "target_response" && path.length === 3) return ["status", "headers", "body", "fault"];
    if (inTest && path[2] === "target_response" && path[3] === "fault") return ["code", "reason", "subcode", "detail"];
    return [];
  })();
  return keys.length > 0 ? `known here: ${keys.join(", ")}` : "not known here";
}

function typeNoun(expected: string): string {
  const nouns: Record<string, string> = {
    object: "a mapping",
    record: "a mapping",
    array: "a list",
    string: "a string",
    number: "a number",
    int: "a whole number",
    boolean: "true or false",
  };
  return nouns[expected] ?? expected;
}

function valueAt(raw: unknown, path: readonly PropertyKey[]): unknown {
  let current = raw;
  for (const segment of path) {
    if (current === null || typeof current !== "object") return undefined;
    current = (current as Record<PropertyKey, unknown>)[segment];
  }
  return current;
}

/** The deepest node on `path` that exists (a missing key points at the mapping that lacks it). */
function findNode(document: Document, path: readonly PropertyKey[]): Node | undefined {
  let current: unknown = document.contents;
  for (const segment of path) {
    if (isMap(current)) {
      const pair = current.items.find((item) => isScalar(item.key) && String(item.key.value) === String(segment));
      if (!pair) break;
      current = pair.value ?? pair.key;
    } else if (isSeq(current) && typeof segment === "number" && current.items[segment]) {
      current = current.items[segment];
    } else {
      break;
    }
  }
  return (current ?? undefined) as Node | undefined;
}

function findKey(document: Document, path: readonly PropertyKey[], key: string): Node | undefined {
  const parent = findNode(document, path);
  if (!isMap(parent)) return parent;
  const pair = parent.items.find((item) => isScalar(item.key) && String(item.key.value) === key);
  return (pair?.key as Node | undefined) ?? parent;
}

function sortByPosition(problems: ConfigProblem[]): ConfigProblem[] {
  return [...problems].sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
}
