import { z } from "zod";
import { isRecord } from "../kit/records.ts";
import { durationAtLeast } from "../kit/units.ts";
import { absoluteUrl } from "../kit/urls.ts";

/** epilot's public key document (`{"public_key": "<PEM>"}`), the default source of the Ed25519 key. */
export const EPILOT_PUBLIC_KEY_URL = "https://cdn.app.sls.epilot.io/v1/.well-known/public-key";

export const verificationSchema = z
  .strictObject({
    public_key_url: absoluteUrl
      .default(EPILOT_PUBLIC_KEY_URL)
      .describe(
        "where epilot's Ed25519 public key is fetched (JSON `{public_key: PEM}`, PEM or whpk_); used unless public_key or public_key_file is set",
      ),
    public_key_file: z
      .string()
      .min(1)
      .optional()
      .describe(
        "file holding the public key: PEM (SPKI), whpk_ or epilot's JSON document; relative to the config file's folder; not together with public_key",
      ),
    public_key: z
      .string()
      .min(1)
      .optional()
      .describe("the public key inline: PEM (SPKI) or whpk_; not together with public_key_file"),
    secrets: z
      .array(z.string().min(1))
      .default([])
      .describe("Standard Webhooks v1 (HMAC-SHA256) secrets, `whsec_<base64>`; any one may match"),
    tolerance: durationAtLeast(1_000)
      .prefault("5m")
      .describe("how far webhook-timestamp may be from now, in either direction"),
    key_refresh_interval: durationAtLeast(10_000)
      .prefault("1h")
      .describe("how often a fetched key is fetched again (a failing signature also triggers a rate-limited fetch)"),
  })
  .refine((v) => !(v.public_key && v.public_key_file), {
    message: "set public_key or public_key_file, not both",
    path: ["public_key_file"],
    // Reported alongside other problems in the same section, not only once they are fixed.
    when: ({ value }) => isRecord(value),
  })
  .describe("How every call is verified (Standard Webhooks). Verification cannot be turned off.");

export type VerificationConfig = z.output<typeof verificationSchema>;
