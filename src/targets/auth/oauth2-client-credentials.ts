import { z } from "zod";
import { InvalidConfigValue } from "../../kit/config-errors.ts";
import { formatDuration } from "../../kit/units.ts";
import { redactUrl } from "../../kit/urls.ts";
import { createTargetClient, exchange } from "../exchange.ts";
import { loadTargetTls, targetTlsSchema } from "../tls.ts";
import type { TargetOutcome } from "../types.ts";
import type { AuthContext, AuthDefinition, Authenticator, AuthHeaders } from "./types.ts";

/** Form fields the scheme sets itself; `params` may not replace them. */
const OWN_FIELDS = ["grant_type", "client_id", "client_secret", "scope", "audience"];

export const oauth2ClientCredentialsSchema = z
  .strictObject({
    type: z.literal("oauth2_client_credentials"),
    token_url: z
      .string()
      .describe(
        "the token endpoint (absolute http(s) URL), e.g. `https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token`",
      ),
    client_id: z.string().min(1).describe("the client's id, usually `${ENV}`"),
    client_secret: z.string().min(1).describe("the client's secret, usually `${ENV}`"),
    scope: z
      .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
      .optional()
      .describe("scope(s) asked for; a list is sent space-separated"),
    audience: z
      .string()
      .min(1)
      .optional()
      .describe("`audience` form field, for token endpoints that want one (Auth0, some API gateways)"),
    params: z
      .record(z.string().min(1), z.string())
      .default({})
      .describe("more form fields sent to the token endpoint (e.g. `resource` for Entra ID v1)"),
    client_auth: z
      .enum(["body", "basic"])
      .default("body")
      .describe(
        "how the client authenticates to the token endpoint: `body` sends client_id and client_secret as form fields, `basic` as `Authorization: Basic` (RFC 6749 2.3.1)",
      ),
    tls: targetTlsSchema
      .optional()
      .describe("TLS options for an https token endpoint (a private CA); default: the system's CAs"),
  })
  .describe(
    "OAuth2 client credentials (RFC 6749 4.4): a Bearer token from `token_url`, fetched once and shared by concurrent calls, kept until 30s before it expires; a 401 from the target fetches a fresh one and retries the call once.",
  )
  .meta({
    examples: [
      {
        type: "oauth2_client_credentials",
        token_url: "https://login.microsoftonline.com/${TENANT_ID}/oauth2/v2.0/token",
        client_id: "${BC_CLIENT_ID}",
        client_secret: "${BC_CLIENT_SECRET}",
        scope: "https://api.businesscentral.dynamics.com/.default",
      },
    ],
  });

export type OAuth2ClientCredentialsConfig = z.output<typeof oauth2ClientCredentialsSchema>;

/** A token is renewed this long before it expires (or at half its life, when that is shorter). */
export const TOKEN_RENEWAL_MARGIN_MS = 30_000;
/** How long a token without `expires_in` is kept at most (a 401 renews it sooner). */
const TOKEN_DEFAULT_LIFETIME_MS = 60 * 60_000;
/** A failed fetch is the answer for this long, so a burst of calls does not hammer a failing endpoint. */
const FAILURE_MEMORY_MS = 1_000;
/** A token answer is a few KB at most; anything larger is not one. */
const MAX_TOKEN_ANSWER_BYTES = 64 * 1024;
/** What an access token may hold to go into a header unchanged (RFC 6750 b64token, and JWTs). */
const TOKEN_CHARACTERS = /^[\x21-\x7e]+$/;
/** OAuth2 error codes are a small vocabulary (RFC 6749 5.2); anything else is not repeated. */
const ERROR_CODE = /^[a-z_]{1,40}$/;

interface CachedToken {
  readonly header: string;
  /** When a call stops using it (ms since epoch): the margin before its expiry. */
  readonly renewAt: number;
}

/**
 * OAuth2 client credentials: fetches a token from `token_url`, keeps it until
 * {@link TOKEN_RENEWAL_MARGIN_MS} before `expires_in`, and sends `Authorization: Bearer <token>`.
 * Concurrent calls share one fetch. A fetch that fails makes the call's outcome `unreachable`
 * (code `TOKEN_UNAVAILABLE`) with a reason that names neither the endpoint nor a secret: epilot
 * gets 502, async delivery retries with backoff, and the failures count against the target's
 * circuit breaker (the target cannot be called without its token; an open breaker also stops a
 * wrong secret from being tried against the identity provider on every call).
 *
 * @example
 * const auth = createOAuth2ClientCredentials(config, { configDir, logger, userAgent, timeoutMs: 10_000 });
 * const result = await auth.headers(AbortSignal.timeout(10_000)); // { ok: true, headers: { authorization: "Bearer ..." } }
 */
