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

/**
 * Compiles `match` rules into one predicate: every listed key must hold, and a list means any of
 * its values.
 *
 * @example
 * const matches = compileMatch({ component_id: "erp-contract-sync", org_id: ["739224", "1"] });
 * matches(payload); // true
 */
export function compileMatch(rules: MatchRules): (payload: CustomActionPayload) => boolean {
  return compileRules(rules, MATCH_FIELDS);
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
  return compileRules(rules, MESSAGE_MATCH_FIELDS);
}

function compileRules<Input>(
  rules: Readonly<Record<string, MatchValue>>,
  fields: Readonly<Record<string, (input: Input) => string | undefined>>,
): (input: Input) => boolean {
  const checks = Object.entries(rules).flatMap(([key, expected]) => {
    if (expected === undefined) return [];
    const read = fields[key];
    // The schema allows only known keys; one slipping through must not make the route match everything.
    if (!read) throw new Error(`match key ${key} cannot be read from this kind of input`);
    const allowed = new Set(typeof expected === "string" ? [expected] : expected);
    return [
      (input: Input) => {
        const actual = read(input);
        return actual !== undefined && allowed.has(actual);
      },
    ];
  });
  return (input) => checks.every((check) => check(input));
}
