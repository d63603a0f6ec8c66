import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { parsedCallOf } from "../../test/support/calls.ts";
import { tempDir } from "../../test/support/gateway.ts";
import { type RecordingServer, startRecordingServer } from "../../test/support/recording-server.ts";
import { loadConfigText } from "../config/load.ts";
import { createLocalRunner, type LocalInput, type LocalRunner } from "./local-run.ts";

/**
 * The local runner of explain and test, on a real compiled config: a legacy system and a key URL
 * that must receive nothing, and a store path that must stay unopened.
 */
let legacy: RecordingServer;
let dir: string;
let runner: LocalRunner;

const input = async (edit: (raw: Record<string, any>) => void = () => {}): Promise<LocalInput> => ({
  kind: "custom_action",
  call: await parsedCallOf(edit),
});

beforeAll(async () => {
  legacy = await startRecordingServer();
  dir = tempDir();
  const yaml = `
verification: { public_key_url: "${legacy.url}/public-key" }
store: { path: ./store/actiongate.db }
routes:
  - name: billing
    match: { component_id: billing-sync }
    target: { type: http, url: "${legacy.url}/billing" }
  - name: by-name
    target: { type: http, url: "${legacy.url}/by-name" }
  - name: erp
    match: { component_id: erp-contract-sync, entity_schema: contract }
    strip: [data.app_options.api_key]
    skip_when: data.entity.status = "draft"
    skip_reason: '"draft " & data.entity.contract_number'
    transform: '{ "contract": data.entity.contract_number, "cents": data.entity.monthly_amount * 100 }'
    target:
      type: http
      url: "${legacy.url}/erp/{{ data.entity.contract_number }}"
      headers: { Authorization: "Bearer \${ERP_TOKEN}" }
    response:
      fail_when: body.success = false
      transform: '{ "erp_id": body.id }'
    delivery: { circuit_breaker: { failure_threshold: 1 } }
  - name: after
    match: { component_id: erp-contract-sync }
    target: { type: http, url: "${legacy.url}/after" }
  - name: queued
    target: { type: http, url: "${legacy.url}/queued/{{ data.entity.contract_number }}" }
    delivery: { mode: async, max_attempts: 3 }
  - name: broken
    transform: 'function($x) { $x }'
    target: { type: http, url: "${legacy.url}/broken" }
`;
  runner = createLocalRunner(loadConfigText(join(dir, "config.yaml"), yaml, { ERP_TOKEN: "t0k" }));
});

afterAll(async () => {
  await runner.close();
  // Nothing was sent, no key fetched, no store opened.
  expect(legacy.requests).toEqual([]);
  expect(existsSync(join(dir, "store"))).toBe(false);
  expect(readdirSync(dir)).toEqual([]);
  await legacy.close();
});

describe("explain", () => {
  test("routes in the order POST /actions tries them, each with why it did not take the call, up to the one that does", async () => {
    const explanation = await runner.explain(await input());
    expect(explanation.kind).toBe("routed");
    if (explanation.kind !== "routed") return;
    expect(explanation.decisions).toEqual([
      {
        route: "billing",
        verdict: "unmet",
        unmet: {
          key: "component_id",
          field: "data.action_config.component_id",
          expected: ["billing-sync"],
          actual: "erp-contract-sync",
        },
      },
      { route: "by-name", verdict: "by_name_only" },
      { route: "erp", verdict: "taken" },
    ]);
    expect(explanation.route).toMatchObject({ name: "erp", chosenBy: "match", targetType: "http", timeoutMs: 10_000 });
    expect(explanation.stripped).toEqual(["data.app_options.api_key", "data.trigger_event.caller"]);
    expect(explanation.outcome.kind).toBe("request");
    if (explanation.outcome.kind !== "request") return;
    expect(explanation.outcome.body).toEqual({ contract: "2026-0042", cents: 8450 });
    const { request } = explanation.outcome;
    expect(request.method).toBe("POST");
    expect(request.url.href).toBe(`${legacy.url}/erp/2026-0042`);
    expect(request.headers.authorization).toBe("Bearer t0k");
    expect(request.body).toBe('{"contract":"2026-0042","cents":8450}');
  });

  test("no route: every route with its reason; a named route is taken without its match; an unknown name is said so", async () => {
    const other = await runner.explain(await input((raw) => (raw.data.action_config.component_id = "x")));
    expect(other.kind).toBe("unrouted");
    expect(other.kind === "unrouted" && other.decisions.map((decision) => decision.verdict)).toEqual([
      "unmet",
      "by_name_only",
      "unmet",
      "unmet",
      "by_name_only",
      "by_name_only",
    ]);
    const named = await runner.explain(await input(), "queued");
    expect(named.kind === "routed" && named.route).toMatchObject({ name: "queued", chosenBy: "name" });
    expect(named.kind === "routed" && named.decisions).toEqual([{ route: "queued", verdict: "taken" }]);
    expect(await runner.explain(await input(), "nope")).toEqual({
      kind: "unknown_route",
      name: "nope",
      routes: ["billing", "by-name", "erp", "after", "queued", "broken"],
    });
  });

  test("a skip gives the reason epilot would get; a failing expression its stage, error and source", async () => {
    const skipped = await runner.explain(await input((raw) => (raw.data.entity.status = "draft")));
    expect(skipped.kind === "routed" && skipped.outcome).toEqual({ kind: "skipped", reason: "draft 2026-0042" });
    const failed = await runner.explain(await input((raw) => (raw.data.entity.monthly_amount = "84,50")));
    expect(failed.kind === "routed" && failed.outcome).toMatchObject({
      kind: "failed",
      stage: "transform",
      source: '{ "contract": data.entity.contract_number, "cents": data.entity.monthly_amount * 100 }',
    });
    if (failed.kind !== "routed" || failed.outcome.kind !== "failed") return;
    const { error, source } = failed.outcome;
    expect(error.code).toBe("T2001");
    // JSONata's position is 1-based and points at the operator that failed.
    expect(source[error.position! - 1]).toBe("*");
    const unsendable = await runner.explain(await input((raw) => delete raw.data.entity.contract_number), "queued");
    expect(unsendable.kind === "routed" && unsendable.outcome.kind).toBe("unsendable");
  });
});

