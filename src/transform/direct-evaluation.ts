/**
 * Most route transforms are plain field picks: `{ "contract": data.entity.contract_number }`.
 * JSONata evaluates those through its general, promise-per-step machinery (about 10 µs and many
 * allocations per call). For an expression that is only an object constructor of string keys over
 * plain field paths and literals, or a single plain path, this evaluates it directly, with the same
 * result JSONata gives. Anything else, or any input where JSONata's sequence rules would start to
 * matter (an array anywhere on a path), is left to JSONata.
 */

/** Evaluates directly; `NOT_DIRECT` means "ask JSONata" for this input. */
export type DirectEvaluator = (input: unknown) => unknown;

export const NOT_DIRECT: unique symbol = Symbol("not direct");

/** The parts of JSONata's AST this looks at (`jsonata(source).ast()`). */
interface AstNode {
  readonly type: string;
  readonly value?: unknown;
  readonly steps?: readonly AstNode[];
  readonly lhs?: unknown;
  readonly [key: string]: unknown;
}

type Picker = (input: unknown) => unknown;

/**
 * Builds a direct evaluator for `ast`, or undefined when the expression is not of the plain shape.
 *
 * @example
 * const direct = compileDirectEvaluator(jsonata('{ "id": data.entity._id }').ast());
 * direct?.({ data: { entity: { _id: "e1" } } }); // { id: "e1" }
 */
export function compileDirectEvaluator(ast: unknown): DirectEvaluator | undefined {
  const node = ast as AstNode;
  if (node.type === "unary" && node.value === "{" && Array.isArray(node.lhs))
    return objectConstructor(node.lhs as unknown[]);
  const path = plainPath(node);
  if (!path) return undefined;
  return (input) => (isPlainObject(input) ? path(input) : NOT_DIRECT);
}

function objectConstructor(pairs: readonly unknown[]): DirectEvaluator | undefined {
  const keys: string[] = [];
  const values: Picker[] = [];
  for (const pair of pairs) {
    if (!Array.isArray(pair) || pair.length !== 2) return undefined;
    const [key, value] = pair as [AstNode, AstNode];
    // JSONata refuses duplicate keys at run time (D1009); leave that error to it.
    if (!isBare(key, "string") || typeof key.value !== "string" || keys.includes(key.value)) return undefined;
    const picker = literal(value) ?? plainPath(value);
    if (!picker) return undefined;
    keys.push(key.value);
    values.push(picker);
  }
  return (input) => {
    // Over an array JSONata's constructor groups the items; only a single object is direct.
    if (!isPlainObject(input)) return NOT_DIRECT;
    const out: Record<string, unknown> = {};
    for (let i = 0; i < keys.length; i++) {
      const value = values[i]!(input);
      if (value === NOT_DIRECT) return NOT_DIRECT;
      // JSONata leaves out a key whose value is undefined (a missing field).
      if (value !== undefined) out[keys[i]!] = value;
    }
    return out;
  };
}

function literal(node: AstNode): Picker | undefined {
  if (isBare(node, "string") && typeof node.value === "string") return constant(node.value);
  if (isBare(node, "number") && typeof node.value === "number") return constant(node.value);
  if (isBare(node, "value") && (node.value === true || node.value === false || node.value === null))
    return constant(node.value);
  return undefined;
}

function constant(value: unknown): Picker {
  return () => value;
}

/** `a.b.c` (or a lone `a`) without filters, predicates, variables or `[]`. */
function plainPath(node: AstNode): Picker | undefined {
  let names: string[];
  if (isBare(node, "name") && typeof node.value === "string") names = [node.value];
  else if (
    node.type === "path" &&
    Object.keys(node).length === 2 &&
    Array.isArray(node.steps) &&
    node.steps.length > 0
  ) {
    names = [];
    for (const step of node.steps) {
      if (!isBare(step, "name") || typeof step.value !== "string") return undefined;
      names.push(step.value);
    }
  } else return undefined;
  return (input) => {
    let current: unknown = input;
    for (const name of names) {
      // An array on the way would make JSONata map over its items and flatten: its rules, not ours.
      if (Array.isArray(current)) return NOT_DIRECT;
      if (!isPlainObject(current)) return undefined;
      // JSONata would also find an inherited property such as `constructor`; none of JSON's own is one.
      if (!Object.hasOwn(current, name)) return name in current ? NOT_DIRECT : undefined;
      current = current[name];
    }
    // A picked array is a JSONata sequence (singletons unwrapped, nested arrays flattened): leave it to JSONata.
    if (Array.isArray(current)) return NOT_DIRECT;
    return current;
  };
}

/** A node with nothing but `type`, `value` and `position`: no stages, predicates, grouping or focus. */
function isBare(node: AstNode, type: string): boolean {
  if (!node || typeof node !== "object" || node.type !== type) return false;
  for (const key of Object.keys(node)) if (key !== "type" && key !== "value" && key !== "position") return false;
  return true;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
