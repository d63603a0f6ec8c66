import { Buffer } from "node:buffer";
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { StoreOpenError } from "./store-open-error.ts";

/**
 * Encryption at rest for the x-epilot-token of stored events, shared by every store: AES-256-GCM with
 * a 32-byte key and the event id as associated data. Stored as base64(iv | tag | ciphertext).
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

/**
 * Encrypts `plaintext` for the event `id`.
 *
 * @example
 * const stored = encryptSecret(key, "msg_1", token); // decryptSecret(key, "msg_1", stored) === token
 */
export function encryptSecret(key: Uint8Array, id: string, plaintext: string): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  // The id as associated data: a ciphertext copied onto another row does not decrypt there.
  cipher.setAAD(Buffer.from(id, "utf8"));
  const ciphertext = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), ciphertext]).toString("base64");
}

/**
 * undefined when the value cannot be decrypted (another key, damaged, another event's): a missing
 * token, never a crash.
 *
 * @example
 * const token = decryptSecret(key, event.id, event.secret);
 */
export function decryptSecret(key: Uint8Array, id: string, stored: string): string | undefined {
  try {
    const bytes = Buffer.from(stored, "base64");
    if (bytes.length < IV_BYTES + TAG_BYTES) return undefined;
    const decipher = createDecipheriv("aes-256-gcm", key, bytes.subarray(0, IV_BYTES));
    decipher.setAAD(Buffer.from(id, "utf8"));
    decipher.setAuthTag(bytes.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    return Buffer.concat([decipher.update(bytes.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString("utf8");
  } catch {
    return undefined;
  }
}
