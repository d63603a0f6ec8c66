import { z } from "zod";

/** A config value that must be an absolute http(s) URL. */
export const absoluteUrl = z.string().refine((value) => {
  try {
    return ["http:", "https:"].includes(new URL(value).protocol);
  } catch {
    return false;
  }
}, "must be an absolute http(s) URL");
