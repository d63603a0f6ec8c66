import { type CallAnswer, failure } from "../delivery/answer.ts";
import { compileAddressFilter } from "./allowed-ips.ts";

/** The checks made on every call before its body is read (`server.allowed_ips`, header limits). */
export interface RequestGuardOptions {
  /** CIDRs; empty allows every address. Already checked by the config schema. */
  readonly allowedIps: readonly string[];
  readonly maxHeaderCount: number;
  /** Bytes of header names and values together. */
  readonly maxHeaderSize: number;
}

/** Returns the refusal for a call that may not go further, or undefined when it may. */
export type RequestGuard = (
  headers: Headers,
  remoteAddress: string | undefined,
) => (CallAnswer & { log: Record<string, unknown> }) | undefined;

/**
 * Builds the guard that runs before anything else: a client outside `allowed_ips` gets 403, too many
 * or too large headers get 431. The answers never echo the address or the headers back.
 *
 * @example
 * const guard = createRequestGuard({ allowedIps: ["10.0.0.0/8"], maxHeaderCount: 100, maxHeaderSize: 16384 });
 * guard(request.headers, "192.0.2.1")?.status; // 403
 */
export function createRequestGuard(options: RequestGuardOptions): RequestGuard {
  const isAllowed = compileAddressFilter(options.allowedIps);
  return (headers, remoteAddress) => {
    if (!isAllowed(remoteAddress ?? "")) {
      return {
        ...failure(403, "forbidden", "This address may not call actiongate"),
        log: { remote_address: remoteAddress ?? "unknown" },
      };
    }
    let count = 0;
    let size = 0;
    // The runtime joins a repeated field into one (`a, b`), so counting names would let one name
    // repeated a thousand times pass: each comma-separated item counts as a line of its own (a legit
    // list value such as `accept: a, b` counts a little high, far below the limit). The joined values
    // still count in full towards the size.
    headers.forEach((value, name) => {
      count += 1 + countOf(value, ", ");
      size += name.length + value.length;
    });
    if (count > options.maxHeaderCount) {
      return {
        ...failure(
          431,
          "headers_too_large",
          `The call has ${count} headers; at most ${options.maxHeaderCount} are accepted`,
        ),
        log: { header_count: count },
      };
    }
    if (size > options.maxHeaderSize) {
      return {
        ...failure(431, "headers_too_large", `The headers are larger than the limit of ${options.maxHeaderSize} bytes`),
        log: { header_bytes: size },
      };
    }
    return undefined;
  };
}

function countOf(text: string, separator: string): number {
  let count = 0;
  for (let at = text.indexOf(separator); at !== -1; at = text.indexOf(separator, at + separator.length)) count++;
  return count;
}
