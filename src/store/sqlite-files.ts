import { chmodSync, closeSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { StoreOpenError } from "./store-open-error.ts";

/**
 * The files of a SQLite store and what is checked about them before and after SQLite opens the
 * database: who may read them, and whether a database that should be there is.
 *
 * Beside `<path>` the store keeps `<path>-wal` and `<path>-shm` (SQLite's write-ahead log and its
 * index), `<path>.key` (the key file, without `store.encryption_key`) and `<path>.marker`. The marker
 * says that a database was created here: with it, a store file that is missing or empty (0 bytes) is
 * refused instead of silently starting an empty store, which would lose every pending event, every
 * dead letter and the replay guard's memory without a word.
 */

/** Warnings the store tells the operator about (the gateway logs them). */
export type StoreWarn = (message: string, fields: Record<string, unknown>) => void;

/** The files the store owns, by role. */
export function storeFiles(path: string) {
  return {
    database: path,
    wal: `${path}-wal`,
    shm: `${path}-shm`,
    keyFile: `${path}.key`,
    marker: `${path}.marker`,
  } as const;
}

const FILE_MODE = 0o600;
const FOLDER_MODE = 0o700;

type MarkerState = "creating" | "created";

/**
 * Before SQLite opens `path`: refuses a database that is missing or empty although the marker (or, for
 * a store of the first version, its key file) shows one was created; creates a missing folder (0700)
 * and a missing database file (0600, so that SQLite gives its -wal and -shm files the same mode); and
 * restricts any file of the store that others may read to 0600, with a warning.
 *
 * @example
 * prepareStoreFiles("/var/lib/actiongate/store.db", (message, fields) => logger.warn(message, fields));
 */
export function prepareStoreFiles(path: string, warn: StoreWarn): void {
  const files = storeFiles(path);
  // The marker first, then the database: a marker that says "created" is only written after the
  // database has its schema, so in this order a start beside another process's first start never
  // sees "created" together with the empty file that process is still filling.
  const marker = readMarker(files.marker);
  const database = statIfExists(files.database);
  if (database === undefined || database.size === 0) {
    // A key file without a marker: the first version wrote it once the database had its schema.
    const keyFile = exists(files.keyFile) ? [files.keyFile] : [];
    const proofs = marker?.state === "created" ? [files.marker, ...keyFile] : marker === undefined ? keyFile : [];
    if (proofs.length > 0) throw lostDatabase(files.database, proofs, database === undefined, marker?.since);
  }

  mkdirSync(dirname(files.database), { recursive: true, mode: FOLDER_MODE });
  if (database === undefined) createPrivateFile(files.database);
  if (marker === undefined && (database === undefined || database.size === 0)) writeMarker(files.marker, "creating");
  restrictModes(path, warn);
}

/**
 * After the database was opened and migrated: the marker says "created" from now on, and SQLite's
 * -wal and -shm files are checked like the others.
 *
 * @example
 * markStoreCreated("/var/lib/actiongate/store.db", warn);
 */
export function markStoreCreated(path: string, warn: StoreWarn): void {
  const files = storeFiles(path);
  if (readMarker(files.marker)?.state !== "created") {
    // Written beside and renamed over: a marker is never seen half-written.
    const temporary = `${files.marker}.${process.pid}.tmp`;
    writeFileSync(temporary, markerText("created"), { mode: FILE_MODE });
    renameSync(temporary, files.marker);
  }
  restrictModes(path, warn);
}

/** Every file of the store that exists and that others may read or write is set to 0600. */
function restrictModes(path: string, warn: StoreWarn): void {
  for (const file of Object.values(storeFiles(path))) {
    const stat = statIfExists(file);
    if (stat === undefined || (stat.mode & 0o077) === 0) continue;
    const was = (stat.mode & 0o777).toString(8).padStart(4, "0");
    try {
      chmodSync(file, FILE_MODE);
      warn("a store file was open to other users; its mode is now 0600", { file, was });
    } catch (error) {
      warn("a store file is open to other users and its mode cannot be changed; restrict it to 0600", {
        file,
        was,
        error: (error as Error).message,
      });
    }
  }
}

function lostDatabase(
  database: string,
  proofs: readonly string[],
  missing: boolean,
  since: string | undefined,
): StoreOpenError {
  const what = missing ? "does not exist" : "is empty (0 bytes)";
  const created = since ? ` on ${since}` : "";
  return new StoreOpenError(
    `the store file ${database} ${what}, but ${proofs[0]} shows that a store was created there${created}; ` +
      "starting with an empty store would lose its pending events, dead letters and replay guard. " +
      `Restore ${database} from a backup (with its -wal file, if any). To start with an empty store on purpose, ` +
      `delete ${proofs.join(" and ")} as well.`,
  );
}

function readMarker(file: string): { state: MarkerState; since?: string } | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    if ((error as { code?: string }).code === "ENOENT") return undefined;
    throw new StoreOpenError(`cannot read ${file}: ${(error as Error).message}`);
  }
  const match = /^state: (creating|created)(?: (\S+))?$/m.exec(text);
  // Anything else (edited, damaged) counts as "created": the safe side is to refuse a lost database.
  if (match?.[1] === "creating") return { state: "creating" };
  return { state: "created", ...(match?.[2] ? { since: match[2] } : {}) };
}

function writeMarker(file: string, state: MarkerState): void {
  try {
    // wx: a second process starting at the same time (another worker) leaves the first one's marker alone.
    writeFileSync(file, markerText(state), { mode: FILE_MODE, flag: "wx" });
  } catch (error) {
    if ((error as { code?: string }).code !== "EEXIST") {
      throw new StoreOpenError(`cannot write ${file}: ${(error as Error).message}`);
    }
  }
}

function markerText(state: MarkerState): string {
  return [
    "actiongate SQLite store marker",
    state === "created" ? `state: created ${new Date().toISOString()}` : "state: creating",
    "While this file says 'created', actiongate refuses to start when the store file beside it is missing or",
    "empty, instead of starting an empty store. Delete it only together with the store.",
    "",
  ].join("\n");
}

function createPrivateFile(file: string): void {
  try {
    closeSync(openSync(file, "wx", FILE_MODE));
  } catch (error) {
    if ((error as { code?: string }).code !== "EEXIST") {
      throw new StoreOpenError(`cannot create the store file ${file}: ${(error as Error).message}`);
    }
  }
}

function statIfExists(file: string) {
  try {
    return statSync(file);
  } catch (error) {
    if ((error as { code?: string }).code === "ENOENT") return undefined;
    throw new StoreOpenError(`cannot read ${file}: ${(error as Error).message}`);
  }
}

function exists(file: string): boolean {
  return statIfExists(file) !== undefined;
}
