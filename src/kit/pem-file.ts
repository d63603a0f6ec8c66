import { createPrivateKey, type KeyObject, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { InvalidConfigValue } from "./config-errors.ts";

/** What a PEM file named in the config must hold. */
export type PemKind = "certificate" | "private key";

/**
 * Reads a PEM file named in the config (relative to the config file's folder) and checks at load that
 * it holds what it should, so that a wrong or missing file is a config problem reported by `validate`
 * with its key path, not a failed handshake at the first call.
 *
 * @example
 * const ca = readPemFile("./certs/ca.pem", configDir, "certificate", ["tls", "ca_file"]).text;
 */
export function readPemFile(
  file: string,
  configDir: string,
  kind: PemKind,
  path: readonly PropertyKey[],
): { text: string; certificate?: X509Certificate; key?: KeyObject } {
  let text: string;
  try {
    text = readFileSync(resolve(configDir, file), "utf8");
  } catch (error) {
    const code = (error as { code?: string }).code;
    throw new InvalidConfigValue(
      code === "ENOENT" ? `file not found: ${file}` : `cannot read ${file} (${code ?? "error"})`,
      path,
    );
  }
  try {
    // X509Certificate reads the first certificate of a chain; the runtime sends the whole chain.
    if (kind === "certificate") return { text, certificate: new X509Certificate(text) };
    return { text, key: createPrivateKey(text) };
  } catch {
    // The crypto library's message says nothing an operator can act on; the file name and kind do.
    throw new InvalidConfigValue(`${file} does not hold a PEM ${kind}`, path);
  }
}
