import { z } from "zod";

/**
 * Finding the part of the config schema that checks one key path, for the messages the schema
 * itself cannot give: which keys a mapping knows (to suggest one for a typo) and whether a value is
 * a JSONata expression (where `$name` is JSONata's, not a forgotten `${NAME}`).
 */

/** A schema reached on a path, with the descriptions of the wrappers it was reached through. */
interface Reached {
  readonly schema: z.ZodType;
  readonly descriptions: readonly string[];
}

/**
 * The schemas that check the value at `path` (several where a union leaves it open), unwrapped
 * (optional, default, pipe). `raw` is the config as read, so that a tagged union (`target.type`)
 * picks its option.
 *
 * @example
 * schemasAt(configSchema, ["routes", 0, "target"], raw); // [the http target's object schema]
 */
export function schemasAt(schema: z.ZodType, path: readonly PropertyKey[], raw: unknown): Reached[] {
  let reached = unwrap({ schema, descriptions: [] }, raw);
  let value = raw;
  for (const segment of path) {
    value = isObjectLike(value) ? (value as Record<PropertyKey, unknown>)[segment] : undefined;
    reached = reached.flatMap((at) => {
      const child = childOf(at.schema, segment);
      return child ? unwrap({ schema: child, descriptions: [] }, value) : [];
    });
  }
  return reached;
}

/**
 * The keys the mapping at `path` may hold, in the schema's order; empty when no mapping is there.
 *
 * @example
 * knownKeysAt(configSchema, ["routes", 0], raw); // ["name", "match", "strip", ...]
 */
export function knownKeysAt(schema: z.ZodType, path: readonly PropertyKey[], raw: unknown): string[] {
  const keys = new Set<string>();
  for (const { schema: at } of schemasAt(schema, path, raw)) {
    if (at instanceof z.ZodObject) for (const key of Object.keys(at.shape)) keys.add(key);
  }
  return [...keys];
}

/**
 * Whether the value at `path` is a JSONata expression (declared with `expression()` in
 * transform/schema.ts, whose description begins "JSONata expression").
 *
 * @example
 * isExpressionAt(configSchema, ["routes", 0, "transform"], raw); // true
 * isExpressionAt(configSchema, ["routes", 0, "target", "url"], raw); // false: a template, JSONata only inside {{ }}
 */
export function isExpressionAt(schema: z.ZodType, path: readonly PropertyKey[], raw: unknown): boolean {
  return schemasAt(schema, path, raw).some((at) =>
    at.descriptions.some((description) => description.startsWith("JSONata expression")),
  );
}

function childOf(schema: z.ZodType, segment: PropertyKey): z.ZodType | undefined {
  if (schema instanceof z.ZodObject && typeof segment === "string") {
    const shape = schema.shape as Record<string, z.ZodType>;
    return Object.hasOwn(shape, segment) ? shape[segment] : undefined;
  }
  if (schema instanceof z.ZodArray && typeof segment === "number") return schema.element as z.ZodType;
  if (schema instanceof z.ZodRecord) return schema.valueType as z.ZodType;
  return undefined;
}

/** The schema itself once optional/default/pipe wrappers are removed; each option of a union. */
function unwrap(at: Reached, value: unknown, depth = 0): Reached[] {
  const { schema } = at;
  const descriptions = schema.description ? [...at.descriptions, schema.description] : at.descriptions;
  const next = (inner: unknown): Reached[] =>
    depth > 20 ? [] : unwrap({ schema: inner as z.ZodType, descriptions }, value, depth + 1);
  if (
    schema instanceof z.ZodOptional ||
    schema instanceof z.ZodNullable ||
    schema instanceof z.ZodDefault ||
    schema instanceof z.ZodPrefault ||
    schema instanceof z.ZodCatch ||
    schema instanceof z.ZodReadonly ||
    schema instanceof z.ZodNonOptional
  )
    return next(schema.def.innerType);
  if (schema instanceof z.ZodPipe) return next(schema.def.in);
  if (schema instanceof z.ZodLazy) return next(schema.def.getter());
  if (schema instanceof z.ZodUnion) {
    const options = optionsFor(schema, value);
    return options.flatMap((option) => next(option));
  }
  return [{ schema, descriptions }];
}

/** A tagged union's option for the value's tag (`type: soap`); every option when the tag matches none. */
function optionsFor(union: z.ZodUnion, value: unknown): readonly z.ZodType[] {
  const options = union.options as readonly z.ZodType[];
  if (!(union instanceof z.ZodDiscriminatedUnion) || !isObjectLike(value)) return options;
  const tag = (value as Record<string, unknown>)[union.def.discriminator];
  const matching = options.filter((option) => {
    if (!(option instanceof z.ZodObject)) return false;
    const literal = (option.shape as Record<string, z.ZodType>)[union.def.discriminator];
    return literal instanceof z.ZodLiteral && literal.values.has(tag as z.core.util.Literal);
  });
  return matching.length > 0 ? matching : options;
}

function isObjectLike(value: unknown): boolean {
  return typeof value === "object" && value !== null;
}
