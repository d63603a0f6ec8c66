import { z } from "zod";

/**
 * The fields of an epilot custom action call (`type: external_integration`) that actiongate relies
 * on. Only these are checked; every other field is kept as sent (see {@link CustomActionPayload}),
 * because transforms may read it and epilot adds fields over time.
 */
export const customActionPayloadSchema = z.object({
  type: z.literal("external_integration"),
  timestamp: z.string().optional(),
  data: z.object({
    org_id: z.union([z.string(), z.number()]).transform(String),
    entity: z.object({
      _id: z.string().optional(),
      _schema: z.string().optional(),
    }),
    action_config: z
      .object({
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

type CheckedFields = z.output<typeof customActionPayloadSchema>;
type Open<T> = T & { readonly [key: string]: unknown };

/** A custom action payload: the checked fields typed, everything else as sent. */
export type CustomActionPayload = Open<
  Omit<CheckedFields, "data"> & {
    data: Open<
      Omit<CheckedFields["data"], "entity" | "action_config"> & {
        entity: Open<CheckedFields["data"]["entity"]>;
        action_config?: Open<NonNullable<CheckedFields["data"]["action_config"]>>;
      }
    >;
  }
>;

export type PayloadCheck = { ok: true; payload: CustomActionPayload } | { ok: false; error: z.ZodError };

/**
 * Checks a parsed JSON body against the fields actiongate relies on and returns the body itself, not
 * a copy: a loose schema would copy every key of the (often large) entity on every call. `org_id` is
 * made text, as the schema says (YAML and epilot may give a number).
 *
 * @example
 * const checked = checkCustomActionPayload(JSON.parse(text));
 * if (checked.ok) route(checked.payload);
 */
export function checkCustomActionPayload(json: unknown): PayloadCheck {
  const result = customActionPayloadSchema.safeParse(json);
  if (!result.success) return { ok: false, error: result.error };
  const payload = json as CustomActionPayload;
  // The parsed body is ours alone: normalising it in place keeps one object for everything after.
  (payload.data as { org_id: string }).org_id = result.data.data.org_id;
  return { ok: true, payload };
}

/** Why a body is not a custom action, in words for the 400 answer: `data.entity: is required`. */
export function describePayloadIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => {
      const path = issue.path.map(String).join(".") || "(body)";
      const message =
        issue.code === "invalid_type" && /received undefined/.test(issue.message) ? "is required" : issue.message;
      return `${path}: ${message}`;
    })
    .join("; ");
}
