import { describe, expect, test } from "bun:test";
import {
  delivered,
  heldBack,
  invalidMessage,
  outboxEventFor,
  rejected,
  scriptedEpilot,
  scriptedTarget,
  testRoute,
  throwingTarget,
  unreachable,
} from "../../test/support/delivery.ts";
import { startTracedReceiver } from "../../test/support/otlp-receiver.ts";
import { LOOPBACK_CALLBACK_URL } from "../../test/support/signing.ts";
import type { EpilotCallbacks } from "../epilot/types.ts";
import { silentLogger } from "../log/logger.ts";
import type { OutboxEvent } from "../store/types.ts";
import type { TargetOutcome } from "../targets/types.ts";
import type { TraceSpan } from "../telemetry/tracer.ts";
import { readEventData } from "./outbox-event.ts";
import { runStage, type StageContext } from "./stages.ts";

/** The stages without a store: one attempt in, one decision out. */
const T0 = 1_800_000_000_000;

function claimed(event: Awaited<ReturnType<typeof outboxEventFor>>, attempts = 0): OutboxEvent {
  return { ...event, attempts, nextAttemptAt: event.createdAt, history: [] };
}

function context(epilot = scriptedEpilot().epilot): StageContext {
  return { epilot, logger: silentLogger, now: () => T0 };
}

