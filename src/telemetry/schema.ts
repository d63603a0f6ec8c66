import { z } from "zod";
import { duration, envNumber } from "../kit/units.ts";
import { absoluteUrl } from "../kit/urls.ts";

/** RFC 9110 token: what an HTTP header name may be. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Visible characters, spaces and tabs: a header value that cannot split the request. */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

export const telemetrySchema = z
  .strictObject({
    otlp_endpoint: absoluteUrl.describe(
      "base URL of an OTLP/HTTP receiver (an OpenTelemetry Collector, Grafana Tempo or Alloy, Jaeger): spans go to `<otlp_endpoint>/v1/traces`, e.g. `http://collector:4318`",
    ),
    protocol: z
      .enum(["http/protobuf", "http/json"])
      .default("http/protobuf")
      .describe("OTLP encoding: `http/protobuf` (every receiver takes it) or `http/json`"),
    service_name: z
      .string()
      .min(1)
      .default("actiongate")
      .describe("`service.name` of every span: how this gateway is named in the trace backend"),
    sample_ratio: envNumber(z.number().min(0).max(1))
      .prefault(1)
      .describe(
        "share of new traces recorded (0 to 1); a call carrying a `traceparent` follows that header's sampled flag instead",
      ),
    headers: z
      .record(
        z.string().regex(HEADER_NAME, "must be a valid HTTP header name"),
        z.string().regex(HEADER_VALUE, "must be a header value without line breaks or control characters"),
      )
      .default({})
      .describe(
        "HTTP headers sent with every export, e.g. `authorization: Bearer ${OTLP_TOKEN}` for a hosted backend; never logged",
      ),
    timeout: duration
      .prefault("10s")
      .describe("deadline of one export, retries included; a collector slower than this loses that batch"),
    max_queue_size: envNumber(z.number().int().min(64).max(100_000))
      .prefault(2048)
      .describe(
        "spans kept waiting for export at most; beyond, new spans are dropped and counted (`actiongate_telemetry_dropped_spans_total`)",
      ),
  })
  .describe(
    "OpenTelemetry traces over OTLP/HTTP: a server span per call, spans for verification, the transform, each target attempt and the calls to epilot. Off when absent (nothing of OpenTelemetry is loaded); read at start only.",
  );

export type TelemetryConfig = z.output<typeof telemetrySchema>;
