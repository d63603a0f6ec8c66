import { redact } from "./redact.ts";

export type LogLevel = "debug" | "info" | "warn" | "error";
const LEVEL_RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFields = Record<string, unknown>;

/** Where finished log lines go; tests pass an array-backed sink to read what was logged. */
export type LogSink = (line: string) => void;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

/**
 * Writes one JSON object per line with `time`, `level` and `msg`, every field passed through
 * {@link redact} so that tokens and secrets never reach the log.
 *
 * @example
 * const log = createLogger({ level: "info" });
 * log.info("call", { route: "erp", status: 200 });
 */
export function createLogger(options: { level?: LogLevel; sink?: LogSink; base?: LogFields } = {}): Logger {
  const threshold = LEVEL_RANK[options.level ?? "info"];
  const sink = options.sink ?? stdoutSink();
  const base = options.base ?? {};
  const write = (level: LogLevel, msg: string, fields?: LogFields): void => {
    if (LEVEL_RANK[level] < threshold) return;
    const record = {
      time: new Date().toISOString(),
      level,
      msg,
      ...base,
      ...(fields ? (redact(fields) as LogFields) : {}),
    };
    sink(JSON.stringify(record));
  };
  return {
    debug: (msg, fields) => write("debug", msg, fields),
    info: (msg, fields) => write("info", msg, fields),
    warn: (msg, fields) => write("warn", msg, fields),
    error: (msg, fields) => write("error", msg, fields),
    // The child writes through the same sink (one stdout batch, one exit flush), however many
    // children are made: one per traced call or attempt carries its trace_id and span_id.
    child: (fields) => createLogger({ ...options, sink, base: { ...base, ...(redact(fields) as LogFields) } }),
  };
}

/**
 * A pipe takes a write of up to PIPE_BUF bytes in one piece. Workers share one stdout, so each write
 * stays within it and ends at a line's end: lines of two processes never interleave mid-line.
 */
const ATOMIC_WRITE_BYTES = 4096;

/**
 * Batches lines and writes them once per tick: a call on the request path never waits on the
 * terminal or pipe behind stdout. Pending lines are flushed on exit.
 */
function stdoutSink(): LogSink {
  let pending: string[] = [];
  const flush = (): void => {
    if (pending.length === 0) return;
    const lines = pending;
    pending = [];
    let chunk = "";
    let chunkBytes = 0;
    for (const line of lines) {
      const bytes = Buffer.byteLength(line) + 1;
      if (chunkBytes > 0 && chunkBytes + bytes > ATOMIC_WRITE_BYTES) {
        process.stdout.write(chunk);
        chunk = "";
        chunkBytes = 0;
      }
      chunk += `${line}\n`;
      chunkBytes += bytes;
    }
    process.stdout.write(chunk);
  };
  process.on("exit", flush);
  return (line) => {
    if (pending.length === 0) setTimeout(flush, 0);
    pending.push(line);
  };
}

/** A logger that drops everything, for library use and tests that do not read logs. */
export const silentLogger: Logger = createLogger({ sink: () => {} });