describe("deliver stage", () => {
  test("a 2xx answer is done; with a callback it moves on to resume, carrying the answer", async () => {
    const target = scriptedTarget(delivered(201, { id: "E-1" }));
    const route = testRoute({ target });
    const event = claimed(await outboxEventFor(route));
    const result = await runStage(event, event.secret, route, context());
    expect(result).toEqual({
      kind: "done",
      attempt: { at: T0, stage: "deliver", outcome: "delivered", status: 201, answer: '{"id":"E-1"}' },
      next: "resume",
      stageData: JSON.stringify({ status: 201, headers: {}, body: { id: "E-1" } }),
    });
    expect(target.calls).toHaveLength(1);
    expect(target.calls[0]!.webhookId).toBe(event.id);
  });

  test("without a callback URL the event is done after delivery", async () => {
    const route = testRoute();
    const event = claimed(
      await outboxEventFor(route, {
        edit: (raw) => {
          delete raw.data.callback_post_url;
          delete raw.data.resume_token;
        },
      }),
    );
    expect(await runStage(event, event.secret, route, context())).toEqual({
      kind: "done",
      attempt: { at: T0, stage: "deliver", outcome: "delivered", status: 200, answer: "{}" },
    });
  });

  test.each([
    ["a 503", rejected(503), "target_failed", 503],
    ["a refused connection", unreachable, "target_unreachable", undefined],
    ["a timeout", { kind: "timeout", timeoutMs: 250 } as const, "target_timeout", undefined],
  ])("%s is a retry that counts", async (_, outcome, name, status) => {
    const route = testRoute({ target: scriptedTarget(outcome) });
    const event = claimed(await outboxEventFor(route));
    const result = await runStage(event, event.secret, route, context());
    expect(result.kind).toBe("retry");
    if (result.kind !== "retry") return;
    expect(result.attempt.outcome).toBe(name);
    expect(result.attempt.status).toBe(status);
  });

  test("the attempt keeps where the request went (credentials hidden) and the target's answer, redacted", async () => {
    const refusal: TargetOutcome = {
      kind: "rejected",
      response: {
        status: 400,
        headers: { "content-type": "application/json" },
        body: { error: "contract number unknown", api_key: "erp-key-123", detail: "Bearer abcdef123456" },
      },
      reason: "target answered HTTP 400",
      info: { target_status: 400 },
      url: new URL("http://svc:pa55word@erp.internal:8081/api/contracts/2026-0042?token=t0k3n&page=1"),
    };
    const route = testRoute({ target: scriptedTarget(refusal) });
    const event = claimed(await outboxEventFor(route));
    const result = await runStage(event, event.secret, route, context());
    expect(result).toEqual({
      kind: "dead",
      attempt: {
        at: T0,
        stage: "deliver",
        outcome: "target_failed",
        status: 400,
        error: "target answered HTTP 400",
        url: "http://svc:***@erp.internal:8081/api/contracts/2026-0042?token=***&page=1",
        answer: '{"error":"contract number unknown","api_key":"[redacted]","detail":"Bearer [redacted]"}',
      },
      reason: "the target refused the event: target answered HTTP 400",
    });
  });

  test("a long answer is cut to its first KB (never half a character), saying how long it was", async () => {
    const text = `Fehler: ${"ä".repeat(3_000)}`;
    const route = testRoute({
      target: scriptedTarget({
        kind: "rejected",
        response: { status: 503, headers: {}, body: text },
        reason: "target answered HTTP 503",
        info: {},
      }),
    });
    const event = claimed(await outboxEventFor(route));
    const result = await runStage(event, event.secret, route, context());
    if (result.kind !== "retry") throw new Error(`expected a retry, got ${result.kind}`);
    const answer = result.attempt.answer!;
    expect(Buffer.byteLength(answer, "utf8")).toBeLessThanOrEqual(1024);
    expect(Buffer.byteLength(answer, "utf8")).toBeGreaterThan(1020);
    expect(answer).toStartWith("Fehler: ää");
    expect(answer).not.toContain("\uFFFD");
    expect(result.attempt.answerBytes).toBe(Buffer.byteLength(text, "utf8"));
  });

  test("a 400 or a SOAP Client fault is dead at once; the payload's fault (invalid message) too", async () => {
    for (const outcome of [rejected(400), rejected(500, false), invalidMessage]) {
      const route = testRoute({ target: scriptedTarget(outcome) });
      const event = claimed(await outboxEventFor(route));
      expect((await runStage(event, event.secret, route, context())).kind).toBe("dead");
    }
  });

  test("an attempt that throws counts as a failed attempt (internal_error), never escapes", async () => {
    const route = testRoute({ target: throwingTarget("socket exploded") });
    const event = claimed(await outboxEventFor(route));
    const result = await runStage(event, event.secret, route, context());
    expect(result).toEqual({
      kind: "retry",
      attempt: { at: T0, stage: "deliver", outcome: "internal_error", error: "Error: socket exploded" },
    });
  });

  test("an open breaker postpones without calling the target or spending an attempt", async () => {
    const target = scriptedTarget(unreachable);
    const route = testRoute({ target, failureThreshold: 1, cooldownMs: 30_000 });
    route.breaker.recordFailure();
    const event = claimed(await outboxEventFor(route));
    const result = await runStage(event, event.secret, route, context());
    expect(result).toEqual({ kind: "postpone", until: route.breaker.retryAt, reason: "circuit_open" });
    expect(target.calls).toHaveLength(0);
  });

  test("a target held back by its rate limit postpones to its turn without spending an attempt or a probe", async () => {
    const retryAt = Date.now() + 4_000;
    const target = scriptedTarget(heldBack(retryAt), delivered());
    const route = testRoute({ target, failureThreshold: 1, cooldownMs: 1 });
    // Half-open: the one probe passes; a held-back call must hand it back, not close or open the breaker.
    route.breaker.recordFailure();
    await new Promise((resolve) => setTimeout(resolve, 5));
    const event = claimed(await outboxEventFor(route));
    expect(await runStage(event, event.secret, route, context())).toEqual({
      kind: "postpone",
      until: retryAt,
      reason: "rate_limited",
    });
    expect(route.breaker.state).toBe("half_open");
    // The next attempt is the probe, and its success closes the breaker.
    expect((await runStage(event, event.secret, route, context())).kind).toBe("done");
    expect(route.breaker.state).toBe("closed");
  });

  test("a payload the target cannot send does not count against the target's breaker", async () => {
    // Threshold 3: fail, fail, invalid message, fail must open it (the invalid message resets nothing).
    const target = scriptedTarget(unreachable, unreachable, invalidMessage, unreachable);
    const route = testRoute({ target, failureThreshold: 3 });
    const event = claimed(await outboxEventFor(route));
    for (let i = 0; i < 4; i++) await runStage(event, event.secret, route, context());
    expect(route.breaker.state).toBe("open");
  });

  test("response.fail_when on a 2xx answer is dead with the reason", async () => {
    const route = testRoute({ target: scriptedTarget(delivered(200, { ok: false })), failWhen: "body.ok = false" });
    const event = claimed(await outboxEventFor(route));
    const result = await runStage(event, event.secret, route, context());
    expect(result).toMatchObject({ kind: "dead", reason: "The target of route erp reported a failure" });
  });

  test("the target gets the stored message: the transform's body, the forwarded headers, the id", async () => {
    const target = scriptedTarget(delivered());
    const route = { ...testRoute({ target }), forwardHeaders: ["x-epilot-token"] };
    const event = claimed(await outboxEventFor(route, { headers: { "x-epilot-token": "tok-1" } }));
    await runStage(event, event.secret, route, context());
    expect(target.calls[0]!.forwardedHeaders).toEqual({ "x-epilot-token": "tok-1" });
    expect((target.calls[0]!.body as { type: string }).type).toBe("external_integration");
  });

  test("stored data from a newer version is dead-lettered as unreadable, not retried", async () => {
    const route = testRoute();
    const event = claimed(await outboxEventFor(route));
    const future = { ...event, data: JSON.stringify({ ...(JSON.parse(event.data) as object), v: 99 }) };
    expect(await runStage(future, future.secret, route, context())).toMatchObject({
      kind: "dead",
      attempt: { outcome: "unreadable" },
    });
  });
});

