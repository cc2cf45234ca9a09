import { spawnCollect } from "./spawner.ts";

export class CommandError extends Error {
  constructor(
    readonly argv: string[],
    readonly code: number | null,
    readonly stderr: string,
  ) {
    super(`${argv.join(" ")} failed (exit ${code}): ${stderr.trim()}`);
  }
}

/**
 * Runs a system command (ip, nsenter …) and resolves with its stdout; rejects with its stderr.
 * The child is started from a worker thread (spawner.ts), so the agent's event loop never waits
 * on a fork.
 */
export async function run(
  cmd: string,
  args: string[],
  opts: { timeoutMs?: number; input?: string } = {},
): Promise<string> {
  const r = await spawnCollect({
    argv: [cmd, ...args],
    input: opts.input,
    timeoutMs: opts.timeoutMs ?? 30_000,
    maxBytes: 16 << 20,
  });
  if (r.code === 0) return r.stdout;
  const why = r.error ?? (r.timedOut ? "timed out" : r.signal ? `killed by ${r.signal}` : "");
  throw new CommandError([cmd, ...args], r.code, r.stderr || why);
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
