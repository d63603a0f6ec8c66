import { z } from "zod";

// YAML reads `org_id: 739224` as a number; epilot's ids are compared as strings.
const matchScalar = z.union([z.string().min(1, "must not be empty"), z.number().int().transform(String)]);
const matchValue = z.union([matchScalar, z.array(matchScalar).min(1, "must not be empty")], {
  error: "must be a string or a list of strings",
});

export const matchSchema = z
  .strictObject({
    component_id: matchValue.optional().describe("data.action_config.component_id"),
    app_id: matchValue.optional().describe("data.action_config.app_id"),
    action_name: matchValue.optional().describe("data.action_config.name"),
    entity_schema: matchValue.optional().describe("data.entity._schema"),
    org_id: matchValue.optional().describe("data.org_id"),
  })
  .refine((m) => Object.values(m).some((value) => value !== undefined), "must list at least one key")
  .describe("For `POST /actions`: the route applies when every listed key holds; a list means any of its values.");

export type MatchConfig = z.output<typeof matchSchema>;
