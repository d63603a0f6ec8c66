import { createEpilotHttpClient } from "./http-client.ts";
import { resumeWorkflow } from "./resume.ts";
import type { EpilotConfig } from "./schema.ts";
import type { EpilotCallbacks } from "./types.ts";
import { writeBackEntity } from "./write-back.ts";

/**
 * The delivery engine's calls back to epilot, bound to the `epilot` config: resume only to
 * `callback_hosts`, write-back only to `entity_api_url`, both through `epilot.proxy` when set.
 *
 * @example
 * const epilot = createEpilotCallbacks(config.epilot, "actiongate/1.0.0");
 * await epilot.resume(callbackUrl, resumeToken);
 */
export function createEpilotCallbacks(config: EpilotConfig, userAgent: string): EpilotCallbacks {
  const client = createEpilotHttpClient(config.proxy);
  return {
    resume: (callbackUrl, resumeToken, trace) =>
      resumeWorkflow(
        { callbackUrl, resumeToken },
        { allowedHosts: config.callback_hosts, timeoutMs: config.timeout, userAgent, client, trace },
      ),
    writeBack: (entity, patch, token, trace) =>
      writeBackEntity(
        { entityApiUrl: config.entity_api_url, token, schema: entity.schema, entityId: entity.id, patch },
        { timeoutMs: config.timeout, userAgent, client, trace },
      ),
    close: () => client.close(),
  };
}