describe("run", () => {
  test("a sync route: the answer epilot gets from the response rules, and the request the target got", async () => {
    const result = await runner.run(await input(), { targetResponse: { body: { id: "E-1" } } });
    expect(result).toMatchObject({
      route: "erp",
      targetType: "http",
      skipped: false,
      answer: { status: 200, body: { erp_id: "E-1" } },
    });
    expect(result.request?.url.href).toBe(`${legacy.url}/erp/2026-0042`);
    const refused = await runner.run(await input(), { targetResponse: { body: { success: false } } });
    expect(refused.answer.status).toBe(502);
  });

  test("each run has a fresh breaker: failures of one run do not open it for the next", async () => {
    for (let run = 0; run < 3; run++) {
      const result = await runner.run(await input(), { targetResponse: { status: 500 } });
      expect(result.answer.status).toBe(502);
      expect(result.request).not.toBeNull();
    }
  });

  test("an async route: 202, and the request of the first attempt, made from the event as it was stored", async () => {
    const call = await input();
    const result = await runner.run(call, { routeName: "queued", targetResponse: { status: 503 } });
    expect(result).toMatchObject({ route: "queued", skipped: false, answer: { status: 202, body: {} } });
    expect(result.request?.url.href).toBe(`${legacy.url}/queued/2026-0042`);
    expect(result.request?.headers["idempotency-key"]).toBe(call.call.id);
  });

  test("skips, unrouted calls and payloads that cannot be sent send nothing", async () => {
    const skipped = await runner.run(await input((raw) => (raw.data.entity.status = "draft")), { targetResponse: {} });
    expect(skipped).toMatchObject({ route: "erp", skipped: true, request: null, answer: { status: 200 } });
    const unrouted = await runner.run(await input((raw) => (raw.data.action_config.component_id = "x")), {
      targetResponse: {},
    });
    expect(unrouted).toMatchObject({ route: null, request: null, answer: { status: 404 } });
    const unsendable = await runner.run(await input((raw) => delete raw.data.entity.contract_number), {
      routeName: "queued",
      targetResponse: {},
    });
    expect(unsendable).toMatchObject({ route: "queued", request: null, answer: { status: 400 } });
  });

  test("a transform whose result is not data (a function) is a transform failure, as the server answers it", async () => {
    const result = await runner.run(await input(), { routeName: "broken", targetResponse: {} });
    expect(result).toMatchObject({
      route: "broken",
      request: null,
      answer: {
        status: 500,
        body: { error_output: { error_info: { outcome: "transform_failed", expression: "transform" } } },
      },
    });
    expect(result.crashed).toBeUndefined();
  });

  test("a fault for a target that is not SOAP is a problem, and nothing runs", async () => {
    const result = await runner.run(await input(), { targetResponse: { fault: { code: "Client", reason: "x" } } });
    expect(result.problem).toBe(
      "target_response.fault: only a SOAP target answers with a fault; route erp has a http target",
    );
    expect(result.request).toBeNull();
  });
});
