import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { outboundMessageOf } from "../../test/support/calls.ts";
import { type SapGateway, startSapGateway } from "../../test/support/sap-gateway.ts";
import { silentLogger } from "../log/logger.ts";
import { CookieJar } from "./cookie-jar.ts";
import { createHttpTarget, httpTargetSchema } from "./http.ts";
import type { Target } from "./types.ts";

/** CSRF token and session cookies against a server that enforces both the way SAP Gateway does. */

let sap: SapGateway;
const targets: Target[] = [];
const context = { configDir: "/tmp", logger: silentLogger, userAgent: "actiongate/test" };
const BASIC = `Basic ${Buffer.from("gw-user:gw-pass").toString("base64")}`;

function target(extra: Record<string, unknown> = {}): Target {
  const created = createHttpTarget(
    httpTargetSchema.parse({
      type: "http",
      url: `${sap.serviceUrl}A_BusinessPartner`,
      auth: { type: "basic", username: "gw-user", password: "gw-pass" },
      csrf: {},
      headers: { "sap-client": "100" },
      ...extra,
    }),
    context,
  );
  targets.push(created);
  return created;
}
const message = () => outboundMessageOf({ body: { BusinessPartnerCategory: "1" }, payload: {} }, "msg_1");

beforeAll(async () => {
  sap = await startSapGateway({ basic: { username: "gw-user", password: "gw-pass" } });
});
afterEach(async () => {
  await Promise.all(targets.splice(0).map((each) => each.close()));
  sap.requests.length = 0;
});
afterAll(() => sap.close());

describe("csrf", () => {
  test("the first call fetches token and cookies with a GET carrying the auth; every call sends both", async () => {
    const partner = target();
    expect(await partner.deliver(await message())).toMatchObject({ kind: "delivered", response: { status: 201 } });
    expect(await partner.deliver(await message())).toMatchObject({ kind: "delivered", response: { status: 201 } });
    const [fetch, first, second] = sap.requests;
    expect(sap.requests).toHaveLength(3);
    expect(fetch).toMatchObject({
      method: "GET",
      url: "/sap/opu/odata/sap/API_BUSINESS_PARTNER/A_BusinessPartner",
      verdict: "fetched",
    });
    expect(fetch!.csrfToken).toBe("Fetch");
    expect(fetch!.headers.authorization).toBe(BASIC);
    expect(fetch!.headers["sap-client"]).toBe("100");
    for (const call of [first!, second!]) {
      expect(call.method).toBe("POST");
      expect(call.verdict).toBe("accepted");
      expect(call.cookie).toMatch(/SAP_SESSIONID_ERP_100=[0-9a-f]+/);
      expect(call.cookie).toContain("sap-usercontext=sap-client=100");
      expect(call.headers.authorization).toBe(BASIC);
    }
    expect(first!.csrfToken).toBe(second!.csrfToken!);
  });

  test("fetch_url: the token comes from the service root, not the call's URL", async () => {
    const partner = target({ csrf: { fetch_url: sap.serviceUrl } });
    expect((await partner.deliver(await message())).kind).toBe("delivered");
    expect(sap.requests[0]).toMatchObject({
      method: "GET",
      url: "/sap/opu/odata/sap/API_BUSINESS_PARTNER/",
      verdict: "fetched",
    });
  });

  test("concurrent first calls share one fetch", async () => {
    const partner = target();
    const outcomes = await Promise.all(Array.from({ length: 10 }, async () => partner.deliver(await message())));
    expect(outcomes.every((outcome) => outcome.kind === "delivered")).toBe(true);
    expect(sap.requests.filter((request) => request.verdict === "fetched")).toHaveLength(1);
  });

  test("an expired session: 403 Required, one refetch, the call retried and accepted", async () => {
    const partner = target();
    await partner.deliver(await message());
    sap.expireSessions();
    expect(await partner.deliver(await message())).toMatchObject({ kind: "delivered", response: { status: 201 } });
    expect(sap.requests.map((request) => `${request.method} ${request.verdict}`)).toEqual([
      "GET fetched",
      "POST accepted",
      "POST no_session",
      "GET fetched",
      "POST accepted",
    ]);
    // The refetch started a new session: the stale cookie was dropped, not sent along.
    expect(sap.requests[3]!.cookie).toBeUndefined();
  });

  test("a 403 Required on the retry too is the answer: one refetch per call, never a loop", async () => {
    const partner = target({ csrf: { header: "x-other-token" } });
    // The server wants x-csrf-token; a target configured with another header never satisfies it.
    const outcome = await partner.deliver(await message());
    expect(outcome).toMatchObject({
      kind: "rejected",
      reason: "target sent no x-other-token on the CSRF token fetch",
      retryable: false,
    });
    expect(sap.requests).toHaveLength(1);
  });

  test("wrong credentials on the fetch: the 401 is the call's answer", async () => {
    const partner = target({ auth: { type: "basic", username: "gw-user", password: "wrong" } });
    expect(await partner.deliver(await message())).toMatchObject({
      kind: "rejected",
      response: { status: 401 },
      reason: "target answered the CSRF token fetch with HTTP 401",
    });
  });

  test("render() names token and cookie as secrets without fetching anything", async () => {
    const partner = target();
    const rendered = await partner.render(await message());
    expect(rendered.ok).toBe(true);
    if (!rendered.ok) return;
    expect(rendered.request.headers["x-csrf-token"]).toBe("<token fetched from the target>");
    expect([...rendered.request.secretHeaders].sort()).toEqual(["authorization", "cookie", "x-csrf-token"]);
    expect(sap.requests).toHaveLength(0);
    expect(partner.describe().csrf).toEqual({ fetch_url: "(the call's URL)", header: "x-csrf-token" });
  });

  test("a Cookie or x-csrf-token header in headers is refused at load", () => {
    expect(() => target({ headers: { Cookie: "a=1" } })).toThrow("is set by the CSRF session");
    expect(() => target({ headers: { "X-CSRF-Token": "t" } })).toThrow("is set by the CSRF session");
    expect(() => target({ csrf: { fetch_url: `${sap.serviceUrl}{{ data.x }}` } })).toThrow("may not hold {{ }}");
  });
});

