import { z } from "zod";
import { InvalidConfigValue } from "../../kit/config-errors.ts";
import { basicAuth } from "./basic.ts";
import { oauth2ClientCredentials } from "./oauth2-client-credentials.ts";
import type { AuthContext, AuthDefinition, Authenticator } from "./types.ts";

/**
 * Every auth scheme of http and soap targets, in one place. Adding a scheme: write its module
 * (schema + create) in this folder and list it here; the config schema, validation and
 * docs/configuration.md pick it up from this list.
 */
export const authDefinitions = [basicAuth, oauth2ClientCredentials] as const satisfies readonly AuthDefinition[];

export const authSchema = z
  .discriminatedUnion(
    "type",
    // cast: zod wants a non-empty tuple; the list above is a literal with at least one entry.
    authDefinitions.map((definition) => definition.schema) as unknown as [
      (typeof authDefinitions)[number]["schema"],
      ...(typeof authDefinitions)[number]["schema"][],
    ],
  )
  .describe("how the target is authenticated; `type` chooses the scheme, and each has its own keys");

export type AuthConfig = z.output<typeof authSchema>;

/**
 * Builds the authenticator a target's `auth` describes. Problems throw `InvalidConfigValue` with a
 * path that starts at `auth`.
 *
 * @example
 * const auth = createAuthenticator({ type: "basic", username: "gw", password: "pw" }, context);
 */
export function createAuthenticator(config: AuthConfig, context: AuthContext): Authenticator {
  const definition = authDefinitions.find((candidate) => candidate.type === config.type);
  if (!definition) throw new Error(`no auth scheme "${config.type}" is registered`);
  try {
    // The discriminated union guarantees the config matches the definition found by its type.
    return (definition as AuthDefinition).create(config, context);
  } catch (error) {
    if (error instanceof InvalidConfigValue) throw new InvalidConfigValue(error.message, ["auth", ...error.path]);
    throw error;
  }
}
