import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { outboundMessageOf } from "../../../test/support/calls.ts";
import { type RecordingServer, startRecordingServer } from "../../../test/support/recording-server.ts";
import { configSchema } from "../../config/schema.ts";
import { createLogger } from "../../log/logger.ts";
import { createHttpTarget, httpTargetSchema } from "../http.ts";
import { createSoapTarget, soapTargetSchema } from "../soap/soap-target.ts";

let server: RecordingServer;
const lines: string[] = [];
const context = {
  configDir: "/tmp",
  logger: createLogger({ level: "debug", sink: (line) => lines.push(line) }),
  userAgent: "actiongate/test",
};
const BASIC = `Basic ${Buffer.from("gw:pä55:word").toString("base64")}`;

beforeAll(async () => {
  server = await startRecordingServer();
});
afterAll(() => server.close());

describe("auth: { type: basic }", () => {
  test("http: Authorization: Basic of username:password in UTF-8, secret for render()", async () => {
    const target = createHttpTarget(
      httpTargetSchema.parse({
        type: "http",
        url: server.url,
        auth: { type: "basic", username: "gw", password: "pä55:word" },
      }),
      context,
    );
    await target.deliver(await outboundMessageOf({ body: {}, payload: {} }, "msg_1"));
    const rendered = await target.render(await outboundMessageOf({ body: {}, payload: {} }, "msg_1"));
    await target.close();
    expect(server.requests.at(-1)!.headers.authorization).toBe(BASIC);
    expect(rendered.ok && [...rendered.request.secretHeaders]).toEqual(["authorization"]);
    expect(target.describe().auth).toEqual({ type: "basic", username: "gw", password: "***" });
  });

  test("soap: basic_auth is the deprecated alias of auth: {type: basic}, logged; both at once is refused", async () => {
    const soap = (extra: Record<string, unknown>) =>
      createSoapTarget(
        soapTargetSchema.parse({ type: "soap", url: server.url, operation: "Ping", namespace: "urn:t", ...extra }),
        context,
      );
    const viaAlias = soap({ basic_auth: { username: "gw", password: "pä55:word" } });
    const viaAuth = soap({ auth: { type: "basic", username: "gw", password: "pä55:word" } });
    for (const target of [viaAlias, viaAuth]) {
      await target.deliver(await outboundMessageOf({ body: {}, payload: {} }, "msg_1"));
      expect(server.requests.at(-1)!.headers.authorization).toBe(BASIC);
      await target.close();
    }
    expect(lines.filter((line) => line.includes("basic_auth is deprecated"))).toHaveLength(1);
    expect(() =>
      soap({ basic_auth: { username: "a", password: "b" }, auth: { type: "basic", username: "a", password: "b" } }),
    ).toThrow("is the old spelling of auth: { type: basic }; set auth only");
  });
});

describe("rate_limit and store.lease", () => {
  test("an async route's timeout plus rate_limit.max_wait must be shorter than store.lease", () => {
    const config = (maxWait: string) =>
      configSchema.safeParse({
        store: { path: "./s.db", lease: "20s" },
        routes: [
          {
            name: "billing",
            target: {
              type: "http",
              url: "http://billing",
              timeout: "5s",
              rate_limit: { requests: 1, per: "1s", max_wait: maxWait },
            },
            delivery: { mode: "async" },
          },
        ],
      });
    expect(config("14s").success).toBe(true);
    const refused = config("15s");
    expect(refused.success).toBe(false);
    expect(refused.error?.issues[0]).toMatchObject({
      path: ["routes", 0, "target", "rate_limit", "max_wait"],
      message: expect.stringContaining(
        "the target's timeout plus rate_limit.max_wait of an async route must be shorter than store.lease (20s)",
      ),
    });
  });
});
