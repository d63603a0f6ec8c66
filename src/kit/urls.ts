import { z } from "zod";

/** A config value that must be an absolute http(s) URL. */
export const absoluteUrl = z.string().refine((value) => {
  try {
    return ["http:", "https:"].includes(new URL(value).protocol);
  } catch {
    return false;
  }
}, "must be an absolute http(s) URL");

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
