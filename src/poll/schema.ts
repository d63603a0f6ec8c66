import { z } from "zod";
import { INTEGRATION_TOOLKIT_URL } from "../epilot/schema.ts";
import { isRecord } from "../kit/records.ts";
import { duration, durationAtLeast, envNumber } from "../kit/units.ts";
import { tokenBaseUrl } from "../kit/urls.ts";

export const pollSourceSchema = z
  .strictObject({
    name: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, "must be letters, digits, `.`, `_` or `-` (at most 64)")
      .describe("the source's name: routes take its messages with match.source"),
    integration_id: z.string().min(1).describe("the epilot integration whose outbound queue is polled"),
    token: z.string().min(1).describe("a token with the integration:consume grant on that integration; use ${ENV}"),
    api_url: tokenBaseUrl
      .default(INTEGRATION_TOOLKIT_URL)
      .describe("base URL of epilot's Integration Toolkit API (https; http only for loopback hosts)"),
    interval: duration
      .prefault("10s")
      .describe("the pause after an empty batch; a full batch (has_more) is followed by the next poll at once"),
    limit: envNumber(z.number().int().min(1).max(100))
      .prefault(100)
      .describe("messages leased per poll (epilot allows 1 to 100)"),
    timeout: duration.prefault("30s").describe("deadline for one poll or ack request"),
    dedupe_window: durationAtLeast(3_600_000)
      .prefault("30d")
      .describe(
        "how long the (use_case_id, event_id) of each stored message is remembered, so that epilot's redelivery is not stored twice; at least the use case's retention_days (30 by default at epilot, at most 90)",
      ),
  })
  .describe(
    "One feed of epilot's Pollable Outbound queue: actiongate leases its messages, stores them, acknowledges them, and delivers them through the routes whose match.source names it. Needs `store`. See docs/pollable-outbound.md.",
  );

export const pollSchema = z
  .array(pollSourceSchema)
  .superRefine(
    (sources, ctx) => {
      const names = new Set<string>();
      const integrations = new Set<string>();
      sources.forEach((source, index) => {
        // Runs even when other entries are invalid, so `source` may be any YAML value here.
        if (!isRecord(source)) return;
        const name: unknown = source.name;
        if (typeof name === "string") {
          if (names.has(name))
            ctx.addIssue({ code: "custom", message: `duplicate poll name "${name}"`, path: [index, "name"] });
          names.add(name);
        }
        if (typeof source.integration_id === "string") {
          const stream = `${String(source.api_url ?? INTEGRATION_TOOLKIT_URL)} ${source.integration_id}`;
          if (integrations.has(stream)) {
            ctx.addIssue({
              code: "custom",
              message: "another poll entry polls this integration: one integration is one stream, polled by one loop",
              path: [index, "integration_id"],
            });
          }
          integrations.add(stream);
        }
      });
    },
    { when: ({ value }) => Array.isArray(value) },
  )
  .describe("epilot's Pollable Outbound feeds this gateway leases messages from (no inbound port needed).");

export type PollSourceConfig = z.output<typeof pollSourceSchema>;
