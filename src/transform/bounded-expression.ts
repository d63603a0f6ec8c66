/**
 * Which expressions may run in the gateway's own thread. An expression runs there only when a
 * static check of its JSONata AST proves that its work grows at most linearly with its input, and
 * that no single native call can stall: then even the largest body the gateway accepts is done in
 * milliseconds. Everything else runs in a worker thread that is stopped at the time limit (see
 * expression-pool.ts), at the cost of a round trip.
 *
 * In the gateway's thread (when nothing else in the expression says otherwise):
 * - literals, field paths, `$` (the context), filters and indexes (`items[type = "a"][0]`);
 * - operators (`+ - * / % = != < <= > >= & and or in`), `? :`, `?:`, `??`, blocks `( ; )`,
 *   array constructors `[a, b]`, object constructors `{ "k": v }`;
 * - calls of built-ins that are linear in their input ({@link LINEAR_FUNCTIONS}); for those whose
 *   cost also depends on another argument (a separator, a pattern, a picture), that argument must
 *   be written as a literal in the expression: `$split(s, ",")` stays, `$split(s, data.sep)` goes;
 * - `~>` into such a call; variables other than `$` (bindings such as `$body`) and `$$` only where
 *   they are evaluated once per evaluation, not once per item of a path or filter.
 *
 * In a worker thread: regexes, lambdas and anything that binds or calls a function value
 * (`:=`, `function`, `$map`, `$reduce`, partial application), sorting (`^( )`, `$sort`), grouping
 * (`items{ ... }`), `*`, `**`, `%`, ranges `[1..n]`, `@`/`#` bindings, `| |` transforms, any other
 * built-in (`$distinct`, `$match`, `$pad`, `$eval`, `$formatNumber`, `$toMillis`, `$spread`, ...),
 * and an object constructor inside a path step or filter. Why these:
 * - a variable or `$$` inside a path step or filter is evaluated once per item, against data that is
 *   not the item's: `items.$body` is n × |body|, quadratic;
 * - JSONata builds a group by copying its array once per item (`fn.append`), so an object
 *   constructor that sees an array (`items.{...}`, `*` over many keys) is quadratic. Over the one
 *   object a route's input is, a constructor groups a single item; so an expression with object
 *   constructors runs in the gateway's thread only when its input is not an array
 *   ({@link BoundedCheck.needsObjectInput});
 * - `[1..n]` builds up to ten million items from one number in the payload.
 *
 * The check knows each node's fields: a field it does not know (a future JSONata's) sends the
 * expression to a worker.
 */

/** The parts of JSONata's AST this looks at (`jsonata(source).ast()`). */
interface AstNode {
  readonly type: string;
  readonly value?: unknown;
  readonly [key: string]: unknown;
}

export type BoundedCheck =
  | {
      readonly bounded: true;
      /** The expression builds objects: it stays linear only over an input that is not an array. */
      readonly needsObjectInput: boolean;
    }
  | { readonly bounded: false; readonly reason: string };

interface FunctionRule {
  readonly maxArguments: number;
  /** Argument positions (0-based) that must be literals when given. */
  readonly literal?: readonly number[];
}

/**
 * Built-ins whose cost is linear in their arguments (their JSONata implementations were read for
 * this; `$keys`, `$lookup`, `$merge` walk their input once, `$string` is one JSON.stringify).
 * `$spread` is not here: it appends once per item, which is quadratic.
 */
export const LINEAR_FUNCTIONS: ReadonlyMap<string, FunctionRule> = new Map<string, FunctionRule>([
  ["string", { maxArguments: 2 }],
  ["length", { maxArguments: 1 }],
  ["substring", { maxArguments: 3 }],
  ["substringBefore", { maxArguments: 2, literal: [1] }],
  ["substringAfter", { maxArguments: 2, literal: [1] }],
  ["uppercase", { maxArguments: 1 }],
  ["lowercase", { maxArguments: 1 }],
  ["trim", { maxArguments: 1 }],
  ["contains", { maxArguments: 2, literal: [1] }],
  ["split", { maxArguments: 3, literal: [1] }],
  ["join", { maxArguments: 2, literal: [1] }],
  ["replace", { maxArguments: 4, literal: [1, 2] }],
  ["base64encode", { maxArguments: 1 }],
  ["base64decode", { maxArguments: 1 }],
  ["encodeUrlComponent", { maxArguments: 1 }],
  ["encodeUrl", { maxArguments: 1 }],
  ["decodeUrlComponent", { maxArguments: 1 }],
  ["decodeUrl", { maxArguments: 1 }],
  ["number", { maxArguments: 1 }],
  ["abs", { maxArguments: 1 }],
  ["floor", { maxArguments: 1 }],
  ["ceil", { maxArguments: 1 }],
  ["round", { maxArguments: 2 }],
  ["power", { maxArguments: 2 }],
  ["sqrt", { maxArguments: 1 }],
  ["sum", { maxArguments: 1 }],
  ["max", { maxArguments: 1 }],
  ["min", { maxArguments: 1 }],
  ["average", { maxArguments: 1 }],
  ["count", { maxArguments: 1 }],
  ["boolean", { maxArguments: 1 }],
  ["not", { maxArguments: 1 }],
  ["exists", { maxArguments: 1 }],
  ["type", { maxArguments: 1 }],
  ["append", { maxArguments: 2 }],
  ["reverse", { maxArguments: 1 }],
  ["keys", { maxArguments: 1 }],
  ["lookup", { maxArguments: 2 }],
  ["merge", { maxArguments: 1 }],
  ["now", { maxArguments: 2, literal: [0, 1] }],
  ["millis", { maxArguments: 0 }],
  ["fromMillis", { maxArguments: 3, literal: [1, 2] }],
  ["error", { maxArguments: 1 }],
  ["assert", { maxArguments: 2 }],
]);

