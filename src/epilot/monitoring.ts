import { isRecord } from "../kit/records.ts";
import { parseRetryAfter } from "../kit/retry-after.ts";
import type { Logger } from "../log/logger.ts";
import { createHttpClient, type HttpClient } from "../runtime/http-client.ts";
import { describeNetworkError } from "../runtime/network-errors.ts";

/** One External Monitoring Event (a span of the trace epilot's Integration Hub shows per operation). */
export interface MonitoringSpan {
  /** The trace: the webhook-id of a call, the event_id of a polled message. */
  readonly correlation_id: string;
  readonly level: "success" | "warning" | "error" | "info";
  readonly use_case_slug: string;
  /** ISO 8601: when the step happened. */
  readonly occurred_at: string;
  /** Shown in the trace; fixed words, the route and statuses, never payload content. */
  readonly message: string;
  readonly detail?: Readonly<Record<string, unknown>>;
}

/** Where the spans go, as the config in force says (`epilot.monitoring`); read for every report. */
export interface MonitoringEndpoint {
  readonly apiUrl: string;
  readonly integrationId: string;
  readonly token: string;
  readonly timeoutMs: number;
}

/** What became of spans: `sent` accepted by epilot, `rejected` refused one by one, `dropped` never delivered. */
export type SpanResult = "sent" | "rejected" | "dropped";

export interface MonitoringReporterOptions {
  /** The endpoint in force now; undefined when monitoring is off (spans are then not kept). */
  readonly endpoint: () => MonitoringEndpoint | undefined;
  readonly logger: Logger;
  readonly userAgent: string;
  /** Told how many spans ended how (metrics). */
  readonly onSpans?: ((result: SpanResult, count: number) => void) | undefined;
  /** The longest a span waits before its batch is sent (default 1 s); a full batch goes at once. */
  readonly flushIntervalMs?: number;
  /** Spans kept while epilot does not take them (default 10,000); beyond, the oldest are dropped. */
  readonly maxQueued?: number;
  /** Tries per batch before it is dropped (default 5), with a doubling pause from 1 s. */
  readonly maxAttempts?: number;
  /** The first pause between tries of a batch (default 1 s). */
  readonly retryDelayMs?: number;
  /** The HTTP client (tests); one of its own by default. */
  readonly client?: HttpClient;
}

/** epilot takes at most 100 spans a request. */
export const MAX_SPANS_PER_REQUEST = 100;
/** Only the counts matter; anything larger is not an answer we expect. */
const MAX_ANSWER_BYTES = 256 * 1024;
/** Log lines about a failing endpoint: one per episode, then at most one a minute. */
const LOG_EVERY_MS = 60_000;

/**
 * Reports spans to epilot's External Monitoring Events API
 * (`POST <api_url>/v2/integrations/<id>/monitoring/external-events`, at most 100 a request) in the
 * background. `report()` only queues: it never waits, throws or fails a delivery. One request is in
 * flight at a time; a batch that fails (network, timeout, 429, 5xx) is tried again with a doubling
 * pause, up to `maxAttempts`, then dropped with a warning; a 401/403 or another 4xx drops it at once
 * (another try would fail the same way). The queue is bounded: when epilot is unreachable for long,
 * the oldest spans go first. Every span dropped is counted and logged (at most once a minute).
 *
 * @example
 * const reporter = new MonitoringReporter({ endpoint: () => settings, logger, userAgent: USER_AGENT });
 * reporter.start();
 * reporter.report({ correlation_id: "msg_1", level: "success", use_case_slug: "erp", occurred_at: new Date().toISOString(), message: "Delivered" });
 * await reporter.stop(2_000); // sends what is queued, for at most 2 s
 */
export class MonitoringReporter {
  private readonly queue: MonitoringSpan[] = [];
  private readonly client: HttpClient;
  private readonly flushIntervalMs: number;
  private readonly maxQueued: number;
  private readonly maxAttempts: number;
  private readonly retryDelayMs: number;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private sending: Promise<void> | undefined;
  private running = false;
  /** The batch being tried, how often it was, and how long epilot asked to wait before the next try. */
  private batch: { spans: MonitoringSpan[]; attempts: number; retryAfterMs?: number | undefined } | undefined;
  private lastProblemLogAt = Number.NEGATIVE_INFINITY;
  private lastDropLogAt = Number.NEGATIVE_INFINITY;
  private failing = false;
  private droppedSinceLog = 0;

