import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startTracedReceiver } from "../../test/support/otlp-receiver.ts";
import { closedPort, type RecordingServer, startRecordingServer } from "../../test/support/recording-server.ts";
import { resumeWorkflow } from "./resume.ts";
import type { EpilotCallOutcome } from "./types.ts";

const RESUME_TOKEN = "eyJhbGciOiJIUzI1NiJ9.resume-SECRET-4711.sig";
const CALLBACK_PATH = "/v1/automation/public/executions:resume";

let epilot: RecordingServer;
let allowedHosts: string[];
const outcomes: EpilotCallOutcome[] = [];

async function resume(
  callbackUrl: string,
  options: { timeoutMs?: number; allowedHosts?: string[] } = {},
): Promise<EpilotCallOutcome> {
  const outcome = await resumeWorkflow(
    { callbackUrl, resumeToken: RESUME_TOKEN },
    {
      allowedHosts: options.allowedHosts ?? allowedHosts,
      timeoutMs: options.timeoutMs ?? 2_000,
      userAgent: "actiongate/test",
    },
  );
  outcomes.push(outcome);
  return outcome;
}

beforeAll(async () => {
  epilot = await startRecordingServer();
  allowedHosts = [`127.0.0.1:${epilot.port}`];
});
afterAll(() => epilot.close());

describe("resumeWorkflow", () => {
  test("POSTs exactly {resume_token} as JSON to the callback URL", async () => {
    epilot.respondWith({ status: 200, body: { execution: { id: "e1", execution_status: "in_progress" } } });
    const before = epilot.requests.length;
    expect(await resume(`${epilot.url}${CALLBACK_PATH}`)).toEqual({ kind: "ok", status: 200 });
    expect(epilot.requests.length).toBe(before + 1);
    const received = epilot.requests.at(-1)!;
    expect(received.method).toBe("POST");
    expect(received.url).toBe(CALLBACK_PATH);
    expect(received.headers["content-type"]).toBe("application/json");
    expect(received.headers["user-agent"]).toBe("actiongate/test");
    expect(received.body).toBe(JSON.stringify({ resume_token: RESUME_TOKEN }));
    expect(received.json).toEqual({ resume_token: RESUME_TOKEN });
  });

  test("the callback URL is used as given, query string included", async () => {
    epilot.respondWith({ status: 204, body: "" });
    expect(await resume(`${epilot.url}/custom/resume?region=eu-1`)).toEqual({ kind: "ok", status: 204 });
    expect(epilot.requests.at(-1)!.url).toBe("/custom/resume?region=eu-1");
  });

  test("a host outside epilot.callback_hosts is refused and nothing is sent", async () => {
    const before = epilot.requests.length;
    // Same server, but named differently from the listed entry, and on a port the list does not name.
    expect(await resume(`http://localhost:${epilot.port}${CALLBACK_PATH}`)).toEqual({
      kind: "refused",
      reason: `callback host localhost:${epilot.port} is not in epilot.callback_hosts`,
    });
    expect(await resume(`${epilot.url}${CALLBACK_PATH}`, { allowedHosts: ["127.0.0.1"] })).toMatchObject({
      kind: "refused",
    });
    expect(epilot.requests.length).toBe(before);
  });

  test("http to a host that is not loopback is refused", async () => {
    expect(
      await resume(`http://automation.sls.epilot.io${CALLBACK_PATH}`, { allowedHosts: ["automation.sls.epilot.io"] }),
    ).toEqual({
      kind: "refused",
      reason: "callback URL must use https (http only for loopback hosts), not for automation.sls.epilot.io",
    });
  });

  test("5xx is retried, 429 carries Retry-After, other 4xx are fatal", async () => {
    epilot.respondWith({ status: 500, body: { message: "internal" } });
    expect(await resume(`${epilot.url}${CALLBACK_PATH}`)).toEqual({
      kind: "retry",
      reason: `resume call to 127.0.0.1:${epilot.port}${CALLBACK_PATH} answered HTTP 500`,
      status: 500,
    });
    epilot.respondWith({ status: 429, headers: { "retry-after": "3" }, body: { message: "slow down" } });
    expect(await resume(`${epilot.url}${CALLBACK_PATH}`)).toMatchObject({
      kind: "retry",
      status: 429,
      retryAfterMs: 3_000,
    });
    epilot.respondWith({ status: 503, headers: { "retry-after": new Date(Date.now() + 60_000).toUTCString() } });
    const dated = await resume(`${epilot.url}${CALLBACK_PATH}`);
    expect(dated).toMatchObject({ kind: "retry", status: 503 });
    expect(dated.kind === "retry" && dated.retryAfterMs).toBeGreaterThan(55_000);
    epilot.respondWith({ status: 408 });
    expect(await resume(`${epilot.url}${CALLBACK_PATH}`)).toMatchObject({ kind: "retry", status: 408 });
    epilot.respondWith({ status: 400, body: { message: "invalid resume token" } });
    expect(await resume(`${epilot.url}${CALLBACK_PATH}`)).toEqual({
      kind: "fatal",
      reason: `resume call to 127.0.0.1:${epilot.port}${CALLBACK_PATH} answered HTTP 400`,
      status: 400,
    });
    epilot.respondWith({ status: 302, headers: { location: "http://127.0.0.1:1/elsewhere" } });
    expect(await resume(`${epilot.url}${CALLBACK_PATH}`)).toMatchObject({ kind: "fatal", status: 302 });
  });

  test("a refused connection is retried", async () => {
    const port = await closedPort();
    expect(await resume(`http://127.0.0.1:${port}${CALLBACK_PATH}`, { allowedHosts: [`127.0.0.1:${port}`] })).toEqual({
      kind: "retry",
      reason: `resume call to 127.0.0.1:${port}${CALLBACK_PATH} failed: connection refused (ECONNREFUSED)`,
    });
  });

  test("a missed deadline is retried", async () => {
    epilot.respondWith({ delayMs: 1_500 });
    const started = Date.now();
    expect(await resume(`${epilot.url}${CALLBACK_PATH}`, { timeoutMs: 200 })).toEqual({
      kind: "retry",
      reason: `resume call to 127.0.0.1:${epilot.port}${CALLBACK_PATH} timed out after 200ms`,
    });
    expect(Date.now() - started).toBeLessThan(1_200);
  });

  test("a dropped connection is retried", async () => {
    epilot.respondWith({ destroy: true });
    expect(await resume(`${epilot.url}${CALLBACK_PATH}`)).toMatchObject({ kind: "retry" });
  });

  // Runs last: every outcome the tests above saw.
  test("no reason carries the resume token", () => {
    const reasons = outcomes.flatMap((outcome) => ("reason" in outcome ? [outcome.reason] : []));
    expect(reasons.length).toBeGreaterThan(8);
    for (const reason of reasons) expect(reason).not.toContain("SECRET");
  });
});

