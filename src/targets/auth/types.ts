import type { z } from "zod";
import type { Logger } from "../../log/logger.ts";
import type { ProxySettings } from "../../runtime/proxy.ts";
import type { TargetOutcome } from "../types.ts";

/** What an auth scheme is given when its target is built. */
export interface AuthContext {
  /** Folder of the config file, against which relative paths (a token endpoint's CA file) resolve. */
  readonly configDir: string;
  readonly logger: Logger;
  readonly userAgent: string;
  /** The target's `timeout`: the deadline of a token fetch too. */
  readonly timeoutMs: number;
  /** The target's `proxy`: its token fetches go through it as well. */
  readonly proxy?: ProxySettings | undefined;
}

/** The credentials for one call, or the outcome of the call when they could not be had. */
export type AuthHeaders =
  | { readonly ok: true; readonly headers: Readonly<Record<string, string>> }
  | { readonly ok: false; readonly outcome: TargetOutcome };

/** Safe facts about a target's auth for `routes`, `explain` and the admin API: secrets are `***`. */
export type AuthDescription = Readonly<Record<string, string | readonly string[]>> & { readonly type: string };

/**
 * The credentials of one target, as a scheme makes them: headers for each call, fetched or computed.
 * Every header it returns is a secret: never logged, shown as `***` by `explain`.
 */
export interface Authenticator {
  /** Lower-case names of the headers it sets (a configured or forwarded header may not replace them). */
  readonly headerNames: readonly string[];
  /** The headers as `render()` shows them, without fetching anything (values are secret either way). */
  preview(): Readonly<Record<string, string>>;
  /** The headers for one call; may fetch a token (shared by concurrent calls) within `signal`. */
  headers(signal: AbortSignal): Promise<AuthHeaders>;
  /**
   * The target answered 401 to a call made with `used`: forget those credentials. True when one
   * retry with fresh ones may succeed (a token that expired or was revoked early), false otherwise.
   */
  refused(used: Readonly<Record<string, string>>): boolean;
  describe(): AuthDescription;
  /** Closes the connections of a token endpoint's client. */
  close(): Promise<void>;
}

/**
 * An auth scheme: its config schema (with `type` as the discriminator) and how to build it. Each one
 * registers in `auth/registry.ts`; the config schema and docs pick it up from there.
 */
export interface AuthDefinition<Schema extends z.ZodType = z.ZodType> {
  readonly type: string;
  readonly schema: Schema;
  /** Throws `InvalidConfigValue` (with a path inside `auth`) for what the schema cannot check. */
  create(config: z.output<Schema>, context: AuthContext): Authenticator;
}
