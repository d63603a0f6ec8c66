import { readFileSync } from "node:fs";
import { loadConfigFile } from "../config/load.ts";
import { delayCeilingMs } from "../delivery/retry-policy.ts";
import type { Route } from "../delivery/route.ts";
import {
  createLocalRunner,
  type Explanation,
  type LocalInput,
  type LocalRunner,
  type RouteDecision,
  type ShapingOutcome,
} from "../gateway/local-run.ts";
import type { ExplainArguments } from "./args.ts";
import { localInputOf } from "./local-input.ts";
import { maskRequest, type RequestView } from "./mask.ts";
import { reportConfigError } from "./report-config-error.ts";

/** Where a command writes; replaceable in tests. */
export interface CommandOutput {
  stdout(text: string): void;
  stderr(text: string): void;
}

export const processOutput: CommandOutput = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

/**
 * `actiongate explain`: what the route that handles a payload file would send, without sending it.
 * Runs the gateway's own stages after verification (route, strip, skip_when, transform, the
 * target's request) on the payload; nothing is sent, no store is opened, no key is fetched.
 * Credentials are shown as `***`. Exit 0 when a route handles the payload (a skip included), 1 when
 * none does, a stage fails or the config has problems, 2 for bad arguments (a payload file that
 * cannot be read or is no custom action, a `--route` the config does not have).
 *
 * @example
 * await explainCommand({ payloadFile: "examples/payloads/custom-action.json", json: false }, "config.yaml", process.env);
 */
export async function explainCommand(
  args: ExplainArguments,
  configFile: string,
  env: Readonly<Record<string, string | undefined>>,
  output: CommandOutput = processOutput,
): Promise<number> {
  const payload = readJsonFile(args.payloadFile);
  if (!payload.ok) {
    output.stderr(`actiongate: ${payload.message}\n`);
    return 2;
  }
  const input = localInputOf(payload.json);
  if (!input.ok) {
    output.stderr(`actiongate: ${args.payloadFile}: ${input.message}\n`);
    return 2;
  }
  const runner = reportConfigError(() => createLocalRunner(loadConfigFile(configFile, env)));
  if (!runner) return 1;
  try {
    const explanation = await runner.explain(input.input, args.route);
    if (explanation.kind === "unknown_route") {
      output.stderr(
        `actiongate: ${configFile} has no route "${explanation.name}" (routes: ${explanation.routes.join(", ")})\n`,
      );
      return 2;
    }
    const view = viewOf(explanation, runner);
    output.stdout(
      args.json
        ? `${JSON.stringify(jsonOf(view), null, 2)}\n`
        : textOf(view, `${args.payloadFile}: ${describePayload(input.input)}`),
    );
    return handled(explanation) ? 0 : 1;
  } finally {
    await runner.close();
  }
}

/** A JSON file's content, or why it cannot be had (named, for exit 2). */
export function readJsonFile(file: string): { ok: true; json: unknown } | { ok: false; message: string } {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    const code = (error as { code?: string }).code;
    return { ok: false, message: `cannot read the payload file ${file} (${code === "ENOENT" ? "not found" : code})` };
  }
  try {
    return { ok: true, json: JSON.parse(text) };
  } catch (error) {
    return { ok: false, message: `${file} is not valid JSON (${(error as Error).message})` };
  }
}

type Routed = Extract<Explanation, { kind: "routed" }>;

/** An explanation with its request masked: everything either output form shows. */
interface ExplanationView {
  readonly explanation: Exclude<Explanation, { kind: "unknown_route" }>;
  readonly request?: RequestView;
}

function viewOf(explanation: Exclude<Explanation, { kind: "unknown_route" }>, runner: LocalRunner): ExplanationView {
  if (explanation.kind !== "routed" || explanation.outcome.kind !== "request") return { explanation };
  const index = runner.loaded.config.routes.findIndex((route) => route.name === explanation.route.name);
  return { explanation, request: maskRequest(explanation.outcome.request, runner.loaded, index).view };
}

function handled(explanation: Explanation): boolean {
  return (
    explanation.kind === "routed" && (explanation.outcome.kind === "request" || explanation.outcome.kind === "skipped")
  );
}