  constructor(private readonly options: MonitoringReporterOptions) {
    this.client = options.client ?? createHttpClient({ connections: 2, connectTimeoutMs: 10_000 });
    this.flushIntervalMs = options.flushIntervalMs ?? 1_000;
    this.maxQueued = options.maxQueued ?? 10_000;
    this.maxAttempts = options.maxAttempts ?? 5;
    this.retryDelayMs = options.retryDelayMs ?? 1_000;
  }

  /** Spans waiting to be sent (the batch being tried included). */
  get queued(): number {
    return this.queue.length + (this.batch?.spans.length ?? 0);
  }

  start(): void {
    this.running = true;
    if (this.queue.length > 0) this.schedule(this.flushIntervalMs);
  }

  /** Queues a span; returns at once. Without monitoring configured, the span is not kept. */
  report(span: MonitoringSpan): void {
    if (!this.options.endpoint()) return;
    this.queue.push(span);
    if (this.queue.length > this.maxQueued) this.drop(this.queue.splice(0, this.queue.length - this.maxQueued).length);
    if (!this.running) return;
    if (this.queue.length >= MAX_SPANS_PER_REQUEST && !this.sending) this.schedule(0);
    else if (!this.timer && !this.sending) this.schedule(this.flushIntervalMs);
  }

