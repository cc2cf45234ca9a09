/** Small helpers the end-to-end suites share: run a command without throwing, and poll until ready. */
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface CommandResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** Runs a command and returns its output and exit code; a failing command is a result, not a throw. */
export async function runCommand(
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string; cwd?: string } = {},
): Promise<CommandResult> {
  try {
    const running = run(cmd, args, {
      timeout: opts.timeoutMs ?? 60_000,
      env: opts.env,
      cwd: opts.cwd,
      maxBuffer: 64 << 20,
    });
    // a command that exits without reading its stdin must not turn our write into an EPIPE crash
    running.child.stdin?.on("error", () => undefined);
    running.child.stdin?.end(opts.input ?? "");
    const { stdout, stderr } = await running;
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; code?: number };
    return { stdout: e.stdout ?? "", stderr: e.stderr ?? "", code: typeof e.code === "number" ? e.code : 1 };
  }
}

/** Polls `probe` until it returns a value (errors count as "not yet"), or fails after `ms`. */
export async function until<T>(
  what: string,
  ms: number,
  probe: () => Promise<T | undefined>,
  intervalMs = 500,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
