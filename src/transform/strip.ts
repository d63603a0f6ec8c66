/** A dot path such as `data.app_options.api_key` or `data.items.*.secret`, split once at load time. */
export type StripPath = readonly string[];

const WILDCARD = "*";

/** Splits `a.b.*.c` into segments; empty segments are a config error the schema reports first. */
export function parseStripPath(path: string): StripPath {
  return path.split(".");
}

/**
 * Returns `value` without the given paths. `*` stands for any key of an object or any index of an
 * array. Containers on a removed path are copied, everything else is shared, so the caller's
 * object stays whole (write-back and logs still need the original).
 *
 * @example
 * stripPaths({ data: { app_options: { api_key: "s", erp: "1" } } }, [parseStripPath("data.app_options.api_key")]);
 * // { data: { app_options: { erp: "1" } } }
 */
export function stripPaths<T>(value: T, paths: readonly StripPath[]): T {
  const copiedArrays: unknown[][] = [];
  let out: unknown = value;
  for (const path of paths) out = stripOne(out, path, 0, copiedArrays);
  // Array elements are only marked while paths are applied, so that `items.0` and `items.1` both
  // mean the original positions; the marks go once every path is done (our copies, never the caller's).
  for (const array of copiedArrays) compact(array);
  return out as T;
}

const REMOVED: unique symbol = Symbol("removed");

function compact(array: unknown[]): void {
  let kept = 0;
  for (const item of array) if (item !== REMOVED) array[kept++] = item;
  array.length = kept;
}

function stripOne(node: unknown, path: StripPath, depth: number, copiedArrays: unknown[][]): unknown {
  if (node === null || typeof node !== "object") return node;
  const segment = path[depth]!;
  const isLast = depth === path.length - 1;

  if (Array.isArray(node)) {
    if (segment === WILDCARD) {
      if (isLast) return [];
      const mapped = node.map((item) => stripOne(item, path, depth + 1, copiedArrays));
      copiedArrays.push(mapped);
      return mapped;
    }
    const index = Number(segment);
    if (!Number.isInteger(index) || index < 0 || index >= node.length || node[index] === REMOVED) return node;
    const copy = node.slice();
    copy[index] = isLast ? REMOVED : stripOne(node[index], path, depth + 1, copiedArrays);
    copiedArrays.push(copy);
    return copy;
  }

  const record = node as Record<string, unknown>;
  if (segment === WILDCARD) {
    if (isLast) return {};
    const copy: Record<string, unknown> = {};
    for (const [key, inner] of Object.entries(record)) copy[key] = stripOne(inner, path, depth + 1, copiedArrays);
    return copy;
  }
  if (!Object.hasOwn(record, segment)) return node;
  const copy = { ...record };
  if (isLast) delete copy[segment];
  else copy[segment] = stripOne(record[segment], path, depth + 1, copiedArrays);
  return copy;
}

/**
 * The paths `paths` remove from `value`, written out (`*` replaced by the keys and indexes it
 * stood for), in the order strip applies them: what `explain` lists. A path that an earlier one
 * already removed is not listed again, as strip finds nothing there.
 *
 * @example
 * strippedPaths({ data: { items: [{ secret: 1 }, { secret: 2 }] } }, [parseStripPath("data.items.*.secret")]);
 * // ["data.items.0.secret", "data.items.1.secret"]
 */
export function strippedPaths(value: unknown, paths: readonly StripPath[]): string[] {
  const found: string[] = [];
  let current = value;
  for (const path of paths) {
    collect(current, path, 0, [], found);
    current = stripPaths(current, [path]);
  }
  return found;
}

function collect(node: unknown, path: StripPath, depth: number, at: string[], found: string[]): void {
  if (node === null || typeof node !== "object") return;
  const segment = path[depth]!;
  const keys = Array.isArray(node)
    ? node.map((_, index) => String(index))
    : Object.keys(node).filter((key) => Object.hasOwn(node, key));
  for (const key of segment === WILDCARD ? keys : keys.includes(segment) ? [segment] : []) {
    const inner = (node as Record<string, unknown>)[key];
    if (depth === path.length - 1) found.push([...at, key].join("."));
    else collect(inner, path, depth + 1, [...at, key], found);
  }
}
