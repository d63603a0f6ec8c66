import type { NetworkFailureKind } from "./network-errors.ts";

/** Codes undici (the HTTP client under Deno) gives for its own failures. */
export const UNDICI_NETWORK_ERROR_CODES: Readonly<Record<string, NetworkFailureKind>> = {
  UND_ERR_SOCKET: "closed",
  UND_ERR_CLOSED: "closed",
  UND_ERR_CONNECT_TIMEOUT: "timeout",
  UND_ERR_HEADERS_TIMEOUT: "timeout",
  UND_ERR_BODY_TIMEOUT: "timeout",
};

/** undici's HTTPParserError often carries no code, only its name; its codes start with HPE_. */
export const UNDICI_PARSER_ERROR_NAME = "HTTPParserError";
export const UNDICI_PARSER_CODE_PREFIX = "HPE_";