export function createOAuth2ClientCredentials(
  config: OAuth2ClientCredentialsConfig,
  context: AuthContext,
  now: () => number = Date.now,
): Authenticator {
  const tokenUrl = checkTokenUrl(config.token_url);
  for (const name of Object.keys(config.params)) {
    if (OWN_FIELDS.includes(name))
      throw new InvalidConfigValue(`is set by the scheme itself; use its own key`, ["params", name]);
  }
  const tls = config.tls && loadTargetTls(config.tls, context.configDir);
  const client = createTargetClient({
    connections: 2,
    timeoutMs: context.timeoutMs,
    ...(tls ? { tls } : {}),
    ...(context.proxy ? { proxy: context.proxy } : {}),
  });
  const form = tokenRequestForm(config);
  const requestHeaders: Record<string, string> = {
    "user-agent": context.userAgent,
    "content-type": "application/x-www-form-urlencoded",
    accept: "application/json",
    ...(config.client_auth === "basic"
      ? {
          authorization: `Basic ${Buffer.from(`${formEncode(config.client_id)}:${formEncode(config.client_secret)}`).toString("base64")}`,
        }
      : {}),
  };

  let cached: CachedToken | undefined;
  let inFlight: Promise<AuthHeaders> | undefined;
  let lastFailure: { at: number; outcome: TargetOutcome } | undefined;

  const fetchToken = async (): Promise<AuthHeaders> => {
    const started = now();
    const result = await exchange(client, {
      url: tokenUrl,
      method: "POST",
      headers: requestHeaders,
      body: form,
      timeoutMs: context.timeoutMs,
      maxResponseSize: MAX_TOKEN_ANSWER_BYTES,
    });
    const token = readTokenAnswer(result, context.timeoutMs);
    if (!token.ok) {
      const outcome: TargetOutcome = {
        kind: "unreachable",
        reason: `its access token could not be obtained (${token.problem})`,
        code: "TOKEN_UNAVAILABLE",
      };
      lastFailure = { at: now(), outcome };
      // The operator's log names the endpoint; epilot's answer and the dead letters never do.
      context.logger.warn("OAuth2 token fetch failed", {
        endpoint: redactUrl(config.token_url),
        problem: token.problem,
      });
      return { ok: false, outcome };
    }
    lastFailure = undefined;
    const lifetime = token.expiresInMs ?? TOKEN_DEFAULT_LIFETIME_MS;
    cached = {
      header: `Bearer ${token.accessToken}`,
      renewAt: started + lifetime - Math.min(TOKEN_RENEWAL_MARGIN_MS, lifetime / 2),
    };
    return { ok: true, headers: { authorization: cached.header } };
  };

  return {
    headerNames: ["authorization"],
    preview: () => ({ authorization: "Bearer <token from token_url>" }),
    async headers(signal) {
      if (cached && now() < cached.renewAt) return { ok: true, headers: { authorization: cached.header } };
      if (lastFailure && now() - lastFailure.at < FAILURE_MEMORY_MS) return { ok: false, outcome: lastFailure.outcome };
      inFlight ??= fetchToken().finally(() => {
        inFlight = undefined;
      });
      return waitOrAbort(inFlight, signal, context.timeoutMs);
    },
    refused(used) {
      // Only the token that was refused is dropped: a call that raced a renewal keeps the new one.
      if (cached && used.authorization === cached.header) cached = undefined;
      return true;
    },
    describe: () => ({
      type: "oauth2_client_credentials",
      token_url: redactUrl(config.token_url),
      client_id: config.client_id,
      client_secret: "***",
      client_auth: config.client_auth,
      ...(config.scope !== undefined
        ? { scope: typeof config.scope === "string" ? config.scope : config.scope.join(" ") }
        : {}),
      ...(config.audience !== undefined ? { audience: config.audience } : {}),
      ...(Object.keys(config.params).length > 0 ? { params: Object.keys(config.params) } : {}),
    }),
    close: () => client.close(),
  };
}

