/** A JSON object (or any non-null, non-array object): the one guard for "is this a mapping". */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
