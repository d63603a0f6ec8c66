import { z } from "zod";
import { durationAtLeast } from "../kit/units.ts";
import { absoluteUrl } from "../kit/urls.ts";

/**
 * Where epilot publishes its Ed25519 public key (`{"public_key": "<PEM>"}`). epilot names two URLs:
 * its SDK reads the first, its custom-action page names the second. Both are trusted by default (a
 * signature valid under either passes), so whichever epilot keeps serving, calls verify.
 */
export const EPILOT_PUBLIC_KEY_URLS = [
  "https://cdn.app.sls.epilot.io/v1/.well-known/public-key",
  "https://app.sls.epilot.io/v1/public/.well-known/public-key",
] as const;

/** The URL epilot's SDK reads its key from. */
export const EPILOT_PUBLIC_KEY_URL = EPILOT_PUBLIC_KEY_URLS[0];

/** `public_key_url: epilot` stands for {@link EPILOT_PUBLIC_KEY_URLS}. */
export const EPILOT_KEYS = "epilot";

const keyUrl = z.string().refine((url) => url === EPILOT_KEYS || absoluteUrl.safeParse(url).success, {
  error: (issue) => `must be an absolute http(s) URL or \`epilot\` (got ${JSON.stringify(issue.input)})`,
});

/**
 * The URLs a config's `public_key_url` names, `epilot` expanded; epilot's when no key at all is
 * configured (no URL, no public_key, no public_key_file, no secrets); none otherwise.
 *
 * @example
 * keyUrlsOf({ public_key_url: ["epilot"], secrets: [] }); // both of EPILOT_PUBLIC_KEY_URLS
 * keyUrlsOf({ secrets: ["whsec_..."] }); // []
 */
export function keyUrlsOf(
  verification: Pick<VerificationConfig, "public_key_url" | "public_key" | "public_key_file" | "secrets">,
): string[] {
  const named = verification.public_key_url;
  if (named === undefined) {
    const other = verification.public_key ?? verification.public_key_file ?? verification.secrets[0];
    return other === undefined ? [...EPILOT_PUBLIC_KEY_URLS] : [];
  }
  return [...new Set(named.flatMap((url) => (url === EPILOT_KEYS ? EPILOT_PUBLIC_KEY_URLS : [url])))];
}

export const verificationSchema = z
  .strictObject({
    public_key_url: z
      .union([keyUrl.transform((url) => [url]), z.array(keyUrl).min(1, "must not be empty")], {
        error: "must be an absolute http(s) URL, `epilot`, or a list of them",
      })
      .optional()
      .describe(
        "where Ed25519 public keys are fetched (JSON `{public_key: PEM}` or `{publicKey: PEM}`, PEM or whpk_): a URL or a list, `epilot` for epilot's two published URLs; a signature valid under any key passes, and each URL is refreshed and re-fetched on rotation. Default: epilot's, but only when no other key (public_key, public_key_file, secrets) is set; with one, add `epilot` here to trust epilot's key too",
      ),
    public_key_file: z
      .string()
      .min(1)
      .optional()
      .describe(
        "file holding a public key: PEM (SPKI), whpk_ or epilot's JSON document; relative to the config file's folder; trusted beside every other key configured",
      ),
    public_key: z
      .string()
      .min(1)
      .optional()
      .describe("a public key inline: PEM (SPKI) or whpk_; trusted beside every other key configured"),
    secrets: z
      .array(z.string().min(1))
      .default([])
      .describe("Standard Webhooks v1 (HMAC-SHA256) secrets, `whsec_<base64>` of at least 16 bytes; any one may match"),
    tolerance: durationAtLeast(1_000)
      .prefault("5m")
      .describe("how far webhook-timestamp may be from now, in either direction"),
    key_refresh_interval: durationAtLeast(10_000)
      .prefault("1h")
      .describe("how often a fetched key is fetched again (a failing signature also triggers a rate-limited fetch)"),
  })
  .describe(
    "How every call is verified (Standard Webhooks). Every key configured is trusted; a webhook-signature header may hold up to 16 signatures. Verification cannot be turned off.",
  );

export type VerificationConfig = z.output<typeof verificationSchema>;
