import { InvalidConfigValue } from "../kit/config-errors.ts";
import { readPemFile } from "../kit/pem-file.ts";
import type { ServerTls } from "../runtime/serve.ts";
import type { ServerConfig } from "./schema.ts";

/**
 * Reads `server.tls` at load: the certificate chain and its private key, checked to belong together
 * so that a mixed-up pair is refused by `validate` instead of failing every handshake.
 * Paths in thrown errors are relative to `server.tls`.
 *
 * @example
 * const tls = loadServerTls({ cert_file: "./tls/cert.pem", key_file: "./tls/key.pem" }, configDir);
 * await serve({ ..., tls });
 */
export function loadServerTls(config: NonNullable<ServerConfig["tls"]>, configDir: string): ServerTls {
  const cert = readPemFile(config.cert_file, configDir, "certificate", ["cert_file"]);
  const key = readPemFile(config.key_file, configDir, "private key", ["key_file"]);
  if (!cert.certificate!.checkPrivateKey(key.key!)) {
    throw new InvalidConfigValue(`is not the private key of the certificate in ${config.cert_file}`, ["key_file"]);
  }
  return { cert: cert.text, key: key.text };
}
