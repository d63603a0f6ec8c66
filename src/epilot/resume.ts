import type { HttpClient } from "../runtime/http-client.ts";
import { noopSpan, serverAttributes, type TraceSpan } from "../telemetry/tracer.ts";
import { isCallbackAllowed } from "./callback-hosts.ts";
import { createEpilotHttpClient } from "./http-client.ts";
import { classifyAnswer, classifyNoAnswer, describeEndpoint, endCallSpan } from "./outcome.ts";
import type { EpilotCallOutcome } from "./types.ts";

export interface ResumeInput {
  /** `data.callback_post_url` of the payload: where epilot wants the resume, used exactly as given. */
  readonly callbackUrl: string;
  /** `data.resume_token` of the payload. */
  readonly resumeToken: string;
}

export interface ResumeOptions {
  /** `epilot.callback_hosts`: see {@link isCallbackAllowed} for how entries match. */
  readonly allowedHosts: readonly string[];
  /** One deadline for the whole call: connect, send, answer. */
  readonly timeoutMs: number;
  readonly userAgent: string;
  /** The client for calls to epilot (`epilot.proxy`); default: a direct one shared by every call. */
  readonly client?: HttpClient;
  /** The attempt's span: the call is a client span inside it (epilot gets no `traceparent`). */
  readonly trace?: TraceSpan | undefined;
}

/** For callers that give no client: one keep-alive client, direct, for every resume call. */
const directClient = createEpilotHttpClient();

/** Only the status matters; epilot's answer (the execution) is small, and anything larger is not an answer we expect. */
const MAX_RESUME_ANSWER_BYTES = 256 * 1024;

/**
 * Resumes a paused epilot workflow: POSTs `{"resume_token": ...}` to the payload's
 * `callback_post_url`, once its host passed `epilot.callback_hosts` (otherwise `refused`, and no
 * request is made). The URL from the payload is used as is rather than through the SDK's
 * `resumeExecutionWithToken`, whose path is fixed: epilot's callback URL is authoritative.
 *
 * @example
 * const outcome = await resumeWorkflow(
 *   { callbackUrl: payload.data.callback_post_url, resumeToken: payload.data.resume_token },
 *   { allowedHosts: ["automation.sls.epilot.io"], timeoutMs: 10_000, userAgent: "actiongate/1.0.0" },
 * );
 * if (outcome.kind === "retry") scheduleRetry(outcome.retryAfterMs);
 */
export async function resumeWorkflow(input: ResumeInput, options: ResumeOptions): Promise<EpilotCallOutcome> {
  const allowed = isCallbackAllowed(input.callbackUrl, options.allowedHosts);
  if (!allowed.ok) return { kind: "refused", reason: allowed.reason };
  if (typeof input.resumeToken !== "string" || input.resumeToken === "") {
    return { kind: "fatal", reason: "the payload carries no resume_token" };
  }
  const url = allowed.url;
  const what = `resume call to ${describeEndpoint(url)}`;

  const span = (options.trace ?? noopSpan).child("POST", "client", {
    "http.request.method": "POST",
    "actiongate.epilot.call": "resume",
    ...serverAttributes(url),
  });
  const outcome = await send(url, input.resumeToken, what, options);
  endCallSpan(span, outcome);
  return outcome;
}

async function send(url: URL, resumeToken: string, what: string, options: ResumeOptions): Promise<EpilotCallOutcome> {
  const deadline = AbortSignal.timeout(options.timeoutMs);
  try {
    const response = await (options.client ?? directClient).request({
      url,
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json", "user-agent": options.userAgent },
      body: JSON.stringify({ resume_token: resumeToken }),
      signal: deadline,
      maxResponseSize: MAX_RESUME_ANSWER_BYTES,
    });
    return classifyAnswer(response.status, response.headers["retry-after"], what);
  } catch (error) {
    return classifyNoAnswer(error, deadline.aborted, options.timeoutMs, what);
  }
}
