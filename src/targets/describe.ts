import type { AuthDescription } from "./auth/types.ts";

/**
 * Safe facts about a target, for `routes`, `explain` and the admin API: where it goes and how it is
 * authenticated, limited and proxied. Nothing in it is a secret: passwords, client secrets and
 * tokens are `***`, credentials in URLs are hidden (kit/urls.ts `redactUrl`).
 */
export interface TargetDescription {
  readonly type: string;
  readonly method: string;
  /** The target's URL with its placeholders as written and its credentials hidden. */
  readonly url: string;
  /** What the target type adds (`operation` and `soap_action` for soap). */
  readonly details?: Readonly<Record<string, string>>;
  readonly auth?: AuthDescription;
  readonly csrf?: { readonly fetch_url: string; readonly header: string };
  readonly rate_limit?: { readonly requests: number; readonly per: string; readonly max_wait: string };
  readonly proxy?: {
    readonly url: string;
    readonly username?: string;
    readonly password?: "***";
    readonly no_proxy: readonly string[];
  };
}
