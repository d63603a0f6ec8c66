/**
 * `server.allowed_ips`: which client addresses may call the public listener. Parsed by hand rather
 * than with `node:net`'s BlockList, whose IPv4-mapped IPv6 handling differs between runtimes.
 */

/** One parsed CIDR: the network's bytes (4 for IPv4, 16 for IPv6) and how many leading bits count. */
interface Cidr {
  readonly bytes: Uint8Array;
  readonly prefix: number;
}

/** Tells whether a client address may call; built once from the config. */
export type AddressFilter = (address: string) => boolean;

/** A CIDR (or single address) that cannot be read; its message is shown by `validate`. */
export class InvalidCidrError extends Error {
  override name = "InvalidCidrError";
}

/**
 * Parses `10.0.0.0/8`, `2001:db8::/32`, or a single address (`192.0.2.7` = /32, `::1` = /128).
 * An IPv4-mapped IPv6 CIDR (`::ffff:10.0.0.0/104`) becomes the IPv4 CIDR it stands for.
 *
 * @example
 * parseCidr("10.0.0.0/8"); // { bytes: [10, 0, 0, 0], prefix: 8 }
 * parseCidr("10.0.0.0/33"); // throws InvalidCidrError
 */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf("/");
  const addressText = slash === -1 ? text : text.slice(0, slash);
  const bytes = parseAddress(addressText);
  if (!bytes) throw new InvalidCidrError(`"${text}" is not an IPv4 or IPv6 address or CIDR`);
  const maxPrefix = bytes.length * 8;
  let prefix = maxPrefix;
  if (slash !== -1) {
    const prefixText = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > maxPrefix) {
      throw new InvalidCidrError(`"${text}" has a bad prefix length; it must be 0 to ${maxPrefix}`);
    }
    prefix = Number(prefixText);
  }
  const mapped = ipv4FromMapped(bytes);
  if (mapped && prefix >= 96) return { bytes: mapped, prefix: prefix - 96 };
  return { bytes, prefix };
}

/**
 * Builds the filter for `server.allowed_ips`; an empty list allows every address. A client address
 * that cannot be read (a Unix socket, a runtime that does not say) is refused when a list is set.
 *
 * @example
 * const allowed = compileAddressFilter(["10.0.0.0/8", "::1"]);
 * allowed("10.1.2.3"); // true
 * allowed("::ffff:10.1.2.3"); // true: an IPv4 client on a dual-stack socket
 * allowed("192.0.2.1"); // false
 */
export function compileAddressFilter(cidrs: readonly string[]): AddressFilter {
  if (cidrs.length === 0) return () => true;
  const networks = cidrs.map(parseCidr);
  return (address) => {
    const parsed = parseAddress(address);
    if (!parsed) return false;
    const bytes = ipv4FromMapped(parsed) ?? parsed;
    return networks.some((network) => network.bytes.length === bytes.length && prefixMatches(network, bytes));
  };
}

function prefixMatches(network: Cidr, bytes: Uint8Array): boolean {
  const fullBytes = Math.floor(network.prefix / 8);
  for (let i = 0; i < fullBytes; i++) if (network.bytes[i] !== bytes[i]) return false;
  const restBits = network.prefix % 8;
  if (restBits === 0) return true;
  const mask = (0xff << (8 - restBits)) & 0xff;
  return (network.bytes[fullBytes]! & mask) === (bytes[fullBytes]! & mask);
}

/** `::ffff:a.b.c.d` -> the 4 IPv4 bytes; anything else -> undefined. */
function ipv4FromMapped(bytes: Uint8Array): Uint8Array | undefined {
  if (bytes.length !== 16) return undefined;
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return undefined;
  if (bytes[10] !== 0xff || bytes[11] !== 0xff) return undefined;
  return bytes.slice(12);
}

/** 4 bytes for IPv4, 16 for IPv6 (a `%zone` suffix is ignored), undefined when not an address. */
function parseAddress(text: string): Uint8Array | undefined {
  if (text.includes(":")) return parseIpv6(text.replace(/%[\w.-]+$/, ""));
  return parseIpv4(text);
}

function parseIpv4(text: string): Uint8Array | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const bytes = new Uint8Array(4);
  for (const [index, part] of parts.entries()) {
    // No leading zeros: `010` is octal to some parsers and decimal to others.
    if (!/^(0|[1-9]\d{0,2})$/.test(part) || Number(part) > 255) return undefined;
    bytes[index] = Number(part);
  }
  return bytes;
}

function parseIpv6(text: string): Uint8Array | undefined {
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groupsOf = (half: string): number[] | undefined => {
    if (half === "") return [];
    const groups: number[] = [];
    const parts = half.split(":");
    for (const [index, part] of parts.entries()) {
      if (index === parts.length - 1 && part.includes(".")) {
        const v4 = parseIpv4(part);
        if (!v4) return undefined;
        groups.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(part)) {
        groups.push(parseInt(part, 16));
      } else {
        return undefined;
      }
    }
    return groups;
  };
  const head = groupsOf(halves[0]!);
  const tail = halves.length === 2 ? groupsOf(halves[1]!) : [];
  if (!head || !tail) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const groups = [...head, ...new Array<number>(missing).fill(0), ...tail];
  const bytes = new Uint8Array(16);
  groups.forEach((group, index) => {
    bytes[index * 2] = group >> 8;
    bytes[index * 2 + 1] = group & 0xff;
  });
  return bytes;
}
