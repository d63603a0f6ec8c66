/**
 * Runs `command` in this process with stdout and stderr captured (a CLI command that prints), and
 * puts the real streams back afterwards whatever happens.
 *
 * @example
 * const { result: code, stdout } = await captureOutput(() => dlqCommand(["list"], "config.yaml", {}));
 */
export async function captureOutput<T>(
  command: () => Promise<T>,
): Promise<{ result: T; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const stdoutWrite = process.stdout.write;
  const stderrWrite = process.stderr.write;
  process.stdout.write = ((chunk: string | Uint8Array) => {
    out.push(String(chunk));
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    err.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  try {
    const result = await command();
    return { result, stdout: out.join(""), stderr: err.join("") };
  } finally {
    process.stdout.write = stdoutWrite;
    process.stderr.write = stderrWrite;
  }
}