/** The `--json` form: the keys of the contract first, then the decisions, the delivery and any error. */
function jsonOf(view: ExplanationView): Record<string, unknown> {
  const { explanation } = view;
  const decisions = explanation.decisions.map((decision) => ({
    route: decision.route,
    verdict: decision.verdict,
    ...(decision.unmet
      ? { key: decision.unmet.key, expected: decision.unmet.expected, actual: decision.unmet.actual ?? null }
      : {}),
  }));
  if (explanation.kind === "unrouted") {
    return {
      route: null,
      skipped: false,
      skip_reason: null,
      stripped: [],
      body: null,
      request: null,
      match: decisions,
      error: { stage: "route", message: "no route's match holds for this payload (POST /actions answers 404)" },
    };
  }
  const { outcome } = explanation;
  const body =
    outcome.kind === "request" || outcome.kind === "unsendable" || outcome.kind === "crashed"
      ? jsonValue(outcome.body)
      : null;
  return {
    route: explanation.route.name,
    skipped: outcome.kind === "skipped",
    skip_reason: outcome.kind === "skipped" ? outcome.reason : null,
    stripped: explanation.stripped,
    body,
    request: view.request ?? null,
    match: decisions,
    delivery: deliveryJson(explanation.route),
    ...(errorOf(outcome) ? { error: errorOf(outcome) } : {}),
  };
}

function errorOf(outcome: ShapingOutcome): Record<string, unknown> | undefined {
  switch (outcome.kind) {
    case "failed":
      return {
        stage: outcome.stage,
        message: outcome.error.message,
        ...(outcome.error.code ? { code: outcome.error.code } : {}),
        ...(outcome.error.position !== undefined ? { position: outcome.error.position } : {}),
      };
    case "empty":
      return { stage: "transform", message: "the transform produced no value for this payload" };
    case "unsendable":
      return { stage: "request", message: outcome.reason };
    case "crashed":
      return { stage: "request", message: `building the request failed unexpectedly: ${outcome.error}` };
    default:
      return undefined;
  }
}

function deliveryJson(route: Routed["route"]): Record<string, unknown> {
  const { delivery } = route;
  if (delivery.mode === "sync") return { mode: "sync", timeout_ms: route.timeoutMs };
  return {
    mode: "async",
    timeout_ms: route.timeoutMs,
    max_attempts: delivery.maxAttempts,
    backoff: { initial_ms: delivery.backoff.initialMs, max_ms: delivery.backoff.maxMs },
    retries: retrySchedule(delivery).map((step) => ({
      from_attempt: step.from,
      to_attempt: step.to,
      max_delay_ms: step.maxDelayMs,
    })),
  };
}

/** Attempts 2..max and the longest wait before each, runs of the same wait folded into one step. */
function retrySchedule(delivery: Route["delivery"]): { from: number; to: number; maxDelayMs: number }[] {
  const steps: { from: number; to: number; maxDelayMs: number }[] = [];
  for (let attempt = 2; attempt <= delivery.maxAttempts; attempt++) {
    const maxDelayMs = delayCeilingMs(attempt - 1, delivery.backoff);
    const last = steps.at(-1);
    if (last && last.maxDelayMs === maxDelayMs) last.to = attempt;
    else steps.push({ from: attempt, to: attempt, maxDelayMs });
  }
  return steps;
}

/** What the payload is, in the terms `match` reads. */
function describePayload(input: LocalInput): string {
  const { data } = input.call.payload;
  const entity = data.entity._schema ? `${data.entity._schema} ${data.entity._id ?? ""}`.trim() : "an entity";
  const config = data.action_config;
  const action = [
    config?.component_id !== undefined ? `component_id ${config.component_id}` : undefined,
    config?.name !== undefined ? `action "${config.name}"` : undefined,
  ].filter(Boolean);
  return `a custom action of org ${data.org_id} on ${entity}${action.length ? ` (${action.join(", ")})` : ""}`;
}

