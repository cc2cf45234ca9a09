import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface InterfaceConfig {
  /** Network namespace: a name under /run/netns, or a path such as /proc/PID/ns/net. */
  netns?: string;
  name: string;
  /** Address with prefix, e.g. "10.244.1.5/24". */
  cidr?: string;
  mtu?: number;
  /** Extra routes through this interface, e.g. ["10.96.0.0/12"], ["default"], ["10.244.0.0/16 src 10.244.1.0"]. */
  routes?: string[];
  /** Kernel queue length of the device (packets the kernel holds while we are busy). */
  txqueuelen?: number;
  /** Bring the link up (default true). */
  up?: boolean;
}

function ipCommand(netns: string | undefined, args: string[]): [string, string[]] {
  if (!netns) return ["ip", args];
  if (netns.includes("/")) return ["nsenter", [`--net=${netns}`, "ip", ...args]];
  return ["ip", ["-n", netns, ...args]];
}

/** Run one `ip` command (in a namespace if given); failures carry ip's own message. */
export async function ip(netns: string | undefined, args: string[]): Promise<string> {
  const [cmd, argv] = ipCommand(netns, args);
  try {
    const { stdout } = await run(cmd, argv, { timeout: 10_000 });
    return stdout;
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim();
    throw new Error(`${cmd} ${argv.join(" ")}: ${stderr || (err as Error).message}`);
  }
}

/**
 * Configure an interface the way a CNI plugin does: MTU, address, up, routes. Safe to run again
 * on an interface already configured (a re-attached persistent TUN): existing address and routes
 * are replaced, not duplicated.
 */
export async function configureInterface(cfg: InterfaceConfig): Promise<void> {
  const { netns, name } = cfg;
  if (cfg.mtu !== undefined) {
    if (!Number.isInteger(cfg.mtu) || cfg.mtu < 68 || cfg.mtu > 65535)
      throw new RangeError(`invalid MTU ${cfg.mtu}`);
    await ip(netns, ["link", "set", "dev", name, "mtu", String(cfg.mtu)]);
  }
  if (cfg.txqueuelen !== undefined)
    await ip(netns, ["link", "set", "dev", name, "txqueuelen", String(cfg.txqueuelen)]);
  if (cfg.cidr) await ip(netns, ["addr", "replace", cfg.cidr, "dev", name]);
  if (cfg.up ?? true) await ip(netns, ["link", "set", "dev", name, "up"]);
  for (const route of cfg.routes ?? [])
    await ip(netns, ["route", "replace", ...route.trim().split(/\s+/), "dev", name]);
}
