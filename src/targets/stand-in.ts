import type { OutboundMessage } from "./message.ts";
import { type SoapFaultSpec, soapAnswerEnvelope } from "./soap/answer-envelope.ts";
import type { Target, TargetAnswer, TargetOutcome, TargetRequest } from "./types.ts";

/** What a route test says the legacy system answers (`target_response`). */
export interface StandInAnswer {
  /** Default 200, or 500 with a fault. */
  readonly status?: number | undefined;
  readonly headers?: Readonly<Record<string, string>> | undefined;
  /**
   * http: sent as JSON (text as it is); soap: the Body's content as JSON (text: the whole answer
   * as it is). Default `{}` (http), an empty Body (soap).
   */
  readonly body?: unknown;
  /** soap only: a SOAP Fault instead of a body. */
  readonly fault?: SoapFaultSpec | undefined;
}

/** A target that answers in a real one's stead, with every request it would have sent. */
export interface StandInTarget extends Target {
  /** What `deliver` rendered, one per attempt. */
  readonly requests: readonly TargetRequest[];
}

/**
 * Stands in for `real` without sending anything: `deliver` renders the request with the real
 * target (URL and header placeholders, body or envelope, the header rule), records it, and reads
 * `answer` with the real target's `interpret`, so the outcome is the one that answer would give
 * (status, SOAP fault, the body `response.*` reads). `render` is the real target's.
 *
 * @example
 * const target = standInTarget(route.target, { status: 200, body: { id: "E-1" } });
 * await target.deliver(message); // { kind: "delivered", response: { status: 200, body: { id: "E-1" }, ... } }
 * target.requests[0]; // { method: "POST", url, headers, body: '{"contract":"2026-0042"}', ... }
 */
export function standInTarget(real: Target, answer: StandInAnswer): StandInTarget {
  const requests: TargetRequest[] = [];
  return {
    type: real.type,
    ownHeaders: real.ownHeaders,
    requests,
    render: (message) => real.render(message),
    describe: () => real.describe(),
    interpret: (received, message) => real.interpret(received, message),
    async deliver(message: OutboundMessage): Promise<TargetOutcome> {
      const rendered = await real.render(message);
      if (!rendered.ok) return { kind: "invalid_message", reason: rendered.reason };
      requests.push(rendered.request);
      return real.interpret(answerFor(real.type, answer, rendered.request), message);
    },
    // The real target's connections are the runner's to close; a stand-in opens none.
    close: async () => {},
  };
}

/** The answer's bytes as the target would receive them; a SOAP answer in the version the request was sent in. */
function answerFor(type: string, answer: StandInAnswer, request: TargetRequest): TargetAnswer {
  const headers = Object.fromEntries(
    Object.entries(answer.headers ?? {}).map(([name, value]) => [name.toLowerCase(), value]),
  );
  const status = answer.status ?? (answer.fault ? 500 : 200);
  let text: string;
  let contentType: string;
  if (type === "soap") {
    const version = request.headers["content-type"]?.startsWith("application/soap+xml") ? "1.2" : "1.1";
    contentType = version === "1.2" ? "application/soap+xml; charset=utf-8" : "text/xml; charset=utf-8";
    text =
      typeof answer.body === "string"
        ? answer.body
        : soapAnswerEnvelope(version, { body: answer.body, fault: answer.fault });
  } else if (typeof answer.body === "string") {
    contentType = "text/plain; charset=utf-8";
    text = answer.body;
  } else {
    contentType = "application/json";
    text = JSON.stringify(answer.body ?? {});
  }
  return {
    kind: "answered",
    status,
    headers: { "content-type": contentType, ...headers },
    setCookies: [],
    body: Buffer.from(text, "utf8"),
  };
}
