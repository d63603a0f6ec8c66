import { z } from "zod";
import { duration } from "../kit/units.ts";
import { absoluteUrl, tokenBaseUrl } from "../kit/urls.ts";
import { proxySchema } from "../runtime/proxy.ts";

/** epilot's Integration Toolkit API, where Pollable Outbound and External Monitoring Events live. */
export const INTEGRATION_TOOLKIT_URL = "https://integration-toolkit.sls.epilot.io";

export const monitoringSchema = z
  .strictObject({
    integration_id: z.string().min(1).describe("the epilot integration the spans are reported to"),
    token: z.string().min(1).describe("a token with the integration:manage grant on that integration; use ${ENV}"),
    use_case_slug: z
      .string()
      .min(1)
      .describe("the use case the spans are grouped under (routes[].use_case_slug overrides it per route)"),
    api_url: tokenBaseUrl
      .default(INTEGRATION_TOOLKIT_URL)
      .describe("base URL of epilot's Integration Toolkit API (https; http only for loopback hosts)"),
    timeout: duration.prefault("10s").describe("deadline for one report (up to 100 spans)"),
  })
  .describe(
    "Reports each delivery's outcome to epilot's Integration Hub as an External Monitoring Event (a span per attempt: success, warning when retried, error when dead-lettered), batched in the background; it never delays or fails a delivery. See docs/pollable-outbound.md.",
  );

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
    monitoring: monitoringSchema.optional(),
  })
  .describe(
    "Calls to epilot: resuming paused workflows, writing results to the entity, monitoring, and how they leave the network.",
  );

export type EpilotConfig = z.output<typeof epilotSchema>;
export type MonitoringConfig = z.output<typeof monitoringSchema>;
