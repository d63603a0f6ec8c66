import type { AuthDescription } from "./auth/types.ts";

/**
 * Safe facts about a target, for `routes`, `explain` and the admin API: where it goes and how it is
 * authenticated, limited and proxied. Nothing in it is a secret: passwords, client secrets and
 * tokens are `***`, credentials in URLs are hidden ({@link redactUrl}).
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

/** Query parameters whose values are credentials by their name. */
const SECRET_PARAMETER = /(token|secret|password|passwd|apikey|api_key|key|signature|sig|auth)/i;

/**
 * A URL with its credentials hidden: the password of `user:password@` and the values of query
 * parameters named like secrets become `***`. Works on URLs with `{{ }}` placeholders too, which
 * `new URL` may not parse.
 *
 * @example
 * redactUrl("https://svc:pa55@erp/api?api_key=abc&page=2"); // "https://svc:***@erp/api?api_key=***&page=2"
 */
export function redactUrl(url: string): string {
  return url
    .replace(/^([a-z][a-z0-9+.-]*:\/\/)([^/@?#]*)@/i, (_all, scheme: string, userInfo: string) => {
      const colon = userInfo.indexOf(":");
      return `${scheme}${colon === -1 ? "***" : `${userInfo.slice(0, colon)}:***`}@`;
    })
    .replace(/([?&])([^=&#]+)=([^&#]*)/g, (all, separator: string, name: string) =>
      SECRET_PARAMETER.test(name) ? `${separator}${name}=***` : all,
    );
}
