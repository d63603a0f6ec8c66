import { z } from "zod";
import { InvalidConfigValue } from "../kit/config-errors.ts";
import { readPemFile } from "../kit/pem-file.ts";
import { envBoolean } from "../kit/units.ts";

/**
 * TLS towards a legacy system: a private CA, a client certificate for mTLS, and (for test rigs only)
 * switching certificate checks off. Shared by every target type that opens connections.
 */
export const targetTlsSchema = z
  .strictObject({
    ca_file: z
      .string()
      .min(1)
      .optional()
      .describe(
        "PEM file of the CA(s) that signed the target's certificate, instead of the system's; relative to the config file's folder",
      ),
    cert_file: z.string().min(1).optional().describe("PEM client certificate for mutual TLS; needs key_file"),
    key_file: z.string().min(1).optional().describe("PEM private key of cert_file"),
    reject_unauthorized: envBoolean(z.boolean())
      .prefault(true)
      .describe(
        "check the target's certificate; false is logged as a warning at start and is meant for test rigs only",
      ),
  })
  .refine((tls) => Boolean(tls.cert_file) === Boolean(tls.key_file), {
    message: "cert_file and key_file go together",
    path: ["key_file"],
  })
  .describe("TLS options for https targets.");

export type TargetTlsConfig = z.output<typeof targetTlsSchema>;

/** The TLS material of a target, read at load; handed to the target's HTTP client (src/runtime/http-client.ts). */
export interface TargetTlsOptions {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly rejectUnauthorized: boolean;
}

/**
 * Reads the PEM files of a target's `tls` (relative to the config file's folder) and checks they hold
 * a certificate or key, and that the client certificate and key belong together. Errors carry the
 * key path inside the target (`tls.ca_file`), which the compile step prefixes with the route's.
 *
 * @example
 * const tls = loadTargetTls({ ca_file: "./certs/erp-ca.pem", reject_unauthorized: true }, configDir);
 * createTargetClient({ connections: 32, timeoutMs: 10_000, tls });
 */
export function loadTargetTls(config: TargetTlsConfig, configDir: string): TargetTlsOptions {
  const ca =
    config.ca_file !== undefined
      ? readPemFile(config.ca_file, configDir, "certificate", ["tls", "ca_file"]).text
      : undefined;
  let client: { cert: string; key: string } | undefined;
  if (config.cert_file !== undefined && config.key_file !== undefined) {
    const cert = readPemFile(config.cert_file, configDir, "certificate", ["tls", "cert_file"]);
    const key = readPemFile(config.key_file, configDir, "private key", ["tls", "key_file"]);
    if (!cert.certificate!.checkPrivateKey(key.key!)) {
      throw new InvalidConfigValue(`is not the private key of the certificate in ${config.cert_file}`, [
        "tls",
        "key_file",
      ]);
    }
    client = { cert: cert.text, key: key.text };
  }
  return { ...(ca !== undefined ? { ca } : {}), ...client, rejectUnauthorized: config.reject_unauthorized };
}