/** The text form: one section per stage, in the order the request path runs them. */
function textOf(view: ExplanationView, payload: string): string {
  const { explanation } = view;
  const sections: string[] = [];
  const section = (title: string, ...lines: string[]) =>
    sections.push([title, ...lines.map((line) => (line === "" ? "" : `  ${line}`))].join("\n"));

  section(`payload: ${payload}`);
  if (explanation.kind === "unrouted") {
    section(
      "route: none; no route's match holds, so POST /actions answers 404",
      ...decisionLines(explanation.decisions),
    );
    return `${sections.join("\n\n")}\n`;
  }
  const { route, outcome } = explanation;
  section(
    route.chosenBy === "name"
      ? `route: ${route.name} (named by --route, as POST /actions/${route.name} would; its match is not checked)`
      : `route: ${route.name}, the first route whose match holds`,
    ...(route.chosenBy === "match" ? decisionLines(explanation.decisions) : []),
  );
  section(
    explanation.stripped.length > 0 ? `strip: removed ${explanation.stripped.join(", ")}` : "strip: removed nothing",
  );

  if (outcome.kind === "failed" && outcome.stage !== "transform") {
    section(
      `${outcome.stage}: failed: ${describeError(outcome.error)}`,
      ...pointAt(outcome.source, outcome.error.position),
      "the gateway answers 500; nothing is sent",
    );
    return `${sections.join("\n\n")}\n`;
  }
  if (outcome.kind === "skipped") {
    section(
      "skip_when: held, so nothing is sent",
      `epilot gets 200 ${JSON.stringify({ skip_reason: outcome.reason })}`,
    );
    return `${sections.join("\n\n")}\n`;
  }
  section(route.hasSkipWhen ? "skip_when: did not hold" : "skip_when: not set");

  if (outcome.kind === "failed") {
    section(
      `transform: failed: ${describeError(outcome.error)}`,
      ...pointAt(outcome.source, outcome.error.position),
      "the gateway answers 500; nothing is sent",
    );
    return `${sections.join("\n\n")}\n`;
  }
  if (outcome.kind === "empty") {
    section("transform: produced no value for this payload", "the gateway answers 400; nothing is sent");
    return `${sections.join("\n\n")}\n`;
  }
  section(
    route.hasTransform ? "transform: its result" : "transform: not set; the body is the stripped payload",
    ...prettyJson(outcome.body).split("\n"),
  );
  if (outcome.kind === "unsendable") {
    section(`request: cannot be built: ${outcome.reason}`, "the gateway answers 400; nothing is sent");
    return `${sections.join("\n\n")}\n`;
  }
  if (outcome.kind === "crashed") {
    section(
      `request: building it failed unexpectedly: ${outcome.error}`,
      "the gateway answers 500 (internal_error); nothing is sent",
    );
    return `${sections.join("\n\n")}\n`;
  }
  const request = view.request!;
  const readable = route.targetType === "soap" && request.body !== undefined ? indentXml(request.body) : undefined;
  section(
    `request: what the ${route.targetType} target would receive`,
    `${request.method} ${request.url}`,
    ...Object.entries(request.headers).map(([name, value]) => `${name}: ${value}`),
    ...(request.body !== undefined ? ["", ...(readable ?? request.body).split("\n")] : []),
    ...(readable !== undefined
      ? ["", "(the envelope is indented here to be read; --json shows it exactly as sent)"]
      : []),
  );
  section(...deliveryLines(route));
  return `${sections.join("\n\n")}\n`;
}

function decisionLines(decisions: readonly RouteDecision[]): string[] {
  const width = Math.max(...decisions.map((decision) => decision.route.length));
  return decisions.map((decision) => {
    const name = decision.route.padEnd(width);
    if (decision.verdict === "taken") return `${name}  match holds`;
    if (decision.verdict === "by_name_only")
      return `${name}  no match: reachable only by name (POST /actions/${decision.route}, --route)`;
    const unmet = decision.unmet;
    if (!unmet) return `${name}  match does not hold`;
    const wanted = unmet.expected.map((value) => JSON.stringify(value)).join(" or ");
    const has = unmet.actual === undefined ? "no value there" : JSON.stringify(unmet.actual);
    return `${name}  ${unmet.key}: wants ${wanted}, the payload has ${has} (${unmet.field})`;
  });
}

