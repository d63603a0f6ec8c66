import type { Dispatcher } from "undici/index.js";

/** The legacy system sent more than this target's `max_response_size`. */
export class ResponseTooLargeError extends Error {
  override name = "ResponseTooLargeError";
}

/**
 * Reads an undici response body up to `limit` bytes, so that a runaway legacy answer cannot fill
 * the gateway's memory. Stops reading (and drops the connection) as soon as the limit is passed.
 */
export async function readBodyBytes(body: Dispatcher.ResponseData["body"], limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    const buffer = chunk as Buffer;
    total += buffer.length;
    if (total > limit) {
      body.destroy();
      throw new ResponseTooLargeError(`answer is larger than ${limit} bytes`);
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}

/** {@link readBodyBytes}, decoded as UTF-8. */
export async function readBodyText(body: Dispatcher.ResponseData["body"], limit: number): Promise<string> {
  return (await readBodyBytes(body, limit)).toString("utf8");
}

/** undici's headers (string | string[]) flattened, lower-cased names as undici gives them. */
export function flattenHeaders(headers: Dispatcher.ResponseData["headers"]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    out[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  return out;
}

/** `body` for `response.*` expressions: parsed when the answer says (or looks like) JSON, text otherwise. */
export function parseResponseBody(text: string, contentType: string | undefined): unknown {
  const looksJson = contentType?.includes("json") || /^\s*[{[]/.test(text);
  if (looksJson && text.trim() !== "") {
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  return text;
}

/**
 * Names a network failure without naming the host, for the answer to epilot and the dead-letter
 * reason: `connection refused`, `host not found`, ...
 */
export function describeNetworkError(error: unknown): { reason: string; code?: string; isTimeout: boolean } {
  const code = findErrorCode(error);
  switch (code) {
    case "ECONNREFUSED":
      return { reason: "connection refused", code, isTimeout: false };
    case "ECONNRESET":
    case "EPIPE":
    case "UND_ERR_SOCKET":
    case "UND_ERR_CLOSED":
      return { reason: "connection closed by the target", code, isTimeout: false };
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return { reason: "host not found", code, isTimeout: false };
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return { reason: "host unreachable", code, isTimeout: false };
    case "UND_ERR_CONNECT_TIMEOUT":
    case "ETIMEDOUT":
    case "UND_ERR_HEADERS_TIMEOUT":
    case "UND_ERR_BODY_TIMEOUT":
      return { reason: "timed out", code, isTimeout: true };
    default:
      if (code && /CERT|TLS|SSL/i.test(code)) return { reason: "TLS handshake failed", code, isTimeout: false };
      return { reason: "request failed", ...(code ? { code } : {}), isTimeout: false };
  }
}

function findErrorCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current && typeof current === "object"; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string") return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}
