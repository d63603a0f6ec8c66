import { z } from "zod";

const DURATION_UNITS_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const SIZE_UNITS_BYTES = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 } as const;

/** Parses `500ms`, `10s`, `5m`, `2h`, `30d` into milliseconds; `undefined` when it is not a duration. */
export function parseDuration(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/i.exec(text);
  if (!match) return undefined;
  return Math.round(Number(match[1]) * DURATION_UNITS_MS[match[2]!.toLowerCase() as keyof typeof DURATION_UNITS_MS]);
}

/** Parses `512kb`, `1mb`, `100b` (binary multiples) into bytes; `undefined` when it is not a size. */
export function parseSize(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)\s*$/i.exec(text);
  if (!match) return undefined;
  return Math.floor(Number(match[1]) * SIZE_UNITS_BYTES[match[2]!.toLowerCase() as keyof typeof SIZE_UNITS_BYTES]);
}

/** Formats milliseconds the way an operator wrote them (`10s`, `1500ms`), for messages. */
export function formatDuration(ms: number): string {
  if (ms % 60_000 === 0 && ms >= 60_000) return `${ms / 60_000}m`;
  if (ms % 1000 === 0 && ms >= 1000) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** A config duration: a string such as `10s`, read as milliseconds. */
export const duration = z
  .string()
  .describe("a duration: `500ms`, `10s`, `5m`, `1h`")
  .transform((text, ctx) => {
    const ms = parseDuration(text);
    if (ms === undefined) {
      ctx.addIssue({ code: "custom", message: `must be a duration such as 500ms, 10s or 5m (got "${text}")` });
      return z.NEVER;
    }
    return ms;
  });

/** A config size: a string such as `1mb`, read as bytes. */
export const size = z
  .string()
  .describe("a size: `512kb`, `1mb`")
  .transform((text, ctx) => {
    const bytes = parseSize(text);
    if (bytes === undefined || bytes <= 0) {
      ctx.addIssue({ code: "custom", message: `must be a size such as 512kb or 1mb (got "${text}")` });
      return z.NEVER;
    }
    return bytes;
  });
