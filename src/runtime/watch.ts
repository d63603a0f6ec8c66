import { type FSWatcher, watch } from "node:fs";
import { basename, dirname, resolve } from "node:path";

export interface FileWatchOptions {
  /** Quiet time after the last event before `onChange` runs: editors write a file in several steps. */
  readonly debounceMs?: number;
  /** Told when the folder cannot be watched (it was removed, the runtime refuses). */
  readonly onError?: (error: Error) => void;
}

/**
 * Calls `onChange` (debounced) when `file` may have changed. The file's folder is watched rather
 * than the file itself: editors and config tools replace a file by renaming a new one over it (and
 * Kubernetes swaps a `..data` symlink), which a watch on the old file would not see. Events of other
 * files in the folder (a SQLite database beside the config) are ignored.
 * Returns a function that stops watching.
 *
 * @example
 * const stop = watchFile("config.yaml", () => void reloader.reload("watch"), { debounceMs: 300 });
 */
export function watchFile(file: string, onChange: () => void, options: FileWatchOptions = {}): () => void {
  const path = resolve(file);
  const name = basename(path);
  const debounceMs = options.debounceMs ?? 300;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const watcher: FSWatcher = watch(dirname(path), { persistent: false }, (_event, changed) => {
    const changedName = changed === null ? null : String(changed);
    if (changedName !== null && changedName !== name && !changedName.startsWith("..")) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      onChange();
    }, debounceMs);
  });
  watcher.on("error", (error) => options.onError?.(error));
  return () => {
    if (timer) clearTimeout(timer);
    watcher.close();
  };
}
