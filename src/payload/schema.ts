import { z } from "zod";

/**
 * The body of an epilot custom action call (`type: external_integration`). Only what actiongate
 * relies on is required; every other field is kept as sent, because transforms may read it and
 * epilot adds fields over time.
 */
export const customActionPayloadSchema = z.looseObject({
  type: z.literal("external_integration"),
  timestamp: z.string().optional(),
  data: z.looseObject({
    org_id: z.union([z.string(), z.number()]).transform(String),
    entity: z.looseObject({
      _id: z.string().optional(),
      _schema: z.string().optional(),
    }),
    action_config: z
      .looseObject({
        app_id: z.string().optional(),
        component_id: z.string().optional(),
        name: z.string().optional(),
      })
      .optional(),
    app_options: z.record(z.string(), z.unknown()).optional(),
    execution_id: z.string().optional(),
    resume_token: z.string().optional(),
    callback_post_url: z.string().optional(),
  }),
});

export type CustomActionPayload = z.output<typeof customActionPayloadSchema>;

/** Why a body is not a custom action, in words for the 400 answer: `data.entity: is required`. */
export function describePayloadIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => {
      const path = issue.path.map(String).join(".") || "(body)";
      const message = issue.code === "invalid_type" && /received undefined/.test(issue.message) ? "is required" : issue.message;
      return `${path}: ${message}`;
    })
    .join("; ");
}