function deliveryLines(route: Routed["route"]): [string, ...string[]] {
  const { delivery } = route;
  const timeout = humanDuration(route.timeoutMs);
  if (delivery.mode === "sync")
    return [
      `delivery: sync; epilot waits for the target's answer (timeout ${timeout}); a failure is answered at once, not retried`,
    ];
  const steps = retrySchedule(delivery);
  const width = `attempts ${delivery.maxAttempts}-${delivery.maxAttempts}`.length;
  return [
    `delivery: async; epilot gets 202 once the call is stored, then up to ${delivery.maxAttempts} attempt${delivery.maxAttempts === 1 ? "" : "s"} (timeout ${timeout} each)`,
    `${"attempt 1".padEnd(width)}  at once`,
    ...steps.map((step) => {
      const which = step.from === step.to ? `attempt ${step.from}` : `attempts ${step.from}-${step.to}`;
      const each = step.from === step.to ? "" : " each";
      return `${which.padEnd(width)}  after a random wait of up to ${humanDuration(step.maxDelayMs)}${each}`;
    }),
    "then the dead letters; a 4xx answer or a SOAP Client fault goes there at once, a Retry-After is honoured",
  ];
}

/** JSON of a transform's result for reading; a value JSON cannot write (a JSONata function) says what it is. */
function prettyJson(value: unknown): string {
  try {
    return JSON.stringify(value, null, 2) ?? `(not JSON: ${typeof value})`;
  } catch {
    return `(not JSON: ${typeof value})`;
  }
}

/** The transform's result for --json: itself, or null when JSON cannot hold it. */
function jsonValue(value: unknown): unknown {
  try {
    return JSON.stringify(value) === undefined ? null : value;
  } catch {
    return null;
  }
}

/** The line of `source` that holds character `position` (JSONata's, 1-based), with a `^` under it. */
function pointAt(source: string, position: number | undefined): string[] {
  if (position === undefined || position < 1 || position > source.length) return [];
  const before = source.slice(0, position - 1);
  const start = before.lastIndexOf("\n") + 1;
  const end = source.indexOf("\n", position - 1);
  const line = source.slice(start, end === -1 ? undefined : end);
  return [line, `${" ".repeat(position - 1 - start)}^`, ""];
}

function describeError(error: { message: string; code?: string | undefined; position?: number | undefined }): string {
  const where = error.position !== undefined ? ` at character ${error.position}` : "";
  return `JSONata${error.code ? ` ${error.code}` : ""}${where}: ${error.message}`;
}

/**
 * XML indented one element a line, for reading (an element holding only text stays on its line);
 * undefined for what this simple reading does not cover (comments, CDATA, a DOCTYPE).
 *
 * @example
 * indentXml("<a><b>1</b></a>"); // "<a>\n  <b>1</b>\n</a>"
 */
export function indentXml(xml: string): string | undefined {
  if (xml.includes("<!")) return undefined;
  const tokens = xml.match(/<[^>]*>|[^<]+/g) ?? [];
  const lines: string[] = [];
  let depth = 0;
  const put = (text: string) => lines.push(`${"  ".repeat(depth)}${text}`);
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (!token.startsWith("<")) {
      if (token.trim() !== "") put(token.trim());
      continue;
    }
    if (token.startsWith("</")) {
      depth = Math.max(0, depth - 1);
      put(token);
    } else if (token.startsWith("<?") || token.endsWith("/>")) {
      put(token);
    } else {
      const next = tokens[i + 1];
      const after = tokens[i + 2];
      if (next !== undefined && !next.startsWith("<") && after?.startsWith("</")) {
        put(`${token}${next}${after}`);
        i += 2;
      } else if (next?.startsWith("</")) {
        put(`${token}${next}`);
        i += 1;
      } else {
        put(token);
        depth++;
      }
    }
  }
  return lines.join("\n");
}

/**
 * Milliseconds as an operator reads them: `500ms`, `1s`, `4m16s`, `1h30m`.
 *
 * @example
 * humanDuration(256_000); // "4m16s"
 */
export function humanDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const units: [string, number][] = [
    ["d", 86_400_000],
    ["h", 3_600_000],
    ["m", 60_000],
    ["s", 1000],
  ];
  let rest = Math.round(ms / 1000) * 1000;
  let out = "";
  for (const [unit, size] of units) {
    const count = Math.floor(rest / size);
    if (count > 0) out += `${count}${unit}`;
    rest -= count * size;
  }
  return out;
}
