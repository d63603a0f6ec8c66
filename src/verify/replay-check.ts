import type { ReplayGuard } from "./replay-guard.ts";
import type { VerifiedCall } from "./signature.ts";

/** What the replay guard says of a verified call's webhook-id. */
export type ReplayCheck =
  /** Seen for the first time: the call may go on. */
  | { readonly kind: "first" }
  /** Already received within the window: not processed twice (409). */
  | { readonly kind: "replayed" }
  /** The guard could not answer (its store is down): the call must not go on (fail closed, 503). */
  | { readonly kind: "unavailable"; readonly error: string };

/**
 * Claims a verified call's webhook-id in the replay guard, after its signature was checked (so that
 * nobody can fill the guard with ids they made up). Never throws.
 *
 * @example
 * const replay = await checkReplay(verified, store.replayGuard);
 * if (replay.kind === "replayed") return conflict();
 */
export async function checkReplay(call: VerifiedCall, guard: ReplayGuard): Promise<ReplayCheck> {
  try {
    return (await guard.claim(call.webhookId)) ? { kind: "first" } : { kind: "replayed" };
  } catch (error) {
    return { kind: "unavailable", error: (error as Error).message };
  }
}

/**
 * Forgets a call's webhook-id again, so that epilot's retry of a call that failed before it was
 * delivered is processed. Resolves with the error when the guard's store could not do it; the caller
 * logs it (a retry within the window then gets 409).
 */
export async function releaseReplay(call: VerifiedCall, guard: ReplayGuard): Promise<string | undefined> {
  try {
    await guard.release(call.webhookId);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}
