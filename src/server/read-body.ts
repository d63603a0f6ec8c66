import { startDeadline } from "../runtime/deadline.ts";
import type { BodyBudget } from "./body-budget.ts";

/** Limits on reading one request body. */
export interface BodyLimits {
  /** More bytes than this end the read with `too_large`. */
  readonly maxBytes: number;
  /** The whole body must arrive within this many milliseconds of the read starting. */
  readonly timeoutMs: number;
  /**
   * The bytes of all bodies in progress; each read takes what it holds from it (see
   * {@link BodyReadResult}'s `heldBytes`), and the caller gives them back once the call is done.
   */
  readonly budget?: BodyBudget | undefined;
}

export type BodyReadResult =
  /** `heldBytes`: what the read took from the budget; the caller releases it when the call is done. */
  | { ok: true; body: Uint8Array; heldBytes: number }
  /** The budget of bodies in progress is spent: refused at once, nothing held. */
  | { ok: false; reason: "overloaded" }
  /** `declared`: the Content-Length alone was over the limit, so nothing was read. */
  | { ok: false; reason: "too_large"; declared: boolean }
  /** `receivedBytes` when the body was streamed; `expectedBytes` (its Content-Length) when it was read whole. */
  | { ok: false; reason: "timeout"; receivedBytes?: number; expectedBytes?: number };

/**
 * Reads a request body as a stream, stopping as soon as it passes `maxBytes` (a declared
 * Content-Length over the limit stops it before the first byte) or when `timeoutMs` runs out, so
 * that neither a large nor a slow sender holds memory or a connection for long. The caller answers
 * 413 or 408 and closes the connection; the unread rest is discarded.
 *
 * @example
 * const read = await readBodyWithin(request, { maxBytes: 1 << 20, timeoutMs: 10_000 });
 * if (!read.ok) return read.reason === "too_large" ? tooLarge() : tooSlow();
 */
export async function readBodyWithin(request: Request, limits: BodyLimits): Promise<BodyReadResult> {
  const declared = request.headers.get("content-length");
  const declaredBytes = declared !== null && /^\d+$/.test(declared) ? Number(declared) : undefined;
  if (declaredBytes !== undefined && declaredBytes > limits.maxBytes)
    return { ok: false, reason: "too_large", declared: true };
  if (!request.body) return { ok: true, body: new Uint8Array(0), heldBytes: 0 };
  const budget = limits.budget;
  // With a Content-Length within the limit the runtime reads exactly that many bytes: its native
  // arrayBuffer() skips the JS stream machinery, which cost about 20 µs of CPU per call under load.
  // It may hold the declared size from the start, so that is what the budget is charged.
  if (declaredBytes !== undefined) {
    if (budget && !budget.reserve(declaredBytes)) return { ok: false, reason: "overloaded" };
    const read = await readDeclared(request, declaredBytes, limits.timeoutMs);
    if (!read.ok) budget?.release(declaredBytes);
    return read.ok ? { ...read, heldBytes: budget ? declaredBytes : 0 } : read;
  }

  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let received = 0;
  let held = 0;
  const giveBack = () => {
    budget?.release(held);
    held = 0;
  };
  const deadline = startDeadline(limits.timeoutMs);
  try {
    for (;;) {
      const next = await Promise.race([reader.read(), deadline.expired]);
      if (next === "timeout") {
        void reader.cancel().catch(() => {});
        giveBack();
        return { ok: false, reason: "timeout", receivedBytes: received };
      }
      if (next.done) break;
      received += next.value.byteLength;
      if (received > limits.maxBytes) {
        void reader.cancel().catch(() => {});
        giveBack();
        return { ok: false, reason: "too_large", declared: false };
      }
      if (budget) {
        if (!budget.reserve(next.value.byteLength)) {
          void reader.cancel().catch(() => {});
          giveBack();
          return { ok: false, reason: "overloaded" };
        }
        held += next.value.byteLength;
      }
      chunks.push(next.value);
    }
  } finally {
    deadline.clear();
  }
  if (chunks.length === 1) return { ok: true, body: chunks[0]!, heldBytes: held };
  const body = new Uint8Array(received);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return { ok: true, body, heldBytes: held };
}

/** Reads a body of known length whole, within the deadline. */
async function readDeclared(
  request: Request,
  expectedBytes: number,
  timeoutMs: number,
): Promise<{ ok: true; body: Uint8Array } | { ok: false; reason: "timeout"; expectedBytes: number }> {
  const deadline = startDeadline(timeoutMs);
  const reading = request.arrayBuffer();
  try {
    const read = await Promise.race([reading, deadline.expired]);
    if (read === "timeout") {
      // The read fails once the connection closes; nobody waits for it any more.
      reading.catch(() => {});
      return { ok: false, reason: "timeout", expectedBytes };
    }
    return { ok: true, body: new Uint8Array(read) };
  } finally {
    deadline.clear();
  }
}
