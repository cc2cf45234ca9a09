import { execFile } from "node:child_process";

export class CommandError extends Error {
  constructor(
    readonly argv: string[],
    readonly code: number | null,
    readonly stderr: string,
  ) {
    super(`${argv.join(" ")} failed (exit ${code}): ${stderr.trim()}`);
  }
}

/** Runs a system command (ip, nsenter …) and resolves with its stdout; rejects with its stderr. */
export function run(
  cmd: string,
  args: string[],
  opts: { timeoutMs?: number; input?: string } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      { encoding: "utf8", timeout: opts.timeoutMs ?? 30_000, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        if (err)
          reject(
            new CommandError(
              [cmd, ...args],
              typeof err.code === "number" ? err.code : null,
              stderr || err.message,
            ),
          );
        else resolve(stdout);
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** `ip` in a named network namespace, or in the agent's own when netns is undefined. */
export function ip(netns: string | undefined, args: string[]): Promise<string> {
  return run("ip", netns ? ["-n", netns, ...args] : args);
}
