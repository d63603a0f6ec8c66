import { z } from "zod";

// YAML reads `org_id: 739224` as a number; epilot's ids are compared as strings.
const matchScalar = z.union([z.string().min(1, "must not be empty"), z.number().int().transform(String)]);
const matchValue = z.union([matchScalar, z.array(matchScalar).min(1, "must not be empty")], {
  error: "must be a string or a list of strings",
});

/** The keys that read a custom action call; a route with `source` may not use them. */
export const CALL_MATCH_KEYS = ["component_id", "app_id", "action_name", "entity_schema"] as const;
/** The keys that read a polled message; they need `source`. */
export const MESSAGE_MATCH_KEYS = ["use_case_id", "event_name"] as const;

export const matchSchema = z
  .strictObject({
    component_id: matchValue.optional().describe("data.action_config.component_id"),
    app_id: matchValue.optional().describe("data.action_config.app_id"),
    action_name: matchValue.optional().describe("data.action_config.name"),
    entity_schema: matchValue.optional().describe("data.entity._schema"),
    org_id: matchValue.optional().describe("data.org_id of a call; org_id of a polled message"),
    source: z
      .string()
      .min(1, "must not be empty")
      .optional()
      .describe(
        "the name of a `poll` entry: the route takes the messages that source leases from epilot's Pollable Outbound queue, and never a custom action call",
      ),
    use_case_id: matchValue
      .optional()
      .describe("polled messages: the use case that produced the message (needs source)"),
    event_name: matchValue
      .optional()
      .describe("polled messages: the event's name, e.g. contract.updated (needs source)"),
  })
  .refine((m) => Object.values(m).some((value) => value !== undefined), "must list at least one key")
  .superRefine((m, ctx) => {
    const keys = m.source === undefined ? MESSAGE_MATCH_KEYS : CALL_MATCH_KEYS;
    for (const key of keys) {
      if (m[key] === undefined) continue;
      ctx.addIssue({
        code: "custom",
        path: [key],
        message:
          m.source === undefined
            ? "reads a polled message; it needs match.source (the poll entry)"
            : "reads a custom action call; a route with match.source takes polled messages only",
      });
    }
  })
  .describe(
    "Which input the route takes: for `POST /actions`, a call for which every listed key holds; with `source`, the polled messages of that source for which every listed key holds. A list means any of its values.",
  );

export type MatchConfig = z.output<typeof matchSchema>;
