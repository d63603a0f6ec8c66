import { z } from "zod";

/** A config value holding a JSONata expression, compiled at load (src/transform/expression.ts). */
export const expression = (what: string) =>
  z.string().min(1, "must not be empty").describe(`JSONata expression: ${what}`);

/** A `strip` entry: a dot path, `*` for any key or index. */
export const stripPath = z
  .string()
  .regex(/^[^.]+(\.[^.]+)*$/, "must be a dot path such as data.app_options.api_key (`*` for any key or index)");
