import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import protobuf from "protobufjs";
import { silentLogger } from "../../src/log/logger.ts";
import { telemetrySchema } from "../../src/telemetry/schema.ts";
import { startTelemetry, type Telemetry } from "../../src/telemetry/setup.ts";

/**
 * A local OTLP/HTTP trace receiver, standing in for an OpenTelemetry Collector: takes
 * `POST /v1/traces` in both encodings (http/json as JSON, http/protobuf decoded with the official
 * OTLP definitions in ./otlp-proto through protobufjs) and keeps every span in one plain shape.
 * It can answer with another status or not at all, like a collector that is failing or slow.
 */

/** One span as the receiver got it, with ids in lower-case hex whatever the encoding. */
export interface ReceivedSpan {
  readonly traceId: string;
  readonly spanId: string;
  /** Empty for a root span. */
  readonly parentSpanId: string;
  readonly traceState: string;
  readonly name: string;
  readonly kind: "internal" | "server" | "client" | "producer" | "consumer" | "unspecified";
  readonly attributes: Record<string, string | number | boolean>;
  readonly status: { readonly code: "unset" | "ok" | "error"; readonly message: string };
  readonly startNanos: bigint;
  readonly endNanos: bigint;
  /** The resource's attributes (service.name, ...). */
  readonly resource: Record<string, string | number | boolean>;
}

/** One export request as it arrived. */
export interface ReceivedExport {
  readonly path: string;
  readonly contentType: string;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly spans: readonly ReceivedSpan[];
  /** The body as sent, for "never contains" checks in either encoding. */
  readonly raw: Buffer;
}

export type ReceiverMode =
  /** 200 with an empty answer of the request's encoding. */
  | { kind: "accept" }
  /** This status, the spans not kept (a collector refusing: 400, 401, 503, ...). */
  | { kind: "status"; status: number }
  /** Takes the connection and never answers (a collector that hangs). */
  | { kind: "hang" };

export interface OtlpReceiver {
  /** Base URL (`http://127.0.0.1:<port>`, https with `tls`), what `telemetry.otlp_endpoint` takes. */
  readonly url: string;
  readonly exports: ReceivedExport[];
  /** Every span kept so far, in the order they arrived. */
  spans(): ReceivedSpan[];
  /** Every body received, as text (protobuf bodies keep their strings readable), for "never contains" checks. */
  rawText(): string;
  /** Resolves once `count` spans were kept (or rejects after `timeoutMs`). */
  waitForSpans(count: number, timeoutMs?: number): Promise<ReceivedSpan[]>;
  /** Requests that reached the receiver, answered or not. */
  readonly requestCount: number;
  setMode(mode: ReceiverMode): void;
  close(): Promise<void>;
}

const PROTO_ROOT = join(import.meta.dir, "otlp-proto");
let requestType: Promise<protobuf.Type> | undefined;

/** The OTLP `ExportTraceServiceRequest` message, loaded once from the vendored .proto files. */
function exportRequestType(): Promise<protobuf.Type> {
  requestType ??= (async () => {
    const root = new protobuf.Root();
    root.resolvePath = (_origin, target) => join(PROTO_ROOT, target);
    await root.load("opentelemetry/proto/collector/trace/v1/trace_service.proto", { keepCase: false });
    return root.lookupType("opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest");
  })();
  return requestType;
}