function checkTokenUrl(value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidConfigValue(`must be an absolute http(s) URL (got "${value}")`, ["token_url"]);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new InvalidConfigValue(`must be an absolute http(s) URL (got "${value}")`, ["token_url"]);
  if (url.username !== "" || url.password !== "")
    throw new InvalidConfigValue("must not carry credentials; set client_id and client_secret", ["token_url"]);
  return url;
}

/** `application/x-www-form-urlencoded`: as URLSearchParams writes it (space as `+`). */
function formEncode(value: string): string {
  return new URLSearchParams({ v: value }).toString().slice(2);
}

function tokenRequestForm(config: OAuth2ClientCredentialsConfig): string {
  const form = new URLSearchParams({ grant_type: "client_credentials" });
  if (config.client_auth === "body") {
    form.set("client_id", config.client_id);
    form.set("client_secret", config.client_secret);
  }
  if (config.scope !== undefined)
    form.set("scope", typeof config.scope === "string" ? config.scope : config.scope.join(" "));
  if (config.audience !== undefined) form.set("audience", config.audience);
  for (const [name, value] of Object.entries(config.params)) form.set(name, value);
  return form.toString();
}

type TokenAnswer = { ok: true; accessToken: string; expiresInMs?: number } | { ok: false; problem: string };

/** Reads the token endpoint's answer (RFC 6749 5.1 and 5.2); `problem` is safe to show epilot. */
function readTokenAnswer(result: Awaited<ReturnType<typeof exchange>>, timeoutMs: number): TokenAnswer {
  if (result.kind === "timeout")
    return { ok: false, problem: `the token endpoint did not answer within ${formatDuration(timeoutMs)}` };
  if (result.kind === "unreachable") return { ok: false, problem: `token endpoint: ${result.reason}` };
  let body: unknown;
  try {
    body = JSON.parse(result.body.toString("utf8"));
  } catch {
    body = undefined;
  }
  const fields = typeof body === "object" && body !== null ? (body as Record<string, unknown>) : {};
  if (result.status < 200 || result.status >= 300) {
    const code = typeof fields.error === "string" && ERROR_CODE.test(fields.error) ? `, ${fields.error}` : "";
    return { ok: false, problem: `the token endpoint answered HTTP ${result.status}${code}` };
  }
  const token = fields.access_token;
  if (typeof token !== "string" || !TOKEN_CHARACTERS.test(token))
    return { ok: false, problem: "the token endpoint's answer holds no usable access_token" };
  const type = fields.token_type;
  if (type !== undefined && (typeof type !== "string" || type.toLowerCase() !== "bearer"))
    return { ok: false, problem: "the token endpoint issued a token that is not a Bearer token" };
  const expiresIn = typeof fields.expires_in === "string" ? Number(fields.expires_in) : fields.expires_in;
  const expiresInMs =
    typeof expiresIn === "number" && Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn * 1000 : undefined;
  return { ok: true, accessToken: token, ...(expiresInMs !== undefined ? { expiresInMs } : {}) };
}

/**
 * The shared fetch, or the token failure for this caller when its own deadline passes first (a call
 * that joined a fetch late gives up when its deadline does, not when the fetch's does).
 */
function waitOrAbort(pending: Promise<AuthHeaders>, signal: AbortSignal, timeoutMs: number): Promise<AuthHeaders> {
  const timedOut: AuthHeaders = {
    ok: false,
    outcome: {
      kind: "unreachable",
      reason: `its access token could not be obtained (the token endpoint did not answer within ${formatDuration(timeoutMs)})`,
      code: "TOKEN_UNAVAILABLE",
    },
  };
  if (signal.aborted) return Promise.resolve(timedOut);
  return new Promise((resolve) => {
    const onAbort = () => resolve(timedOut);
    signal.addEventListener("abort", onAbort, { once: true });
    void pending.then((value) => {
      signal.removeEventListener("abort", onAbort);
      resolve(value);
    });
  });
}

export const oauth2ClientCredentials: AuthDefinition<typeof oauth2ClientCredentialsSchema> = {
  type: "oauth2_client_credentials",
  schema: oauth2ClientCredentialsSchema,
  create: (config, context) => createOAuth2ClientCredentials(config, context),
};