describe("follow-up stages", () => {
  const token = (exp: number) => `e30.${Buffer.from(JSON.stringify({ exp })).toString("base64url")}.sig`;

  test("write-back comes before resume, with the entity, the patch and the call's x-epilot-token", async () => {
    const route = testRoute({ writeBack: '{ "erp_id": body.id }' });
    const { epilot, writeBacks } = scriptedEpilot();
    const event = claimed(
      await outboxEventFor(route, { stage: "write_back", headers: { "x-epilot-token": token(T0 / 1000 + 60) } }),
    );
    const withAnswer = { ...event, stageData: JSON.stringify({ status: 200, headers: {}, body: { id: "E-9" } }) };
    const result = await runStage(withAnswer, withAnswer.secret, route, context(epilot));
    expect(result).toMatchObject({ kind: "done", attempt: { outcome: "written_back" }, next: "resume" });
    expect(writeBacks).toEqual([
      {
        entity: { schema: "contract", id: "3f2c1a90-5d7e-4b8a-9c11-2f6e8d0b7a41" },
        patch: { erp_id: "E-9" },
        token: token(T0 / 1000 + 60),
      },
    ]);
  });

  test("an expired x-epilot-token makes write-back dead without calling epilot", async () => {
    const route = testRoute({ writeBack: "{ 'a': 1 }" });
    const { epilot, writeBacks } = scriptedEpilot();
    const event = claimed(
      await outboxEventFor(route, { stage: "write_back", headers: { "x-epilot-token": token(T0 / 1000 - 1) } }),
    );
    expect(await runStage(event, event.secret, route, context(epilot))).toMatchObject({
      kind: "dead",
      attempt: { outcome: "token_expired" },
    });
    expect(writeBacks).toEqual([]);
  });

  test("resume posts the payload's resume token to its callback URL; a retryable answer retries", async () => {
    const route = testRoute();
    const { epilot, resumes } = scriptedEpilot({ resume: { kind: "retry", reason: "answered HTTP 503", status: 503 } });
    const event = claimed(await outboxEventFor(route, { stage: "resume" }));
    expect(await runStage(event, event.secret, route, context(epilot))).toMatchObject({
      kind: "retry",
      attempt: { stage: "resume", outcome: "resume_failed", status: 503 },
    });
    expect(resumes).toEqual([
      {
        callbackUrl: LOOPBACK_CALLBACK_URL,
        resumeToken: "eyJhbGciOiJIUzI1NiJ9.eyJ0b2tlbl91c2UiOiJyZXN1bWVfZXhlY3V0aW9uIn0.sig",
      },
    ]);
  });

  test("a resume refused by callback_hosts is dead", async () => {
    const route = testRoute();
    const { epilot } = scriptedEpilot({ resume: { kind: "refused", reason: "callback host x is not allowed" } });
    const event = claimed(await outboxEventFor(route, { stage: "resume" }));
    expect(await runStage(event, event.secret, route, context(epilot))).toMatchObject({
      kind: "dead",
      attempt: { outcome: "resume_refused" },
    });
  });
});

