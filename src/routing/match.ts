import type { CustomActionPayload } from "../payload/schema.ts";

/** The `match` keys of a route and where each one is read from the payload. */
const MATCH_FIELDS = {
  component_id: (payload) => payload.data.action_config?.component_id,
  app_id: (payload) => payload.data.action_config?.app_id,
  action_name: (payload) => payload.data.action_config?.name,
  entity_schema: (payload) => payload.data.entity._schema,
  org_id: (payload) => payload.data.org_id,
} satisfies Record<string, (payload: CustomActionPayload) => string | undefined>;

export type MatchRules = Partial<Record<keyof typeof MATCH_FIELDS, string | readonly string[] | undefined>>;

/**
 * Compiles `match` rules into one predicate: every listed key must hold, and a list means any of
 * its values.
 *
 * @example
 * const matches = compileMatch({ component_id: "erp-contract-sync", org_id: ["739224", "1"] });
 * matches(payload); // true
 */
export function compileMatch(rules: MatchRules): (payload: CustomActionPayload) => boolean {
  const checks = Object.entries(rules).flatMap(([key, expected]) => {
    if (expected === undefined) return [];
    const read = MATCH_FIELDS[key as keyof typeof MATCH_FIELDS];
    const allowed = new Set(typeof expected === "string" ? [expected] : expected);
    return [
      (payload: CustomActionPayload) => {
        const actual = read(payload);
        return actual !== undefined && allowed.has(actual);
      },
    ];
  });
  return (payload) => checks.every((check) => check(payload));
}
