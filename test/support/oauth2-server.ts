import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** One request to the token endpoint, as the server read it. */
export interface TokenRequest {
  readonly at: number;
  /** How the client authenticated: form fields or an `Authorization: Basic` header. */
  readonly clientAuth: "body" | "basic" | "none";
  readonly clientId: string | undefined;
  /** Every form field, client_secret included (tests check what was sent). */
  readonly form: Record<string, string>;
  readonly headers: IncomingMessage["headers"];
}

/** One call to the protected API, with the token it carried and what the server thought of it. */
export interface ApiRequest {
  readonly method: string;
  readonly url: string;
  readonly token: string | undefined;
  readonly accepted: boolean;
  readonly body: string;
  readonly headers: IncomingMessage["headers"];
}

export interface OAuth2ServerOptions {
  readonly clientId?: string;
  readonly clientSecret?: string;
  /** `expires_in` of each token, in seconds (the server refuses a token once it has expired). */
  readonly expiresInSeconds?: number;
  /** Which client authentication the endpoint takes; default both. */
  readonly accepts?: "body" | "basic" | "both";
}

export interface OAuth2Server {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** `<url>/oauth2/token` */
  readonly tokenUrl: string;
  readonly tokenRequests: TokenRequest[];
  readonly apiRequests: ApiRequest[];
  /** Every token issued so far, in order. */
  readonly issued: string[];
  /** Makes every token issued so far invalid (as an identity provider's revocation does). */
  revokeAll(): void;
  /** From now on the token endpoint answers this status (with `{"error": ...}`), or works again with undefined. */
  failTokenEndpoint(status: number | undefined, error?: string): void;
  /** Delays each token answer (a slow identity provider). */
  delayTokens(ms: number): void;
  /** What the API answers to an accepted call (default 200 `{"ok":true}`). */
  answerApi(answer: (request: ApiRequest) => { status: number; body: unknown }): void;
  close(): Promise<void>;
}

/**
 * A real OAuth2 authorization server and the API it protects, on 127.0.0.1. `POST /oauth2/token`
 * implements the client credentials grant (RFC 6749 4.4) with both client authentication methods
 * (form fields, or HTTP Basic with form-urlencoded id and secret), issues random tokens with
 * `expires_in`, and answers failures as RFC 6749 5.2 says (`{"error": "invalid_client"}`). Every
 * other path is the API: a call without a valid, unexpired, unrevoked Bearer token gets 401.
 *
 * @example
 * const idp = await startOAuth2Server({ clientId: "gw", clientSecret: "s3cret", expiresInSeconds: 3600 });
 * // auth: { type: oauth2_client_credentials, token_url: idp.tokenUrl, client_id: gw, client_secret: s3cret }
 */
export async function startOAuth2Server(options: OAuth2ServerOptions = {}): Promise<OAuth2Server> {
  const clientId = options.clientId ?? "actiongate";
  const clientSecret = options.clientSecret ?? "client-s3cret";
  const accepts = options.accepts ?? "both";
  const tokenRequests: TokenRequest[] = [];
  const apiRequests: ApiRequest[] = [];
  const issued: string[] = [];
  const valid = new Map<string, number>();
  let failure: { status: number; error: string } | undefined;
  let tokenDelayMs = 0;
  let apiAnswer: (request: ApiRequest) => { status: number; body: unknown } = () => ({
    status: 200,
    body: { ok: true },
  });

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store", ...headers });
    res.end(JSON.stringify(body));
  };

  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString("utf8");
    const url = new URL(req.url ?? "/", "http://127.0.0.1");

    if (url.pathname === "/oauth2/token") {
      const form = Object.fromEntries(new URLSearchParams(body));
      const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? "");
      let id: string | undefined;
      let secret: string | undefined;
      let clientAuth: TokenRequest["clientAuth"] = "none";
      if (basic) {
        const decoded = Buffer.from(basic[1]!, "base64").toString("utf8");
        const colon = decoded.indexOf(":");
        // RFC 6749 2.3.1: id and secret are form-urlencoded before they are joined.
        id = decodeForm(decoded.slice(0, colon));
        secret = decodeForm(decoded.slice(colon + 1));
        clientAuth = "basic";
      } else if (form.client_id !== undefined) {
        id = form.client_id;
        secret = form.client_secret;
        clientAuth = "body";
      }
      tokenRequests.push({ at: Date.now(), clientAuth, clientId: id, form, headers: req.headers });
      if (tokenDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, tokenDelayMs));
      if (failure) return send(res, failure.status, { error: failure.error, error_description: "scripted failure" });
      if (req.headers["content-type"] !== "application/x-www-form-urlencoded")
        return send(res, 400, { error: "invalid_request" });
      if (form.grant_type !== "client_credentials") return send(res, 400, { error: "unsupported_grant_type" });
      const methodAllowed = accepts === "both" || accepts === clientAuth;
      if (!methodAllowed || id !== clientId || secret !== clientSecret)
        return send(res, 401, { error: "invalid_client" }, { "www-authenticate": 'Basic realm="token"' });
      const token = `at-${issued.length + 1}-${randomBytes(12).toString("hex")}`;
      issued.push(token);
      const expiresIn = options.expiresInSeconds ?? 3600;
      valid.set(token, Date.now() + expiresIn * 1000);
      return send(res, 200, {
        access_token: token,
        token_type: "Bearer",
        expires_in: expiresIn,
        ...(form.scope ? { scope: form.scope } : {}),
      });
    }

    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
    const expiresAt = bearer === undefined ? undefined : valid.get(bearer);
    const accepted = expiresAt !== undefined && expiresAt > Date.now();
    const recorded: ApiRequest = {
      method: req.method ?? "",
      url: req.url ?? "",
      token: bearer,
      accepted,
      body,
      headers: req.headers,
    };
    apiRequests.push(recorded);
    if (!accepted)
      return send(res, 401, { error: "invalid_token" }, { "www-authenticate": 'Bearer error="invalid_token"' });
    const answer = apiAnswer(recorded);
    return send(res, answer.status, answer.body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  const base = `http://127.0.0.1:${port}`;
  return {
    url: base,
    tokenUrl: `${base}/oauth2/token`,
    tokenRequests,
    apiRequests,
    issued,
    revokeAll: () => valid.clear(),
    failTokenEndpoint(status, error = "server_error") {
      failure = status === undefined ? undefined : { status, error };
    },
    delayTokens(ms) {
      tokenDelayMs = ms;
    },
    answerApi(answer) {
      apiAnswer = answer;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function decodeForm(text: string): string {
  return decodeURIComponent(text.replace(/\+/g, " "));
}
