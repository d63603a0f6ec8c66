import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, normalize, relative, sep } from "node:path";
import { REPO_DIR } from "../support/signing.ts";

/** A TypeScript file of the repository with what it imports. */
export interface SourceFile {
  /** Relative to the repository, with `/`: `src/delivery/engine.ts`. */
  readonly path: string;
  readonly text: string;
  /** Relative imports (static, dynamic, re-exports), resolved to repository paths. */
  readonly imports: readonly { readonly target: string; readonly typeOnly: boolean; readonly line: number }[];
}

const IMPORT = /(?:^|[^\w.])(import|export)\s*(type\s+)?(?:[^"';]*?\sfrom\s*)?\(?\s*["'](\.{1,2}\/[^"']+)["']/gm;

/** Every .ts file under `folder` (repository-relative), tests included unless `withTests` is false. */
export function sourceFiles(folder: string, options: { withTests?: boolean } = {}): SourceFile[] {
  const out: SourceFile[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const full = join(dir, name);
      if (statSync(full).isDirectory()) {
        if (name !== "node_modules") walk(full);
        continue;
      }
      if (!name.endsWith(".ts")) continue;
      if (options.withTests === false && name.endsWith(".test.ts")) continue;
      out.push(read(full));
    }
  };
  walk(join(REPO_DIR, folder));
  return out.sort((a, b) => a.path.localeCompare(b.path));
}

function read(full: string): SourceFile {
  const text = readFileSync(full, "utf8");
  const path = relative(REPO_DIR, full).split(sep).join("/");
  const dir = path.slice(0, path.lastIndexOf("/"));
  const imports = [...text.matchAll(IMPORT)].map((match) => ({
    target: normalize(join(dir, match[3]!)).split(sep).join("/"),
    typeOnly: match[2] !== undefined,
    line: text.slice(0, match.index).split("\n").length,
  }));
  return { path, text, imports };
}

/** `src/delivery/engine.ts` -> `delivery`; a file directly in src/ -> `(root)`. */
export function folderOf(path: string): string {
  const parts = path.split("/");
  return parts.length > 2 ? parts[1]! : "(root)";
}
