import { z } from "zod";

export const logSchema = z
  .strictObject({
    level: z.enum(["debug", "info", "warn", "error"]).default("info").describe("lowest level written"),
  })
  .describe("Logs: JSON lines on stdout, secrets redacted.");
