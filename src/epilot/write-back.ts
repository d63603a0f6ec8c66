import type { Client } from "@epilot/sdk/entity";
import type { HttpClient } from "../runtime/http-client.ts";
import { noopSpan, serverAttributes, type TraceSpan } from "../telemetry/tracer.ts";
import { httpClientAdapter } from "./axios-adapter.ts";
import { createEpilotHttpClient } from "./http-client.ts";
import { classifyAnswer, classifyNoAnswer, endCallSpan } from "./outcome.ts";
import type { EpilotCallOutcome } from "./types.ts";

export interface WriteBackInput {
  /** `epilot.entity_api_url`, e.g. https://entity.sls.epilot.io (a path prefix is kept). */
  readonly entityApiUrl: string;
  /** The call's x-epilot-token: epilot's short-lived token for exactly this action. */
  readonly token: string;
  /** `data.entity._schema` of the payload, e.g. `contract`. */
  readonly schema: string;
  /** `data.entity._id` of the payload. */
  readonly entityId: string;
  /** What the route's `response.write_back` produced: the attributes to set on the entity. */
  readonly patch: Record<string, unknown>;
}

export interface WriteBackOptions {
  /** One deadline for the whole call: connect, send, answer. */
  readonly timeoutMs: number;
  readonly userAgent: string;
  /** The client for calls to epilot (`epilot.proxy`); default: a direct one. */
  readonly client?: HttpClient;
  /** The attempt's span: the call is a client span inside it (epilot gets no `traceparent`). */
  readonly trace?: TraceSpan | undefined;
}

/** For callers that give no client: direct, shared by every write-back. */
const directClient = createEpilotHttpClient();

/**
 * One entity client per base URL: building one expands epilot's API definition (a few ms of CPU),
 * so it is done once. The client holds no token: each call sends its own `Authorization` header
 * with the request, because the SDK's `authorize()` sets it on the client's shared defaults, where
 * concurrent write-backs would see each other's tokens.
 */
const clients = new Map<string, Client>();

/**
 * The SDK is loaded on the first write-back, not at start: its bundled API definitions cost about
 * 20 MB of memory and 40 ms of start-up, which gateways whose routes never write back should not pay.
 */
let entitySdk: Promise<typeof import("@epilot/sdk/entity")> | undefined;

async function entityClient(baseURL: string): Promise<Client> {
  let client = clients.get(baseURL);
  if (!client) {
    entitySdk ??= import("@epilot/sdk/entity");
    const { createClient } = await entitySdk;
    // createClient() builds from the definition bundled in @epilot/sdk: nothing is fetched at run time.
    client = clients.get(baseURL) ?? createClient();
    client.defaults.baseURL = baseURL;
    clients.set(baseURL, client);
  }
  return client;
}

/**
 * Writes a delivery's result back onto the epilot entity the action ran for: `PATCH
 * /v1/entity/{schema}/{id}` at `entityApiUrl` through @epilot/sdk's entity client, authorised with
 * the call's x-epilot-token. 401/403 mean the token expired or lacks the right, which no retry
 * mends: `fatal`. The SDK's axios sends through actiongate's own HTTP client (an adapter), so the
 * call takes `epilot.proxy` when one is configured and never a proxy from the environment, and
 * redirects are not followed (the token would go along), the same as every other call to epilot.
 *
 * @example
 * const outcome = await writeBackEntity(
 *   { entityApiUrl: "https://entity.sls.epilot.io", token, schema: "contract", entityId: entity._id, patch: { erp_id: "4711" } },
 *   { timeoutMs: 10_000, userAgent: "actiongate/1.0.0" },
 * );
 */
export async function writeBackEntity(input: WriteBackInput, options: WriteBackOptions): Promise<EpilotCallOutcome> {
  const invalid = checkInput(input);
  if (invalid) return { kind: "fatal", reason: invalid };
  const path = `/v1/entity/${encodeURIComponent(input.schema)}/${encodeURIComponent(input.entityId)}`;
  const what = `write-back to ${describeBase(input.entityApiUrl)}${path}`;
  const span = (options.trace ?? noopSpan).child("PATCH", "client", {
    "http.request.method": "PATCH",
    "actiongate.epilot.call": "write_back",
    ...entityApiServer(input.entityApiUrl),
  });
  const outcome = await patchEntity(input, what, options);
  endCallSpan(span, outcome);
  return outcome;
}

async function patchEntity(input: WriteBackInput, what: string, options: WriteBackOptions): Promise<EpilotCallOutcome> {
  const deadline = AbortSignal.timeout(options.timeoutMs);
  try {
    const client = await entityClient(input.entityApiUrl);
    const response = await client.patchEntity({ slug: input.schema, id: input.entityId }, input.patch, {
      headers: { authorization: `Bearer ${input.token}`, "user-agent": options.userAgent, accept: "application/json" },
      signal: deadline,
      timeout: options.timeoutMs,
      // Every status is an answer to classify here, not an exception.
      validateStatus: () => true,
      maxRedirects: 0,
      // Only the status matters: the body (the whole entity) is not read.
      adapter: httpClientAdapter(options.client ?? directClient, { discardBody: true }),
    });
    const status = response.status;
    if (status === 401 || status === 403) {
      return {
        kind: "fatal",
        reason: `x-epilot-token expired or was refused (HTTP ${status}); write-back needs a new call from epilot`,
        status,
      };
    }
    const retryAfter: unknown = response.headers["retry-after"];
    return classifyAnswer(status, typeof retryAfter === "string" ? retryAfter : undefined, what);
  } catch (error) {
    return classifyNoAnswer(error, deadline.aborted, options.timeoutMs, what);
  }
}

function checkInput(input: WriteBackInput): string | undefined {
  const { patch } = input;
  if (patch === null || typeof patch !== "object" || Array.isArray(patch)) return "write-back patch is not an object";
  if (Object.keys(patch).length === 0) return "write-back patch is empty";
  try {
    JSON.stringify(patch);
  } catch {
    return "write-back patch cannot be written as JSON";
  }
  if (
    typeof input.schema !== "string" ||
    input.schema === "" ||
    typeof input.entityId !== "string" ||
    input.entityId === ""
  ) {
    return "the payload names no entity (data.entity._schema and _id) to write back to";
  }
  // A token that cannot be a header value would make the request throw after retries; say so once.
  if (typeof input.token !== "string" || !/^[\x21-\x7e]+$/.test(input.token))
    return "the call carried no usable x-epilot-token";
  return undefined;
}

/** `server.*` of the entity API, for the call's span (none when the URL cannot be read). */
function entityApiServer(entityApiUrl: string): Partial<ReturnType<typeof serverAttributes>> {
  try {
    return serverAttributes(new URL(entityApiUrl));
  } catch {
    return {};
  }
}

/** `host/path-prefix` of the entity API, for reasons. */
function describeBase(entityApiUrl: string): string {
  try {
    const url = new URL(entityApiUrl);
    return `${url.host}${url.pathname.replace(/\/$/, "")}`;
  } catch {
    return "the entity API";
  }
}
