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

/** A `match` key that did not hold for a payload: what the route wants and what the payload has. */
export interface UnmetRule {
  readonly key: keyof typeof MATCH_FIELDS;
  /** The payload field the key reads (`data.action_config.component_id`). */
  readonly field: string;
  readonly expected: readonly string[];
  /** Undefined when the payload lacks the field. */
  readonly actual: string | undefined;
}

/** Where each key reads, for messages (the schema documents the same paths). */
const FIELD_PATHS: Readonly<Record<keyof typeof MATCH_FIELDS, string>> = {
  component_id: "data.action_config.component_id",
  app_id: "data.action_config.app_id",
  action_name: "data.action_config.name",
  entity_schema: "data.entity._schema",
  org_id: "data.org_id",
};

interface RuleCheck {
  readonly key: keyof typeof MATCH_FIELDS;
  readonly allowed: ReadonlySet<string>;
  readonly read: (payload: CustomActionPayload) => string | undefined;
}

function ruleChecks(rules: MatchRules): RuleCheck[] {
  return Object.entries(rules).flatMap(([name, expected]) => {
    if (expected === undefined) return [];
    const key = name as keyof typeof MATCH_FIELDS;
    return [{ key, read: MATCH_FIELDS[key], allowed: new Set(typeof expected === "string" ? [expected] : expected) }];
  });
}

function holds(check: RuleCheck, payload: CustomActionPayload): boolean {
  const actual = check.read(payload);
  return actual !== undefined && check.allowed.has(actual);
}

/**
 * Compiles `match` rules into one predicate: every listed key must hold, and a list means any of
 * its values.
 *
 * @example
 * const matches = compileMatch({ component_id: "erp-contract-sync", org_id: ["739224", "1"] });
 * matches(payload); // true
 */
export function compileMatch(rules: MatchRules): (payload: CustomActionPayload) => boolean {
  const checks = ruleChecks(rules);
  return (payload) => checks.every((check) => holds(check, payload));
}

/**
 * The first key of `rules` that does not hold for `payload` (undefined when all hold), in the
 * order the schema lists them (component_id, app_id, action_name, entity_schema, org_id): why a route did not take a call, as `explain` shows it. Decides
 * exactly as {@link compileMatch} does.
 *
 * @example
 * firstUnmetRule({ component_id: "billing" }, payload);
 * // { key: "component_id", field: "data.action_config.component_id", expected: ["billing"], actual: "erp-contract-sync" }
 */
export function firstUnmetRule(rules: MatchRules, payload: CustomActionPayload): UnmetRule | undefined {
  const unmet = ruleChecks(rules).find((check) => !holds(check, payload));
  if (!unmet) return undefined;
  return { key: unmet.key, field: FIELD_PATHS[unmet.key], expected: [...unmet.allowed], actual: unmet.read(payload) };
}
