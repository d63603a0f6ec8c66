import { Buffer } from "node:buffer";
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { StoreOpenError } from "./store-open-error.ts";

/**
 * Encryption at rest for what a store keeps of an event, shared by every store: AES-256-GCM with a
 * 32-byte key and the event id as associated data, so that a value copied onto another row does not
 * open there. The store seals an event's `data` (the transformed body and the stripped payload), its
 * `secret` (tokens, forwarded headers) and its `stageData` (a target's answer): nothing of a payload
 * rests in clear, whatever the route strips.
 *
 * Stored values carry their format, so that a later change can still read what an earlier version
 * wrote:
 * - `v1:` + base64(iv | tag | ciphertext): format 1, what this version writes in every sealed column.
 * - format 0, what the first version wrote: `secret` as base64(iv | tag | ciphertext) without a prefix,
 *   `data` and `stageData` as plain JSON. Still read; `data` and `stageData` of format 0 are sealed
 *   in place when a store opens (see the stores).
 * `:` is neither base64 nor the start of any JSON text, so the prefix cannot be mistaken for format 0.
 */

const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * Reads a key given as base64 of 32 bytes; `source` names it in the error (a config key or a file).
 *
 * @example
 * const key = parseKey(config.store.encryption_key, "store.encryption_key");
 */
export function parseKey(text: string, source: string): Uint8Array {
  const trimmed = text.trim();
  const bytes =
    /^[A-Za-z0-9+/]*={0,2}$/.test(trimmed) && trimmed.length % 4 === 0 ? Buffer.from(trimmed, "base64") : undefined;
  if (bytes?.length !== KEY_BYTES) {
    throw new StoreOpenError(
      `${source} must be base64 of ${KEY_BYTES} bytes (${bytes ? `got ${bytes.length} bytes` : "not base64"}); make one with: openssl rand -base64 32`,
    );
  }
  return bytes;
}

/**
 * Reads the key file, or creates it (32 random bytes, base64, mode 0600) on the first start.
 *
 * @example
 * const key = loadOrCreateKeyFile("/var/lib/actiongate/store.db.key");
 */
export function loadOrCreateKeyFile(file: string): Uint8Array {
  try {
    return parseKey(readFileSync(file, "utf8"), `the key file ${file}`);
  } catch (error) {
    if ((error as { code?: string }).code !== "ENOENT") {
      if (error instanceof StoreOpenError) throw error;
      throw new StoreOpenError(`cannot read the key file ${file}: ${(error as Error).message}`);
    }
  }
  const key = randomBytes(KEY_BYTES);
  try {
    // wx: never overwrite a key another process has just written; its key wins and is read back.
    writeFileSync(file, `${key.toString("base64")}\n`, { mode: 0o600, flag: "wx" });
    return key;
  } catch (error) {
    if ((error as { code?: string }).code === "EEXIST")
      return parseKey(readFileSync(file, "utf8"), `the key file ${file}`);
    throw new StoreOpenError(`cannot create the key file ${file}: ${(error as Error).message}`);
  }
}

/** The prefix of a format 1 value. */
const FORMAT_1 = "v1:";

/**
 * Seals `plaintext` for the event (or row) `id` in the current format.
 *
 * @example
 * const stored = seal(key, "msg_1", token); // "v1:..."; openSecret(key, "msg_1", stored) === token
 */
export function seal(key: Uint8Array, id: string, plaintext: string): string {
  return FORMAT_1 + encrypt(key, id, plaintext);
}

/** Whether `stored` is in the current format (a format 0 `data` value is plain JSON). */
export function isSealed(stored: string): boolean {
  return stored.startsWith(FORMAT_1);
}

/**
 * Opens a stored `secret`: format 1, or format 0 (the same ciphertext without prefix). undefined when
 * it cannot be opened (another key, damaged, another event's): a missing token, never a crash.
 *
 * @example
 * const token = openSecret(key, event.id, event.secret);
 */
export function openSecret(key: Uint8Array, id: string, stored: string): string | undefined {
  return decrypt(key, id, isSealed(stored) ? stored.slice(FORMAT_1.length) : stored);
}

/**
 * Opens a stored `data` or `stageData`: format 1 is decrypted (undefined when that fails: damaged, or
 * moved from another row), format 0 is the plain JSON the first version wrote and is returned as is.
 *
 * @example
 * const data = openData(key, row.id, row.data); // the JSON the gateway stored
 */
export function openData(key: Uint8Array, id: string, stored: string): string | undefined {
  return isSealed(stored) ? decrypt(key, id, stored.slice(FORMAT_1.length)) : stored;
}

function encrypt(key: Uint8Array, id: string, plaintext: string): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  cipher.setAAD(Buffer.from(id, "utf8"));
  const ciphertext = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), ciphertext]).toString("base64");
}

function decrypt(key: Uint8Array, id: string, base64: string): string | undefined {
  try {
    const bytes = Buffer.from(base64, "base64");
    if (bytes.length < IV_BYTES + TAG_BYTES) return undefined;
    const decipher = createDecipheriv("aes-256-gcm", key, bytes.subarray(0, IV_BYTES));
    decipher.setAAD(Buffer.from(id, "utf8"));
    decipher.setAuthTag(bytes.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    return Buffer.concat([decipher.update(bytes.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString("utf8");
  } catch {
    return undefined;
  }
}

/** The row of `store_meta` whose value proves the key: sealed with the key the store was first opened with. */
export const KEY_CHECK_NAME = "key_check";
const KEY_CHECK_TEXT = "actiongate store key check";

/** The key check value to store for `key`. */
export function keyCheckValue(key: Uint8Array): string {
  return seal(key, KEY_CHECK_NAME, KEY_CHECK_TEXT);
}

/** Whether `stored` (the store's key check) was sealed with `key`. */
export function keyMatches(key: Uint8Array, stored: string): boolean {
  return openSecret(key, KEY_CHECK_NAME, stored) === KEY_CHECK_TEXT;
}

/**
 * What a store keeps of an event's order key: a keyed hash (HMAC-SHA256 under a key derived from the
 * store's key, bound to the route), because the key is read from the payload (an entity id, a
 * customer number) and nothing of a payload rests in clear. Equal keys of one route give equal
 * digests on every replica (they share the key), which is all that ordering compares.
 *
 * @example
 * const digest = orderKeyDigester(key);
 * digest("erp", "contract:4711"); // "k1:3q2+7w..." (the same for every call, on every replica)
 */
export function orderKeyDigester(key: Uint8Array): (route: string, orderKey: string) => string {
  const derived = createHmac("sha256", key).update("actiongate order key").digest();
  return (route, orderKey) =>
    `k1:${createHmac("sha256", derived).update(route).update("\u0000").update(orderKey).digest("base64")}`;
}