describe("traced attempts (tracing on)", () => {
  const ACCEPTED = { traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", tracestate: "erp=1" };

  test("an attempt is a span in the stored trace, given to the target; its decision and ids come back", async () => {
    const { collector, telemetry } = await startTracedReceiver();
    try {
      const target = scriptedTarget(rejected(503));
      const route = testRoute({ target, maxAttempts: 3 });
      const event = claimed(await outboxEventFor(route, { trace: ACCEPTED }), 1);
      const result = await runStage(event, event.secret, route, { ...context(), tracer: telemetry.tracer });
      expect(result.kind).toBe("retry");
      // The target got the attempt's span: its requests become client spans inside it.
      expect(target.traces[0]!.recording).toBe(true);

      const [span] = await collector.waitForSpans(1);
      expect(span).toMatchObject({
        name: "deliver",
        kind: "internal",
        traceId: "0af7651916cd43dd8448eb211c80319c",
        parentSpanId: "b7ad6b7169203331",
        traceState: "erp=1",
        attributes: {
          "actiongate.route": "erp",
          "actiongate.webhook_id": event.id,
          "actiongate.stage": "deliver",
          "actiongate.attempt": 2,
          "actiongate.decision": "retry",
          "actiongate.outcome": "target_failed",
          "actiongate.target_status": 503,
        },
        status: { code: "error", message: "target answered HTTP 503" },
      });
      expect(result.traceLog).toEqual({ trace_id: span!.traceId, span_id: span!.spanId });
    } finally {
      await telemetry.shutdown();
      await collector.close();
    }
  });

  test("a failed last attempt says dead (the engine buries it); a resume attempt is a span, given to the call to epilot", async () => {
    const { collector, telemetry } = await startTracedReceiver();
    try {
      const route = testRoute({ target: scriptedTarget(rejected(503)), maxAttempts: 3 });
      const last = claimed(await outboxEventFor(route, { trace: ACCEPTED }), 2);
      await runStage(last, last.secret, route, { ...context(), tracer: telemetry.tracer });

      const given: (TraceSpan | undefined)[] = [];
      const epilot: EpilotCallbacks = {
        resume: async (_url, _token, trace) => {
          given.push(trace);
          return { kind: "ok", status: 200 };
        },
        writeBack: async () => ({ kind: "ok", status: 200 }),
      };
      const resume = claimed(await outboxEventFor(route, { stage: "resume", trace: ACCEPTED }));
      expect(
        (await runStage(resume, resume.secret, route, { ...context(epilot), tracer: telemetry.tracer })).kind,
      ).toBe("done");
      expect(given[0]!.recording).toBe(true);
      const spans = await collector.waitForSpans(2);
      expect(spans.map((span) => [span.name, span.attributes["actiongate.decision"], span.parentSpanId])).toEqual([
        ["deliver", "dead", "b7ad6b7169203331"],
        ["resume", "done", "b7ad6b7169203331"],
      ]);
    } finally {
      await telemetry.shutdown();
      await collector.close();
    }
  });

  test("a row stored without tracing (or with a damaged trace) is delivered as before, its attempt a new trace", async () => {
    const { collector, telemetry } = await startTracedReceiver();
    try {
      const route = testRoute();
      const plain = claimed(await outboxEventFor(route));
      expect(JSON.parse(plain.data)).not.toHaveProperty("trace");
      const damaged = {
        ...plain,
        data: JSON.stringify({ ...(JSON.parse(plain.data) as object), trace: { traceparent: 7 } }),
      };
      for (const event of [plain, damaged]) {
        expect((await runStage(event, event.secret, route, { ...context(), tracer: telemetry.tracer })).kind).toBe(
          "done",
        );
      }
      const spans = await collector.waitForSpans(2);
      expect(spans.map((span) => span.parentSpanId)).toEqual(["", ""]);
      expect(spans[0]!.traceId).not.toBe(spans[1]!.traceId);
    } finally {
      await telemetry.shutdown();
      await collector.close();
    }
  });

  test("without a tracer the result has no trace fields, and the stored context is kept for later", async () => {
    const route = testRoute();
    const event = claimed(await outboxEventFor(route, { trace: ACCEPTED }));
    expect(readEventData(event).trace).toEqual(ACCEPTED);
    const result = await runStage(event, event.secret, route, context());
    expect(result).not.toHaveProperty("traceLog");
  });
});
