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

/**
 * Several `ip` commands in one process (`ip -batch -`), in a named network namespace or the
 * agent's own: one fork instead of one per command. Stops at the first failing command.
 */
export function ipBatch(netns: string | undefined, commands: string[][]): Promise<string> {
  for (const c of commands)
    for (const a of c)
      if (!a || /[\s"'\\#]/.test(a))
        throw new Error(`ip batch argument ${JSON.stringify(a)} cannot be batched`);
  const input = commands.map((c) => c.join(" ") + "\n").join("");
  return run("ip", [...(netns ? ["-n", netns] : []), "-batch", "-"], { input });
}

/**
 * A pod interface configured the way a CNI plugin does (MTU, address, up, routes via it), in one
 * `ip` process. Safe to run again on a configured interface (a re-attached persistent TUN).
 */
export function configurePodInterface(
  netns: string,
  cfg: { name: string; cidr: string; mtu: number; routes: string[] },
): Promise<string> {
  return ipBatch(netns, [
    ["link", "set", "dev", cfg.name, "mtu", String(cfg.mtu)],
    ["addr", "replace", cfg.cidr, "dev", cfg.name],
    ["link", "set", "dev", cfg.name, "up"],
    ...cfg.routes.map((r) => ["route", "replace", ...r.trim().split(/\s+/), "dev", cfg.name]),
  ]);
}