  /** Stops the timer, then sends what is queued for at most `deadlineMs`; what is left is dropped and counted. */
  async stop(deadlineMs = 2_000): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const until = Date.now() + deadlineMs;
    await this.sending;
    // Each round sends a batch, spends one of its tries, or drops it: this ends within the deadline.
    while (this.queued > 0 && Date.now() < until && this.options.endpoint()) {
      this.sending = this.sendOne(Math.max(1, until - Date.now()));
      await this.sending;
      this.sending = undefined;
    }
    const left = this.queued;
    if (left > 0) {
      this.queue.length = 0;
      this.batch = undefined;
      this.drop(left, true);
    }
    await this.client.close();
  }

  private schedule(delayMs: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.sending = this.sendOne().finally(() => {
        this.sending = undefined;
        if (!this.running || this.queued === 0) return;
        const failed = this.batch;
        const full = this.queue.length >= MAX_SPANS_PER_REQUEST;
        this.schedule(
          failed
            ? Math.max(failed.retryAfterMs ?? 0, this.retryDelayMs * 2 ** (failed.attempts - 1))
            : full
              ? 0
              : this.flushIntervalMs,
        );
      });
    }, delayMs);
  }

  /** Tries the current batch (or takes the next one) once. Never rejects. */
  private async sendOne(limitMs?: number): Promise<void> {
    const endpoint = this.options.endpoint();
    if (!endpoint) {
      // Monitoring was switched off by a reload: what waits for it is dropped.
      const left = this.queued;
      this.queue.length = 0;
      this.batch = undefined;
      if (left > 0) this.drop(left);
      return;
    }
    this.batch ??= { spans: this.queue.splice(0, MAX_SPANS_PER_REQUEST), attempts: 0 };
    const batch = this.batch;
    if (batch.spans.length === 0) {
      this.batch = undefined;
      return;
    }
    batch.attempts++;
    const outcome = await this.post(endpoint, batch.spans, limitMs);
    if (outcome.kind === "sent") {
      this.batch = undefined;
      if (this.failing) this.options.logger.info("epilot monitoring takes spans again");
      this.failing = false;
      const rejected = Math.min(outcome.rejected, batch.spans.length);
      if (batch.spans.length - rejected > 0) this.options.onSpans?.("sent", batch.spans.length - rejected);
      if (rejected > 0) {
        this.options.onSpans?.("rejected", rejected);
        this.problem("epilot monitoring refused some spans", { rejected, reasons: outcome.reasons });
      }
      return;
    }
    if (outcome.kind === "retry" && batch.attempts < this.maxAttempts) {
      batch.retryAfterMs = outcome.retryAfterMs;
      this.problem("epilot monitoring failed; the spans are tried again", {
        reason: outcome.reason,
        attempt: batch.attempts,
      });
      return;
    }
    this.batch = undefined;
    this.problem(
      outcome.kind === "retry"
        ? "epilot monitoring failed; the spans are dropped"
        : "epilot monitoring refused the spans; they are dropped (check epilot.monitoring)",
      { reason: outcome.reason, attempts: batch.attempts },
    );
    this.drop(batch.spans.length);
  }

  private async post(
    endpoint: MonitoringEndpoint,
    spans: readonly MonitoringSpan[],
    limitMs?: number,
  ): Promise<
    | { kind: "sent"; rejected: number; reasons: string[] }
    | { kind: "retry"; reason: string; retryAfterMs?: number | undefined }
    | { kind: "fatal"; reason: string }
  > {
    const timeoutMs = Math.min(endpoint.timeoutMs, limitMs ?? endpoint.timeoutMs);
    const deadline = AbortSignal.timeout(timeoutMs);
    const url = new URL(
      `${endpoint.apiUrl.replace(/\/+$/, "")}/v2/integrations/${encodeURIComponent(endpoint.integrationId)}/monitoring/external-events`,
    );
    try {
      const answer = await this.client.request({
        url,
        method: "POST",
        headers: {
          "content-type": "application/json",
          accept: "application/json",
          authorization: `Bearer ${endpoint.token}`,
          "user-agent": this.options.userAgent,
        },
        body: JSON.stringify({ events: spans }),
        signal: deadline,
        maxResponseSize: MAX_ANSWER_BYTES,
      });
      const status = answer.status;
      if (status >= 200 && status < 300) return { kind: "sent", ...rejectionsOf(answer.body) };
      const reason = `HTTP ${status}`;
      if (status === 401 || status === 403) return { kind: "fatal", reason: `${reason}: the token is refused` };
      if (status === 408 || status === 429 || status >= 500) {
        // Honoured up to a minute: a later answer must not hold spans back for hours.
        const wait = parseRetryAfter(answer.headers["retry-after"]);
        return { kind: "retry", reason, retryAfterMs: wait === undefined ? undefined : Math.min(wait, 60_000) };
      }
      return { kind: "fatal", reason };
    } catch (error) {
      if (deadline.aborted) return { kind: "retry", reason: `no answer within ${timeoutMs} ms` };
      const failure = describeNetworkError(error);
      return { kind: "retry", reason: `${failure.reason}${failure.code ? ` (${failure.code})` : ""}` };
    }
  }

  private drop(count: number, atShutdown = false): void {
    if (count <= 0) return;
    this.options.onSpans?.("dropped", count);
    this.droppedSinceLog += count;
    if (atShutdown || Date.now() - this.lastDropLogAt >= LOG_EVERY_MS) {
      this.options.logger.warn("epilot monitoring spans dropped", {
        dropped: this.droppedSinceLog,
        ...(atShutdown ? { at: "shutdown" } : {}),
      });
      this.lastDropLogAt = Date.now();
      this.droppedSinceLog = 0;
    }
  }

  /** Logged when it starts, then at most once a minute while it lasts. */
  private problem(message: string, fields: Record<string, unknown>): void {
    const now = Date.now();
    if (this.failing && now - this.lastProblemLogAt < LOG_EVERY_MS) return;
    this.failing = true;
    this.lastProblemLogAt = now;
    this.options.logger.warn(message, fields);
  }
}

/** The per-span rejections of a 202 answer: `{accepted, rejected, results: [{index, status, reason}]}`. */
function rejectionsOf(body: Buffer): { rejected: number; reasons: string[] } {
  let json: unknown;
  try {
    json = JSON.parse(body.toString("utf8"));
  } catch {
    return { rejected: 0, reasons: [] };
  }
  if (!isRecord(json)) return { rejected: 0, reasons: [] };
  const rejected = typeof json.rejected === "number" && json.rejected > 0 ? Math.floor(json.rejected) : 0;
  const reasons = Array.isArray(json.results)
    ? json.results
        .flatMap((result) =>
          isRecord(result) && typeof result.reason === "string" ? [result.reason.slice(0, 200)] : [],
        )
        .slice(0, 5)
    : [];
  return { rejected, reasons };
}