describe("resumeWorkflow, traced", () => {
  test("inside an attempt's span the call is a client span with epilot's status; epilot gets no traceparent and no span holds the token", async () => {
    const { collector, telemetry } = await startTracedReceiver();
    try {
      const attempt = telemetry.tracer.startSpan("resume", "internal", undefined);
      const options = { allowedHosts, timeoutMs: 2_000, userAgent: "actiongate/test", trace: attempt };
      epilot.respondWith({ status: 200, body: {} });
      await resumeWorkflow({ callbackUrl: `${epilot.url}${CALLBACK_PATH}`, resumeToken: RESUME_TOKEN }, options);
      expect(epilot.requests.at(-1)!.headers).not.toHaveProperty("traceparent");
      epilot.respondWith({ status: 503, body: {} });
      await resumeWorkflow({ callbackUrl: `${epilot.url}${CALLBACK_PATH}`, resumeToken: RESUME_TOKEN }, options);
      attempt.end();
      const spans = await collector.waitForSpans(3);
      const calls = spans.filter((span) => span.kind === "client");
      expect(
        calls.map(
          (span): Record<string, unknown> => ({ name: span.name, parent: span.parentSpanId, ...span.attributes }),
        ),
      ).toEqual([
        {
          name: "POST",
          parent: spans.at(-1)!.spanId,
          "http.request.method": "POST",
          "actiongate.epilot.call": "resume",
          "server.address": "127.0.0.1",
          "server.port": epilot.port,
          "http.response.status_code": 200,
        },
        {
          name: "POST",
          parent: spans.at(-1)!.spanId,
          "http.request.method": "POST",
          "actiongate.epilot.call": "resume",
          "server.address": "127.0.0.1",
          "server.port": epilot.port,
          "http.response.status_code": 503,
          "error.type": "503",
        },
      ]);
      expect(calls[1]!.status).toEqual({
        code: "error",
        message: `resume call to 127.0.0.1:${epilot.port}${CALLBACK_PATH} answered HTTP 503`,
      });
      expect(collector.rawText()).not.toContain("SECRET");
    } finally {
      epilot.respondWith({ status: 200, body: {} });
      await telemetry.shutdown();
      await collector.close();
    }
  });
});
