/**
 * How to start this program again with the same arguments, for `server.workers`. The answer differs
 * between a compiled binary and a script run by the runtime, which is why it lives in `runtime/`.
 */

declare const Deno: { execPath(): string; args: string[] } | undefined;

export interface SelfCommand {
  readonly command: string;
  readonly args: readonly string[];
}

/**
 * The executable and arguments that run this same program with the same command line.
 *
 * A `bun build --compile` binary sees `argv = ["bun", "/$bunfs/root/actiongate", ...args]` with
 * `execPath` the binary itself, so the embedded entry must not be passed again; `bun src/main.ts`
 * sees `argv = [bun, "/path/src/main.ts", ...args]` and needs the script path.
 *
 * @example
 * const self = selfCommand();
 * spawn(self.command, [...self.args], { stdio: "inherit" });
 */
export function selfCommand(): SelfCommand {
  if (typeof Bun !== "undefined") {
    const entry = process.argv[1] ?? "";
    const compiled = entry.startsWith("/$bunfs/") || entry.startsWith("B:/~BUN/") || entry.startsWith("B:\\~BUN\\");
    return { command: process.execPath, args: compiled ? process.argv.slice(2) : process.argv.slice(1) };
  }
  if (typeof Deno !== "undefined") {
    // A `deno compile` binary: execPath is the binary and args are the user's. Under `deno run` the
    // permission flags are not visible here; run compiled (or with one worker) there.
    return { command: Deno.execPath(), args: Deno.args };
  }
  return { command: process.execPath, args: process.argv.slice(1) };
}