const LINEAR_OPERATORS = new Set(["+", "-", "*", "/", "%", "=", "!=", "<", "<=", ">", ">=", "&", "and", "or", "in"]);

/**
 * Where a node is evaluated: once per evaluation (`root`), or once per item of a path step or
 * filter (`item`), where only the item's own data is cheap.
 */
type Context = "root" | "item";

interface Findings {
  buildsObjects: boolean;
}

/**
 * Checks `ast` (from `jsonata(source).ast()`).
 *
 * @example
 * checkBounded(jsonata('{ "id": data.entity._id, "name": $uppercase(data.entity.name) }').ast());
 * // { bounded: true, needsObjectInput: true }
 * checkBounded(jsonata("$distinct(data.items)").ast());
 * // { bounded: false, reason: "calls $distinct" }
 */
export function checkBounded(ast: unknown): BoundedCheck {
  const findings: Findings = { buildsObjects: false };
  const reason = visit(ast, "root", findings);
  return reason === undefined
    ? { bounded: true, needsObjectInput: findings.buildsObjects }
    : { bounded: false, reason };
}

/** Why `value` is not bounded in `context`, or undefined when it is. */
function visit(value: unknown, context: Context, findings: Findings): string | undefined {
  if (!isNode(value)) return "has a part this check does not know";
  const node = value;
  switch (node.type) {
    case "string":
    case "number":
    case "value":
      return onlyKeys(node, ["value", "predicate"]) ?? filters(node.predicate, findings);
    case "name":
      if (typeof node.value !== "string") return "has a part this check does not know";
      return onlyKeys(node, ["value", "stages", "predicate", "keepArray"]) ?? stagesOf(node, findings);
    case "variable":
      return onlyKeys(node, ["value", "stages", "predicate"]) ?? variable(node, context) ?? stagesOf(node, findings);
    case "path": {
      const unknown = onlyKeys(node, ["steps", "keepSingletonArray", "predicate"]);
      if (unknown) return unknown;
      if (!Array.isArray(node.steps) || node.steps.length === 0) return "has a part this check does not know";
      for (const [index, step] of node.steps.entries()) {
        const reason = visit(step, index === 0 ? context : "item", findings);
        if (reason) return reason;
      }
      return filters(node.predicate, findings);
    }
    case "binary":
      if (typeof node.value !== "string" || !LINEAR_OPERATORS.has(node.value))
        return node.value === ".." ? "builds a range" : `uses the operator ${String(node.value)}`;
      return (
        onlyKeys(node, ["value", "lhs", "rhs", "predicate"]) ??
        visit(node.lhs, context, findings) ??
        visit(node.rhs, context, findings) ??
        filters(node.predicate, findings)
      );
    case "unary":
      return unary(node, context, findings);
    case "condition":
      return (
        onlyKeys(node, ["condition", "then", "else", "predicate"]) ??
        visit(node.condition, context, findings) ??
        visit(node.then, context, findings) ??
        (node.else === undefined ? undefined : visit(node.else, context, findings)) ??
        filters(node.predicate, findings)
      );
    case "block":
      return (
        onlyKeys(node, ["expressions", "predicate"]) ??
        each(node.expressions, context, findings) ??
        filters(node.predicate, findings)
      );
    case "function":
      return (
        onlyKeys(node, ["value", "arguments", "procedure", "predicate", "stages"]) ??
        call(node, [], context, findings) ??
        stagesOf(node, findings)
      );
    case "apply": {
      const unknown = onlyKeys(node, ["value", "lhs", "rhs", "predicate"]);
      if (unknown) return unknown;
      const rhs = node.rhs;
      if (!isNode(rhs) || rhs.type !== "function") return "applies a function value with ~>";
      return (
        onlyKeys(rhs, ["value", "arguments", "procedure"]) ??
        call(rhs, [node.lhs], context, findings) ??
        filters(node.predicate, findings)
      );
    }
    case "regex":
      return "uses a regular expression";
    case "lambda":
    case "partial":
      return "defines a function";
    case "bind":
      return "binds a variable";
    case "sort":
      return "sorts";
    case "wildcard":
      return "uses the wildcard *";
    case "descendant":
      return "uses the descendant operator **";
    case "parent":
      return "uses the parent operator %";
    case "transform":
      return "uses a | | transform";
    default:
      return `uses ${node.type}`;
  }
}

