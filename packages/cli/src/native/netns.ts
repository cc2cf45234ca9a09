/**
 * The few iproute2 operations the native driver needs. Each is idempotent where the lab needs
 * it to be (so `klab up` can run twice and `klab down` can finish a half-made lab).
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

export class CommandError extends Error {}

export async function ip(args: string[], netns?: string): Promise<string> {
  const argv = netns ? ["-n", netns, ...args] : args;
  try {
    const { stdout } = await run("ip", argv, { timeout: 15_000 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new CommandError(`ip ${argv.join(" ")}: ${(e.stderr ?? e.message).trim()}`);
  }
}

export async function listNetns(): Promise<string[]> {
  const out = await ip(["netns", "list"]);
  return out
    .split("\n")
    .map((line) => line.split(" ")[0]!)
    .filter(Boolean);
}

export async function ensureNetns(name: string): Promise<void> {
  if ((await listNetns()).includes(name)) return;
  await ip(["netns", "add", name]);
  await ip(["link", "set", "lo", "up"], name);
}

export async function deleteNetns(name: string): Promise<void> {
  try {
    await ip(["netns", "delete", name]);
  } catch (err) {
    if (!/No such file|not found|Invalid/.test((err as Error).message)) throw err;
  }
}

/** Process IDs living in a network namespace. */
export async function netnsPids(name: string): Promise<number[]> {
  try {
    const out = await ip(["netns", "pids", name]);
    return out.split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export async function linkExists(name: string, netns?: string): Promise<boolean> {
  try {
    await ip(["link", "show", name], netns);
    return true;
  } catch {
    return false;
  }
}

export async function sysctl(netns: string, key: string, value: string): Promise<void> {
  try {
    await run("ip", ["netns", "exec", netns, "sysctl", "-qw", `${key}=${value}`], { timeout: 15_000 });
  } catch (err) {
    throw new CommandError(`sysctl ${key}=${value} in ${netns}: ${(err as Error).message}`);
  }
}
