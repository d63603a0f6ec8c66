import { DEFAULT_MAX_JSON_DEPTH, exceedsJsonDepth } from "../kit/json-depth.ts";

/** Thrown by the HTTP client when an answer passes the target's `max_response_size`. */
export { ResponseTooLargeError } from "../runtime/http-client.ts";

/**
 * `body` for `response.*` expressions: parsed when the answer says (or looks like) JSON, text
 * otherwise. An answer nested deeper than {@link DEFAULT_MAX_JSON_DEPTH} levels stays text, like
 * any answer that does not parse: walking it would stall the gateway (see payload/json-depth.ts).
 */
export function parseResponseBody(text: string, contentType: string | undefined): unknown {
  const looksJson = contentType?.includes("json") || /^\s*[{[]/.test(text);
  if (looksJson && text.trim() !== "" && !exceedsJsonDepth(text, DEFAULT_MAX_JSON_DEPTH)) {
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
    case "ConnectionRefused": // Bun's fetch before it took Node's codes
      return { reason: "connection refused", code, isTimeout: false };
    case "ECONNRESET":
    case "EPIPE":
    case "UND_ERR_SOCKET":
    case "UND_ERR_CLOSED":
    case "ConnectionClosed": // Bun's fetch before it took Node's codes
      return { reason: "connection closed by the target", code, isTimeout: false };
    case "ENOTFOUND":
    case "EAI_AGAIN":
    case "DNSException": // Bun, when the resolver itself fails
      return { reason: "host not found", code, isTimeout: false };
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return { reason: "host unreachable", code, isTimeout: false };
    case "UND_ERR_CONNECT_TIMEOUT":
    case "ETIMEDOUT":
    case "UND_ERR_HEADERS_TIMEOUT":
    case "UND_ERR_BODY_TIMEOUT":
      return { reason: "timed out", code, isTimeout: true };
    // Bun's fetch: the peer broke off the handshake (e.g. it wants a client certificate) or speaks no TLS.
    case "EPROTO":
    // OpenSSL verify results without CERT/TLS/SSL in their name (Bun's fetch and node:tls alike).
    case "UNABLE_TO_VERIFY_LEAF_SIGNATURE":
    case "HOSTNAME_MISMATCH":
      return { reason: "TLS handshake failed", code, isTimeout: false };
    case "Malformed_HTTP_Response": // Bun's fetch
      return { reason: "invalid HTTP answer", code, isTimeout: false };
    default:
      if (code && /CERT|TLS|SSL/i.test(code)) return { reason: "TLS handshake failed", code, isTimeout: false };
      // undici's HTTPParserError often carries no code, only its name.
      if (code?.startsWith("HPE_") || hasErrorName(error, "HTTPParserError")) {
        return { reason: "invalid HTTP answer", ...(code ? { code } : {}), isTimeout: false };
      }
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

function hasErrorName(error: unknown, name: string): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current && typeof current === "object"; depth++) {
    if ((current as { name?: unknown }).name === name) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}
