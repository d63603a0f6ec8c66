import { spawnSync } from "node:child_process";
import { appendFileSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";

/**
 * A real, tiny file system (tmpfs) for tests of a full disk. Mounting needs root (CI runs as root);
 * elsewhere `mountTinyDisk` returns undefined and says why once, and the caller skips its test.
 */
export interface TinyDisk {
  /** The mount point. */
  readonly dir: string;
  /** Writes a filler file until the disk is full. */
  fill(): void;
  /** Deletes the filler file. */
  free(): void;
  unmount(): void;
}

/**
 * @example
 * const disk = mountTinyDisk(join(tmp, "disk"), 2048);
 * test.skipIf(!disk)("a full disk ...", () => { disk!.fill(); ... });
 */
export function mountTinyDisk(dir: string, sizeKb: number): TinyDisk | undefined {
  mkdirSync(dir, { recursive: true });
  const mounted =
    process.getuid?.() === 0
      ? spawnSync("mount", ["-t", "tmpfs", "-o", `size=${sizeKb}k,mode=0755`, "tmpfs", dir])
      : undefined;
  if (mounted?.status !== 0) {
    console.warn(
      `full-disk tests skipped: cannot mount a tmpfs at ${dir} (${mounted ? String(mounted.stderr).trim() : "not root"})`,
    );
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
  const filler = join(dir, "filler");
  return {
    dir,
    fill() {
      const chunk = Buffer.alloc(16 * 1024, 1);
      for (;;) {
        try {
          appendFileSync(filler, chunk);
        } catch (error) {
          if ((error as { code?: string }).code === "ENOSPC") break;
          throw error;
        }
      }
      // The last partial pages, too.
      for (;;) {
        try {
          appendFileSync(filler, Buffer.alloc(512, 1));
        } catch (error) {
          if ((error as { code?: string }).code === "ENOSPC") return;
          throw error;
        }
      }
    },
    free() {
      rmSync(filler, { force: true });
    },
    unmount() {
      spawnSync("umount", [dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
