import { z } from "zod";

const DURATION_UNITS_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const SIZE_UNITS_BYTES = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 } as const;

/** What {@link parseDuration} accepts, as a JSON Schema `pattern` (no flags, so the case is spelled out). */
export const DURATION_PATTERN = "^\\s*(\\d+(?:\\.\\d+)?)\\s*([mM][sS]|[sSmMhHdD])\\s*$";
/** What {@link parseSize} accepts, as a JSON Schema `pattern`. */
export const SIZE_PATTERN = "^\\s*(\\d+(?:\\.\\d+)?)\\s*([kKmMgG]?[bB])\\s*$";
const DURATION = new RegExp(DURATION_PATTERN);
const SIZE = new RegExp(SIZE_PATTERN);

/** Parses `500ms`, `10s`, `5m`, `2h`, `30d` into milliseconds; `undefined` when it is not a duration. */
export function parseDuration(text: string): number | undefined {
  const match = DURATION.exec(text);
  if (!match) return undefined;
  return Math.round(Number(match[1]) * DURATION_UNITS_MS[match[2]!.toLowerCase() as keyof typeof DURATION_UNITS_MS]);
}

/** Parses `512kb`, `1mb`, `100b` (binary multiples) into bytes; `undefined` when it is not a size. */
export function parseSize(text: string): number | undefined {
  const match = SIZE.exec(text);
  if (!match) return undefined;
  return Math.floor(Number(match[1]) * SIZE_UNITS_BYTES[match[2]!.toLowerCase() as keyof typeof SIZE_UNITS_BYTES]);
}

/** Formats milliseconds the way an operator wrote them (`10s`, `1500ms`), for messages. */
export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0 && ms >= 3_600_000) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms >= 60_000) return `${ms / 60_000}m`;
  if (ms % 1000 === 0 && ms >= 1000) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** A config duration: a string such as `10s`, read as milliseconds. */
export const duration = z
  .string({ error: (issue) => bareNumber(issue.input, "a duration such as 500ms, 10s or 5m") })
  .describe("a duration: `500ms`, `10s`, `5m`, `1h`")
  .transform((text, ctx) => {
    const ms = parseDuration(text);
    if (ms === undefined) {
      ctx.addIssue({ code: "custom", message: `must be a duration such as 500ms, 10s or 5m (got "${text}")` });
      return z.NEVER;
    }
    if (ms <= 0) {
      // A zero timeout fails every call, a zero backoff or refresh interval hammers the other side.
      ctx.addIssue({ code: "custom", message: `must be longer than 0 (got "${text}")` });
      return z.NEVER;
    }
    return ms;
  });

/** A config size: a string such as `1mb`, read as bytes. */
export const size = z
  .string({ error: (issue) => bareNumber(issue.input, "a size such as 512kb or 1mb") })
  .describe("a size: `512kb`, `1mb`")
  .transform((text, ctx) => {
    const bytes = parseSize(text);
    if (bytes === undefined || bytes <= 0) {
      ctx.addIssue({ code: "custom", message: `must be a size such as 512kb or 1mb (got "${text}")` });
      return z.NEVER;
    }
    return bytes;
  });

/** `timeout: 10` is a likely slip; "must be a string" would not tell the operator what is missing. */
function bareNumber(input: unknown, what: string): string | undefined {
  return typeof input === "number" ? `must be ${what}, with its unit (got ${input})` : undefined;
}

/**
 * A number key that also takes the text of a number, which is what `${PORT}` gives: values from
 * the environment are text, and only keys that expect a number read them as one.
 *
 * @example
 * envNumber(z.number().int().min(0)).parse("8080"); // 8080
 */
export function envNumber<T extends z.ZodType>(schema: T) {
  return z.preprocess(
    (value) => (typeof value === "string" && /^\s*-?\d+(\.\d+)?\s*$/.test(value) ? Number(value) : value),
    schema,
  );
}

/** A boolean key that also takes `"true"`/`"false"` from the environment. */
export function envBoolean<T extends z.ZodType>(schema: T) {
  return z.preprocess((value) => (value === "true" ? true : value === "false" ? false : value), schema);
}

/**
 * A duration with a floor, for keys where a tiny value would flood another system or refuse every
 * call, and optionally a ceiling, for keys where a large value would hold every caller up.
 */
export function durationAtLeast(minimumMs: number, maximumMs = Number.POSITIVE_INFINITY) {
  const schema = duration
    .refine((ms) => ms >= minimumMs, `must be at least ${formatDuration(minimumMs)}`)
    .refine((ms) => ms <= maximumMs, `must be at most ${formatDuration(maximumMs)}`);
  durationSchemas.add(schema);
  return schema;
}

/** A required duration with its own description (`.describe()` makes a new schema, which the docs would not know). */
export function describedDuration(description: string) {
  const schema = duration.describe(description);
  durationSchemas.add(schema);
  return schema;
}

/** Every duration schema, so that the docs generator can describe them all as durations. */
const durationSchemas = new WeakSet<object>([duration]);
export function isDurationSchema(schema: object): boolean {
  return durationSchemas.has(schema);
}
