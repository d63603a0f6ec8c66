import type { ParsedMessage } from "../payload/message.ts";
import type { CustomActionPayload } from "../payload/schema.ts";

/** The `match` keys of a route and where each one is read from the payload. */
const MATCH_FIELDS = {
  component_id: (payload) => payload.data.action_config?.component_id,
  app_id: (payload) => payload.data.action_config?.app_id,
  action_name: (payload) => payload.data.action_config?.name,
  entity_schema: (payload) => payload.data.entity._schema,
  org_id: (payload) => payload.data.org_id,
} satisfies Record<string, (payload: CustomActionPayload) => string | undefined>;

/** The `match` keys of a route of polled messages and where each one is read from the message. */
const MESSAGE_MATCH_FIELDS = {
  source: (parsed) => parsed.source,
  use_case_id: (parsed) => parsed.message.use_case_id,
  event_name: (parsed) => parsed.message.event_name,
  org_id: (parsed) => parsed.message.org_id,
} satisfies Record<string, (parsed: ParsedMessage) => string | undefined>;

type MatchValue = string | readonly string[] | undefined;

export type MatchRules = Partial<Record<keyof typeof MATCH_FIELDS, MatchValue>>;
export type MessageMatchRules = Partial<Record<keyof typeof MESSAGE_MATCH_FIELDS, MatchValue>>;

/** A `match` key that did not hold for a payload: what the route wants and what the payload has. */
export interface UnmetRule {
  readonly key: keyof typeof MATCH_FIELDS;
  /** The payload field the key reads (`data.action_config.component_id`). */
  readonly field: string;
  readonly expected: readonly string[];
  /** Undefined when the payload lacks the field. */
  readonly actual: string | undefined;
}

/** Where each key of a custom action's match reads, for messages (the schema documents the same paths). */
const FIELD_PATHS: Readonly<Record<keyof typeof MATCH_FIELDS, string>> = {
  component_id: "data.action_config.component_id",
  app_id: "data.action_config.app_id",
  action_name: "data.action_config.name",
  entity_schema: "data.entity._schema",
  org_id: "data.org_id",
};

interface RuleCheck<Input> {
  readonly key: string;
  readonly allowed: ReadonlySet<string>;
  readonly read: (input: Input) => string | undefined;
}

function ruleChecks<Input>(
  rules: Readonly<Record<string, MatchValue>>,
  fields: Readonly<Record<string, (input: Input) => string | undefined>>,
): RuleCheck<Input>[] {
  return Object.entries(rules).flatMap(([key, expected]) => {
    if (expected === undefined) return [];
    const read = fields[key];
    // The schema allows only known keys; one slipping through must not make the route match everything.
    if (!read) throw new Error(`match key ${key} cannot be read from this kind of input`);
    return [{ key, read, allowed: new Set(typeof expected === "string" ? [expected] : expected) }];
  });
}

function holds<Input>(check: RuleCheck<Input>, input: Input): boolean {
  const actual = check.read(input);
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
  const checks = ruleChecks(rules, MATCH_FIELDS);
  return (payload) => checks.every((check) => holds(check, payload));
}

/**
 * Compiles the `match` rules of a route of polled messages (`source`, `use_case_id`, `event_name`,
 * `org_id`) into one predicate over a message.
 *
 * @example
 * const matches = compileMessageMatch({ source: "erp-feed", event_name: ["contract.created", "contract.updated"] });
 * matches(parsedMessage); // true
 */
export function compileMessageMatch(rules: MessageMatchRules): (parsed: ParsedMessage) => boolean {
  const checks = ruleChecks(rules, MESSAGE_MATCH_FIELDS);
  return (parsed) => checks.every((check) => holds(check, parsed));
}

/**
 * The first key of `rules` that does not hold for `payload` (undefined when all hold), in the
 * order the schema lists them (component_id, app_id, action_name, entity_schema, org_id): why a
 * route did not take a call, as `explain` shows it. Decides exactly as {@link compileMatch} does.
 *
 * @example
 * firstUnmetRule({ component_id: "billing" }, payload);
 * // { key: "component_id", field: "data.action_config.component_id", expected: ["billing"], actual: "erp-contract-sync" }
 */
export function firstUnmetRule(rules: MatchRules, payload: CustomActionPayload): UnmetRule | undefined {
  const unmet = ruleChecks(rules, MATCH_FIELDS).find((check) => !holds(check, payload));
  if (!unmet) return undefined;
  const key = unmet.key as keyof typeof MATCH_FIELDS;
  return { key, field: FIELD_PATHS[key], expected: [...unmet.allowed], actual: unmet.read(payload) };
}
