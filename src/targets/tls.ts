import { z } from "zod";
import { envBoolean } from "../config/units.ts";

/**
 * TLS towards a legacy system: a private CA, a client certificate for mTLS, and (for test rigs only)
 * switching certificate checks off. Shared by every target type that opens connections.
 */
export const targetTlsSchema = z
  .strictObject({
    ca_file: z.string().min(1).optional().describe("PEM file of the CA(s) that signed the target's certificate, instead of the system's; relative to the config file's folder"),
    cert_file: z.string().min(1).optional().describe("PEM client certificate for mutual TLS; needs key_file"),
    key_file: z.string().min(1).optional().describe("PEM private key of cert_file"),
    reject_unauthorized: envBoolean(z.boolean())
      .prefault(true)
      .describe("check the target's certificate; false is logged as a warning at start and is meant for test rigs only"),
  })
  .refine((tls) => Boolean(tls.cert_file) === Boolean(tls.key_file), { message: "cert_file and key_file go together", path: ["key_file"] })
  .describe("TLS options for https targets (undici connect options).");

export type TargetTlsConfig = z.output<typeof targetTlsSchema>;
