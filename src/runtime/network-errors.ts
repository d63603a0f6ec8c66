import { BUN_NETWORK_ERROR_CODES } from "./network-errors-bun.ts";
import {
  UNDICI_NETWORK_ERROR_CODES,
  UNDICI_PARSER_CODE_PREFIX,
  UNDICI_PARSER_ERROR_NAME,
} from "./network-errors-undici.ts";

/** What kind of failure a network error was, whatever runtime client threw it. */
export type NetworkFailureKind =
  | "refused"
  | "closed"
  | "not_found"
  | "unreachable"
  | "timeout"
  | "tls"
  | "invalid_answer"
  | "proxy_auth"
  | "proxy";

/** Node's and the operating system's codes, which every runtime's clients give. */
const SYSTEM_NETWORK_ERROR_CODES: Readonly<Record<string, NetworkFailureKind>> = {
  ECONNREFUSED: "refused",
  ECONNRESET: "closed",
  EPIPE: "closed",
  ENOTFOUND: "not_found",
  EAI_AGAIN: "not_found",
  EHOSTUNREACH: "unreachable",
  ENETUNREACH: "unreachable",
  ETIMEDOUT: "timeout",
  // OpenSSL verify results without CERT/TLS/SSL in their name (Bun's fetch and node:tls alike).
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "tls",
  HOSTNAME_MISMATCH: "tls",
  // http-client.ts's ProxyRefusedError, whichever runtime client met the refusal.
  PROXY_AUTH_REQUIRED: "proxy_auth",
  PROXY_REFUSED: "proxy",
};

const REASONS: Readonly<Record<NetworkFailureKind, string>> = {
  refused: "connection refused",
  closed: "connection closed by the target",
  not_found: "host not found",
  unreachable: "host unreachable",
  timeout: "timed out",
  tls: "TLS handshake failed",
  invalid_answer: "invalid HTTP answer",
  proxy_auth: "the proxy refused the credentials (HTTP 407)",
  proxy: "the proxy refused the connection",
};

/**
 * Names a network failure without naming the host, for the answer to epilot and the dead-letter
 * reason: `connection refused`, `host not found`, ... The code tables of each runtime's client live
 * beside this file (network-errors-bun.ts, network-errors-undici.ts).
 *
 * @example
 * describeNetworkError(new TypeError("fetch failed", { cause: { code: "ECONNREFUSED" } }));
 * // { reason: "connection refused", code: "ECONNREFUSED", isTimeout: false }
 */
export function describeNetworkError(error: unknown): { reason: string; code?: string; isTimeout: boolean } {
  const code = findErrorCode(error);
  let kind: NetworkFailureKind | undefined =
    code === undefined
      ? undefined
      : (SYSTEM_NETWORK_ERROR_CODES[code] ?? BUN_NETWORK_ERROR_CODES[code] ?? UNDICI_NETWORK_ERROR_CODES[code]);
  if (!kind && code && /CERT|TLS|SSL/i.test(code)) kind = "tls";
  if (!kind && (code?.startsWith(UNDICI_PARSER_CODE_PREFIX) || hasErrorName(error, UNDICI_PARSER_ERROR_NAME))) {
    kind = "invalid_answer";
  }
  if (!kind) return { reason: "request failed", ...(code ? { code } : {}), isTimeout: false };
  return { reason: REASONS[kind], ...(code ? { code } : {}), isTimeout: kind === "timeout" };
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