/** Starts the receiver on 127.0.0.1 (a free port unless `port` is given); over HTTPS with `tls`. */
export async function startOtlpReceiver(
  options: { port?: number; mode?: ReceiverMode; tls?: { cert: string; key: string } } = {},
): Promise<OtlpReceiver> {
  const exports: ReceivedExport[] = [];
  let mode: ReceiverMode = options.mode ?? { kind: "accept" };
  let requestCount = 0;
  const waiters = new Set<() => void>();
  const hung = new Set<ServerResponse>();
  const type = await exportRequestType();

  const listener: RequestListener = async (req: IncomingMessage, res: ServerResponse) => {
    requestCount++;
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const contentType = String(req.headers["content-type"] ?? "");
    if (mode.kind === "hang") {
      hung.add(res);
      return;
    }
    if (mode.kind === "status") {
      res.writeHead(mode.status, { "content-type": "application/json" });
      res.end(JSON.stringify({ code: mode.status, message: "refused by the test receiver" }));
      return;
    }
    if (req.method !== "POST" || req.url !== "/v1/traces") {
      res.writeHead(404).end();
      return;
    }
    let spans: ReceivedSpan[];
    try {
      spans = contentType.startsWith("application/x-protobuf")
        ? fromProtobuf(type, body)
        : fromJson(JSON.parse(body.toString("utf8")));
    } catch (error) {
      res.writeHead(400, { "content-type": "text/plain" }).end(`cannot decode: ${(error as Error).message}`);
      return;
    }
    exports.push({ path: req.url, contentType, headers: req.headers, spans, raw: body });
    for (const wake of waiters) wake();
    if (contentType.startsWith("application/x-protobuf")) {
      res.writeHead(200, { "content-type": "application/x-protobuf" }).end();
    } else {
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    }
  };
  const server: Server = options.tls ? createHttpsServer(options.tls, listener) : createServer(listener);
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  const spans = () => exports.flatMap((received) => received.spans);
  return {
    url: `${options.tls ? "https" : "http"}://127.0.0.1:${port}`,
    exports,
    spans,
    rawText: () => exports.map((received) => received.raw.toString("latin1")).join("\n"),
    get requestCount() {
      return requestCount;
    },
    waitForSpans(count, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (spans().length < count) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(spans());
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`only ${spans().length} of ${count} spans arrived: ${spans().map((s) => s.name)}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    setMode(next) {
      mode = next;
    },
    async close() {
      for (const res of hung) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const KINDS = ["unspecified", "internal", "server", "client", "producer", "consumer"] as const;
const STATUS = ["unset", "ok", "error"] as const;

/** http/json: ids are hex strings, enums numbers, 64-bit integers strings or numbers (OTLP/JSON). */
function fromJson(json: any): ReceivedSpan[] {
  return (json.resourceSpans ?? []).flatMap((resourceSpans: any) => {
    const resource = attributesOf(resourceSpans.resource?.attributes);
    return (resourceSpans.scopeSpans ?? []).flatMap((scopeSpans: any) =>
      (scopeSpans.spans ?? []).map(
        (span: any): ReceivedSpan => ({
          traceId: String(span.traceId ?? "").toLowerCase(),
          spanId: String(span.spanId ?? "").toLowerCase(),
          parentSpanId: String(span.parentSpanId ?? "").toLowerCase(),
          traceState: span.traceState ?? "",
          name: span.name,
          kind: KINDS[Number(span.kind ?? 0)] ?? "unspecified",
          attributes: attributesOf(span.attributes),
          status: { code: STATUS[Number(span.status?.code ?? 0)] ?? "unset", message: span.status?.message ?? "" },
          startNanos: BigInt(span.startTimeUnixNano ?? 0),
          endNanos: BigInt(span.endTimeUnixNano ?? 0),
          resource,
        }),
      ),
    );
  });
}

/** http/protobuf: decoded with the OTLP message types, then read like the JSON form. */
function fromProtobuf(type: protobuf.Type, body: Buffer): ReceivedSpan[] {
  const message = type.decode(body);
  const plain = type.toObject(message, { longs: String, enums: Number, bytes: String, defaults: false }) as any;
  const hex = (base64: string | undefined) => Buffer.from(base64 ?? "", "base64").toString("hex");
  for (const resourceSpans of plain.resourceSpans ?? []) {
    for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
      for (const span of scopeSpans.spans ?? []) {
        span.traceId = hex(span.traceId);
        span.spanId = hex(span.spanId);
        span.parentSpanId = hex(span.parentSpanId);
      }
    }
  }
  return fromJson(plain);
}

function attributesOf(list: any[] | undefined): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const { key, value } of list ?? []) {
    if (value?.stringValue !== undefined) out[key] = value.stringValue;
    else if (value?.boolValue !== undefined) out[key] = value.boolValue;
    else if (value?.intValue !== undefined) out[key] = Number(value.intValue);
    else if (value?.doubleValue !== undefined) out[key] = Number(value.doubleValue);
  }
  return out;
}

/**
 * A receiver and a process's tracing exporting to it, as a test of traced code needs: spans are
 * batched for 10 ms instead of 1 s, so the test waits milliseconds for them. Shut the telemetry
 * down, then close the receiver.
 *
 * @example
 * const { collector, telemetry } = await startTracedReceiver();
 * const span = telemetry.tracer.startSpan("deliver", "internal", undefined);
 */
export async function startTracedReceiver(): Promise<{ collector: OtlpReceiver; telemetry: Telemetry }> {
  const collector = await startOtlpReceiver();
  const telemetry = await startTelemetry(telemetrySchema.parse({ otlp_endpoint: collector.url }), {
    logger: silentLogger,
    serviceVersion: "test",
    scheduledDelayMs: 10,
  });
  return { collector, telemetry };
}