describe("CookieJar", () => {
  test("host-only, path-matched, Secure only over https; Max-Age and Expires end cookies", () => {
    let now = Date.parse("2026-01-01T00:00:00Z");
    const jar = new CookieJar(() => now);
    const url = new URL("https://sap.internal/sap/opu/odata/x");
    jar.store(url, [
      "SID=s1; Path=/; Secure; HttpOnly",
      "ctx=sap-client=100; path=/sap",
      "short=1; Max-Age=60",
      "dated=1; Expires=Thu, 01 Jan 2026 00:10:00 GMT",
      "bad name=1",
      "=nameless",
    ]);
    // Longer paths first: short and dated have the default path, the request's directory /sap/opu/odata.
    expect(jar.header(url)).toBe("short=1; dated=1; ctx=sap-client=100; SID=s1");
    expect(jar.header(new URL("http://sap.internal/sap/x"))).toBe("ctx=sap-client=100");
    expect(jar.header(new URL("https://sap.internal/other"))).toBe("SID=s1");
    expect(jar.header(new URL("https://sapx.internal/sap/opu/odata/x"))).toBeUndefined();
    expect(jar.header(new URL("https://sap.internal/sapper"))).toBe("SID=s1");
    now += 61_000;
    expect(jar.header(url)).toBe("dated=1; ctx=sap-client=100; SID=s1");
    now += 10 * 60_000;
    expect(jar.header(url)).toBe("ctx=sap-client=100; SID=s1");
    // A cookie set again replaces the old one; an expiry in the past deletes it.
    jar.store(url, ["SID=s2; Path=/; Secure", "ctx=gone; path=/sap; Max-Age=0"]);
    expect(jar.header(url)).toBe("SID=s2");
  });

  test("bounded: at most 50 cookies, none over 4 KB", () => {
    const jar = new CookieJar();
    const url = new URL("http://erp/");
    jar.store(
      url,
      Array.from({ length: 80 }, (_, index) => `c${index}=v`),
    );
    expect(jar.size).toBe(50);
    expect(jar.header(url)).toContain("c79=v");
    expect(jar.header(url)).not.toContain("c29=v;");
    jar.store(url, [`big=${"x".repeat(5000)}`]);
    expect(jar.header(url)).not.toContain("big=");
  });
});
