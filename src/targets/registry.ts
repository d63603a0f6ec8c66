import { z } from "zod";
import { httpTarget } from "./http.ts";
import { soapTarget } from "./soap/soap-target.ts";
import type { Target, TargetContext, TargetDefinition } from "./types.ts";

/**
 * Every target type, in one place. Adding a type: write its module (schema + create) beside
 * http.ts, or in a folder of its own as soap/ is, and list it here; the config schema, validation
 * and docs pick it up from this list.
 */
export const targetDefinitions = [httpTarget, soapTarget] as const satisfies readonly TargetDefinition[];

export const targetSchema = z.discriminatedUnion(
  "type",
  // cast: zod wants a non-empty tuple; the list above is a literal with at least one entry.
  targetDefinitions.map((definition) => definition.schema) as unknown as [
    (typeof targetDefinitions)[number]["schema"],
    ...(typeof targetDefinitions)[number]["schema"][],
  ],
);

export type TargetConfig = z.output<typeof targetSchema>;

/** Builds the target a route's config describes. */
export function createTarget(config: TargetConfig, context: TargetContext): Target {
  const definition = targetDefinitions.find((candidate) => candidate.type === config.type);
  if (!definition) throw new Error(`no target type "${config.type}" is registered`);
  // The discriminated union guarantees the config matches the definition found by its type.
  return (definition as TargetDefinition).create(config, context);
}