function unary(node: AstNode, context: Context, findings: Findings): string | undefined {
  switch (node.value) {
    case "-":
      return onlyKeys(node, ["value", "expression", "predicate"]) ?? visit(node.expression, context, findings);
    case "[":
      return (
        onlyKeys(node, ["value", "expressions", "consarray", "predicate"]) ??
        each(node.expressions, context, findings) ??
        filters(node.predicate, findings)
      );
    case "{": {
      const unknown = onlyKeys(node, ["value", "lhs", "predicate"]);
      if (unknown) return unknown;
      if (context === "item") return "builds an object inside a path step or filter";
      findings.buildsObjects = true;
      if (!Array.isArray(node.lhs)) return "has a part this check does not know";
      for (const pair of node.lhs) {
        if (!Array.isArray(pair) || pair.length !== 2) return "has a part this check does not know";
        // Keys and values are evaluated over the group of the input, one object: still `root`.
        const reason = visit(pair[0], context, findings) ?? visit(pair[1], context, findings);
        if (reason) return reason;
      }
      return filters(node.predicate, findings);
    }
    default:
      return `uses the operator ${String(node.value)}`;
  }
}

/** A call of a built-in; `before` are arguments that `~>` puts in front of the written ones. */
function call(node: AstNode, before: unknown[], context: Context, findings: Findings): string | undefined {
  const procedure = node.procedure;
  if (!isNode(procedure) || procedure.type !== "variable" || onlyKeys(procedure, ["value"]) !== undefined)
    return "calls a function value";
  const name = String(procedure.value);
  const rule = LINEAR_FUNCTIONS.get(name);
  if (!rule) return `calls $${name}`;
  if (!Array.isArray(node.arguments)) return "has a part this check does not know";
  const args: unknown[] = [...before, ...node.arguments];
  if (args.length > rule.maxArguments) return `calls $${name} with ${args.length} arguments`;
  for (const position of rule.literal ?? []) {
    const arg = args[position];
    if (arg !== undefined && !isLiteral(arg)) return `calls $${name} with a computed argument ${position + 1}`;
  }
  return each(args, context, findings);
}

/** `$` is the context, `$$` the input; other variables are bindings (`$body`) or JSONata's built-ins. */
function variable(node: AstNode, context: Context): string | undefined {
  if (node.value === "") return undefined;
  if (context === "item") return `reads $${node.value === "$" ? "$" : String(node.value)} inside a path step or filter`;
  return undefined;
}

function stagesOf(node: AstNode, findings: Findings): string | undefined {
  return filters(node.stages, findings) ?? filters(node.predicate, findings);
}

/** `[...]` after a step: each filter is evaluated once per item. */
function filters(stages: unknown, findings: Findings): string | undefined {
  if (stages === undefined) return undefined;
  if (!Array.isArray(stages)) return "has a part this check does not know";
  for (const stage of stages) {
    if (!isNode(stage) || stage.type !== "filter") return "binds a position with #";
    const reason = onlyKeys(stage, ["expr"]) ?? visit(stage.expr, "item", findings);
    if (reason) return reason;
  }
  return undefined;
}

function each(nodes: unknown, context: Context, findings: Findings): string | undefined {
  if (!Array.isArray(nodes)) return "has a part this check does not know";
  for (const node of nodes) {
    const reason = visit(node, context, findings);
    if (reason) return reason;
  }
  return undefined;
}

/** A string, number, `true`, `false` or `null` written in the expression. */
function isLiteral(value: unknown): boolean {
  return (
    isNode(value) &&
    (value.type === "string" || value.type === "number" || value.type === "value") &&
    onlyKeys(value, ["value"]) === undefined
  );
}

/**
 * Why `node` is refused for a field beyond `type`, `position` and `allowed`, if it has one. A field
 * that is there but undefined says nothing (the parser leaves `name: undefined` on calls).
 */
function onlyKeys(node: AstNode, allowed: readonly string[]): string | undefined {
  for (const key of Object.keys(node)) {
    if (key === "type" || key === "position" || allowed.includes(key) || node[key] === undefined) continue;
    switch (key) {
      case "group":
        return "groups with { } after a path";
      case "focus":
        return "binds the context with @";
      case "index":
        return "binds a position with #";
      case "tuple":
      case "ancestor":
      case "seekingParent":
        return "uses the parent operator %";
      default:
        return `has a part this check does not know (${key})`;
    }
  }
  return undefined;
}

function isNode(value: unknown): value is AstNode {
  return typeof value === "object" && value !== null && typeof (value as { type?: unknown }).type === "string";
}
