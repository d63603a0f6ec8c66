import { z } from "zod";

/** A config value that must be an absolute http(s) URL. */
export const absoluteUrl = z.string().refine((value) => {
  try {
    return ["http:", "https:"].includes(new URL(value).protocol);
  } catch {
    return false;
  }
}, "must be an absolute http(s) URL");

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
