import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { outboundMessageOf } from "../../../test/support/calls.ts";
import { startForwardProxy } from "../../../test/support/forward-proxy.ts";
import { type OAuth2Server, startOAuth2Server } from "../../../test/support/oauth2-server.ts";
import { closedPort } from "../../../test/support/recording-server.ts";
import { createLogger } from "../../log/logger.ts";
import { createHttpTarget, httpTargetSchema } from "../http.ts";
import type { Target } from "../types.ts";
import { createOAuth2ClientCredentials, oauth2ClientCredentialsSchema } from "./oauth2-client-credentials.ts";

/**
 * OAuth2 client credentials against a real token server and the API it protects (test/support/oauth2-server.ts).
 * Each test builds its own target, so the token cache starts empty.
 */

const SECRET = "client-s3cret with spaces&symbols";
let idp: OAuth2Server;
let logLines: string[] = [];
const context = () => ({
  configDir: "/tmp",
  logger: createLogger({ level: "debug", sink: (line) => logLines.push(line) }),
  userAgent: "actiongate/test",
});
const targets: Target[] = [];

function target(auth: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Target {
  const created = createHttpTarget(
    httpTargetSchema.parse({
      type: "http",
      url: `${idp.url}/api/contracts`,
      timeout: "2s",
      auth: {
        type: "oauth2_client_credentials",
        token_url: idp.tokenUrl,
        client_id: "gw-client",
        client_secret: SECRET,
        ...auth,
      },
      ...extra,
    }),
    context(),
  );
  targets.push(created);
  return created;
}
const message = () => outboundMessageOf({ body: { contract: "2026-0042" }, payload: {} }, "msg_1");

beforeAll(async () => {
  idp = await startOAuth2Server({ clientId: "gw-client", clientSecret: SECRET, expiresInSeconds: 3600 });
});
afterEach(async () => {
  await Promise.all(targets.splice(0).map((each) => each.close()));
  idp.failTokenEndpoint(undefined);
  idp.delayTokens(0);
  idp.tokenRequests.length = 0;
  idp.apiRequests.length = 0;
  logLines = [];
});
afterAll(() => idp.close());

describe("oauth2_client_credentials", () => {
  test("client_auth body: id and secret as form fields, with scope, audience and params; the call carries the Bearer token", async () => {
    const erp = target({ scope: ["erp.write", "erp.read"], audience: "https://erp", params: { resource: "urn:erp" } });
    expect(await erp.deliver(await message())).toMatchObject({ kind: "delivered", response: { status: 200 } });
    expect(idp.tokenRequests).toHaveLength(1);
    expect(idp.tokenRequests[0]).toMatchObject({
      clientAuth: "body",
      clientId: "gw-client",
      form: {
        grant_type: "client_credentials",
        client_id: "gw-client",
        client_secret: SECRET,
        scope: "erp.write erp.read",
        audience: "https://erp",
        resource: "urn:erp",
      },
    });
    expect(idp.tokenRequests[0]!.headers.authorization).toBeUndefined();
    expect(idp.apiRequests.map((request) => [request.token, request.accepted])).toEqual([[idp.issued.at(-1), true]]);
  });

  test("client_auth basic: id and secret form-urlencoded in Authorization: Basic, not in the form", async () => {
    const erp = target({ client_auth: "basic" });
    expect((await erp.deliver(await message())).kind).toBe("delivered");
    expect(idp.tokenRequests[0]).toMatchObject({ clientAuth: "basic", clientId: "gw-client" });
    expect(idp.tokenRequests[0]!.form).toEqual({ grant_type: "client_credentials" });
  });

  test("a server that takes only basic refuses body, and the reverse: each method is really what is sent", async () => {
    const onlyBasic = await startOAuth2Server({ clientId: "gw-client", clientSecret: SECRET, accepts: "basic" });
    try {
      const viaBody = target({ token_url: onlyBasic.tokenUrl });
      const outcome = await viaBody.deliver(await message());
      expect(outcome).toEqual({
        kind: "unreachable",
        reason: "its access token could not be obtained (the token endpoint answered HTTP 401, invalid_client)",
        code: "TOKEN_UNAVAILABLE",
      });
      const viaBasic = target({ token_url: onlyBasic.tokenUrl, client_auth: "basic" }, { url: `${onlyBasic.url}/api` });
      expect((await viaBasic.deliver(await message())).kind).toBe("delivered");
      expect(onlyBasic.tokenRequests.map((request) => request.clientAuth)).toEqual(["body", "basic"]);
      expect(onlyBasic.issued).toHaveLength(1);
    } finally {
      await onlyBasic.close();
    }
  });

  test("one token fetch is shared by 20 concurrent calls and reused afterwards", async () => {
    idp.delayTokens(100);
    const erp = target();
    const outcomes = await Promise.all(Array.from({ length: 20 }, async () => erp.deliver(await message())));
    expect(outcomes.every((outcome) => outcome.kind === "delivered")).toBe(true);
    expect((await erp.deliver(await message())).kind).toBe("delivered");
    expect(idp.tokenRequests).toHaveLength(1);
    expect(new Set(idp.apiRequests.map((request) => request.token))).toEqual(new Set([idp.issued.at(-1)]));
  });

  test("a token is kept until 30s before expires_in, then renewed (clock stepped)", async () => {
    let clock = 1_000_000;
    const auth = createOAuth2ClientCredentials(
      oauth2ClientCredentialsSchema.parse({
        type: "oauth2_client_credentials",
        token_url: idp.tokenUrl,
        client_id: "gw-client",
        client_secret: SECRET,
      }),
      { ...context(), timeoutMs: 2_000 },
      () => clock,
    );
    try {
      const first = await auth.headers(AbortSignal.timeout(2_000));
      // expires_in 3600s: the same token until 3570s after the fetch, a new one from then on.
      clock += 3_570_000 - 1;
      expect(await auth.headers(AbortSignal.timeout(2_000))).toEqual(first);
      expect(idp.tokenRequests).toHaveLength(1);
      clock += 1;
      const renewed = await auth.headers(AbortSignal.timeout(2_000));
      expect(idp.tokenRequests).toHaveLength(2);
      expect(renewed).not.toEqual(first);
    } finally {
      await auth.close();
    }
  });

  test("a token that lives less than a minute is renewed at half its life (real clock, real server)", async () => {
    const shortLived = await startOAuth2Server({ clientId: "gw-client", clientSecret: SECRET, expiresInSeconds: 2 });
    try {
      const erp = target({ token_url: shortLived.tokenUrl }, { url: `${shortLived.url}/api` });
      await erp.deliver(await message());
      await erp.deliver(await message());
      expect(shortLived.tokenRequests).toHaveLength(1);
      await new Promise((resolve) => setTimeout(resolve, 1_050));
      await erp.deliver(await message());
      expect(shortLived.tokenRequests).toHaveLength(2);
      expect(shortLived.apiRequests.map((request) => request.token)).toEqual([
        shortLived.issued[0],
        shortLived.issued[0],
        shortLived.issued[1],
      ]);
    } finally {
      await shortLived.close();
    }
  });

  test("a revoked token: the 401 fetches a fresh one and the call is retried once, successfully", async () => {
    const erp = target();
    await erp.deliver(await message());
    idp.revokeAll();
    expect(await erp.deliver(await message())).toMatchObject({ kind: "delivered", response: { status: 200 } });
    expect(idp.tokenRequests).toHaveLength(2);
    expect(idp.apiRequests.map((request) => request.accepted)).toEqual([true, false, true]);
    expect(idp.apiRequests[2]!.token).toBe(idp.issued.at(-1)!);
  });

  test("the retry after a 401 takes a turn of the rate limit too (the token fetch does not)", async () => {
    const erp = target({}, { rate_limit: { requests: 1, per: "300ms", max_wait: "2s" } });
    await erp.deliver(await message());
    await new Promise((resolve) => setTimeout(resolve, 350));
    idp.revokeAll();
    const arrivals: number[] = [];
    idp.answerApi(() => ({ status: 200, body: { ok: true } }));
    const started = performance.now();
    expect((await erp.deliver(await message())).kind).toBe("delivered");
    arrivals.push(performance.now() - started);
    expect(idp.apiRequests.map((request) => request.accepted)).toEqual([true, false, true]);
    // The refused call went at once; its retry waited for the next turn, 300ms after it.
    expect(arrivals[0]!).toBeGreaterThanOrEqual(290);
    expect(idp.tokenRequests).toHaveLength(2);
  });

  test("a target that refuses even a fresh token: one retry, then the 401 is the answer (no loop)", async () => {
    const erp = target();
    idp.answerApi(() => ({ status: 401, body: { error: "insufficient_scope" } }));
    try {
      expect(await erp.deliver(await message())).toMatchObject({ kind: "rejected", response: { status: 401 } });
      expect(idp.apiRequests).toHaveLength(2);
      expect(idp.tokenRequests).toHaveLength(2);
    } finally {
      idp.answerApi(() => ({ status: 200, body: { ok: true } }));
    }
  });

  test("token endpoint failures: unreachable with a reason that names neither host nor secret; logged with the endpoint", async () => {
    idp.failTokenEndpoint(500);
    const erp = target();
    const failed = await erp.deliver(await message());
    expect(failed).toEqual({
      kind: "unreachable",
      reason: "its access token could not be obtained (the token endpoint answered HTTP 500, server_error)",
      code: "TOKEN_UNAVAILABLE",
    });
    expect(idp.apiRequests).toHaveLength(0);

    const down = target({ token_url: `http://127.0.0.1:${await closedPort()}/token` });
    expect(await down.deliver(await message())).toMatchObject({
      kind: "unreachable",
      reason: "its access token could not be obtained (token endpoint: connection refused)",
    });

    idp.failTokenEndpoint(undefined);
    idp.delayTokens(1_500);
    const slow = target({}, { timeout: "300ms" });
    expect(await slow.deliver(await message())).toMatchObject({
      kind: "unreachable",
      reason: "its access token could not be obtained (the token endpoint did not answer within 300ms)",
    });

    for (const outcome of [failed]) {
      const text = JSON.stringify(outcome);
      expect(text).not.toContain("127.0.0.1");
      expect(text).not.toContain(SECRET);
    }
    const log = logLines.join("\n");
    expect(log).toContain("OAuth2 token fetch failed");
    expect(log).toContain(idp.tokenUrl);
    expect(log).not.toContain(SECRET);
  });

  test("a failed fetch is remembered for a second: a burst of calls does not hammer the token endpoint", async () => {
    idp.failTokenEndpoint(503, "temporarily_unavailable");
    const erp = target();
    for (let i = 0; i < 5; i++) expect((await erp.deliver(await message())).kind).toBe("unreachable");
    expect(idp.tokenRequests).toHaveLength(1);
    idp.failTokenEndpoint(undefined);
    await new Promise((resolve) => setTimeout(resolve, 1_050));
    expect((await erp.deliver(await message())).kind).toBe("delivered");
  });

  test("render() shows the header without fetching a token; the token never shows in describe()", async () => {
    const erp = target({ scope: "erp.write" });
    const rendered = await erp.render(await message());
    expect(rendered.ok && rendered.request.headers.authorization).toBe("Bearer <token from token_url>");
    expect(rendered.ok && [...rendered.request.secretHeaders]).toContain("authorization");
    expect(idp.tokenRequests).toHaveLength(0);
    await erp.deliver(await message());
    const description = JSON.stringify(erp.describe());
    expect(erp.describe().auth).toEqual({
      type: "oauth2_client_credentials",
      token_url: idp.tokenUrl,
      client_id: "gw-client",
      client_secret: "***",
      client_auth: "body",
      scope: "erp.write",
    });
    expect(description).not.toContain(SECRET);
    expect(description).not.toContain(idp.issued.at(-1)!);
    expect(logLines.join("\n")).not.toContain(idp.issued.at(-1)!);
  });

  test("with a proxy, the token fetch goes through it as well as the call", async () => {
    const proxy = await startForwardProxy();
    try {
      const erp = target({}, { proxy: proxy.url });
      expect((await erp.deliver(await message())).kind).toBe("delivered");
      expect(proxy.requests.map((request) => `${request.method} ${request.target}`)).toEqual([
        `POST ${idp.tokenUrl}`,
        `POST ${idp.url}/api/contracts`,
      ]);
    } finally {
      await proxy.close();
    }
  });

  test("config mistakes are reported at the key: params that shadow a field, a header that clashes with auth", () => {
    expect(() => target({ params: { client_secret: "x" } })).toThrow("is set by the scheme itself");
    expect(() => target({}, { headers: { Authorization: "Bearer static" } })).toThrow(
      "set auth or this header, not both",
    );
    expect(() => target({ token_url: "ftp://idp/token" })).toThrow("must be an absolute http(s) URL");
  });
});
