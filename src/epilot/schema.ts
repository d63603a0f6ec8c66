import { z } from "zod";
import { duration } from "../kit/units.ts";
import { absoluteUrl } from "../kit/urls.ts";

export const epilotSchema = z
  .strictObject({
    callback_hosts: z
      .array(z.string().min(1))
      .default(["automation.sls.epilot.io"])
      .describe(
        "hosts (host or host:port) that resume calls may go to; callback_post_url elsewhere is refused and logged. https is required except for loopback hosts",
      ),
    entity_api_url: absoluteUrl
      .default("https://entity.sls.epilot.io")
      .describe("epilot's entity API, where write-back PATCHes go"),
    timeout: duration.prefault("10s").describe("deadline for one resume or write-back call"),
  })
  .describe("Calls back to epilot: resuming paused workflows and writing results to the entity.");

export type EpilotConfig = z.output<typeof epilotSchema>;
