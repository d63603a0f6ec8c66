import type { NetworkFailureKind } from "./network-errors.ts";

/**
 * Codes Bun's fetch gives that Node's networking does not: older Bun versions named failures in their
 * own words before they took Node's codes, and some failures have no Node equivalent.
 */
export const BUN_NETWORK_ERROR_CODES: Readonly<Record<string, NetworkFailureKind>> = {
  ConnectionRefused: "refused",
  ConnectionClosed: "closed",
  // The resolver itself failed.
  DNSException: "not_found",
  // The peer broke off the handshake (it wants a client certificate) or speaks no TLS.
  EPROTO: "tls",
  Malformed_HTTP_Response: "invalid_answer",
};
