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

/**
 * A base URL that a token is sent to: https, or http to a loopback host (127.0.0.0/8, ::1, localhost),
 * which is for test rigs and a relay on the same box. No query, fragment or credentials: the API's
 * paths are appended to it.
 */
export const tokenBaseUrl = z.string().superRefine((value, ctx) => {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    ctx.addIssue({ code: "custom", message: "must be an absolute https URL" });
    return;
  }
  const loopback = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i.test(url.hostname);
  if (url.protocol !== "https:" && !(url.protocol === "http:" && loopback)) {
    ctx.addIssue({
      code: "custom",
      message: "must be an https URL (http only for loopback hosts): a token goes with every call",
    });
    return;
  }
  if (url.username || url.password || url.search || url.hash) {
    ctx.addIssue({ code: "custom", message: "must be the API's base URL, without query, fragment or credentials" });
  }
});
