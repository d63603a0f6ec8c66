import { z } from "zod";
import { duration } from "../kit/units.ts";
import { absoluteUrl } from "../kit/urls.ts";
import { proxySchema } from "../runtime/proxy.ts";

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
    proxy: proxySchema
      .optional()
      .describe(
        "forward proxy for every call to epilot (the verification key, resume, write-back, polling, monitoring; `CONNECT` for https): `http://proxy:3128`, or a mapping with credentials and `no_proxy`; the environment's HTTP(S)_PROXY is never used",
      ),
  })
  .describe(
    "Calls to epilot: resuming paused workflows, writing results to the entity, and how they leave the network.",
  );

export type EpilotConfig = z.output<typeof epilotSchema>;
