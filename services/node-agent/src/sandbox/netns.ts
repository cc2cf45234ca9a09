import { existsSync } from "node:fs";
import { run } from "./run.ts";

/** The pod's network namespace name: klab-<node>-<first 8 of the pod UID>, at most 64 bytes. */
export function podNetnsName(prefix: string, node: string, uid: string): string {
  return `${prefix}-${node}-${uid.replace(/-/g, "").slice(0, 8)}`.slice(0, 64);
}

export function netnsPath(name: string): string {
  return `/run/netns/${name}`;
}

export function netnsExists(name: string): boolean {
  return existsSync(netnsPath(name));
}

/**
 * Creates the namespace: no route anywhere until a network is attached. Its loopback comes up in
 * the pod's sandbox (pod-root.sh), which runs there anyway, rather than in one more `ip` here.
 */
export async function createNetns(name: string): Promise<void> {
  if (!netnsExists(name)) await run("ip", ["netns", "add", name]);
}

export async function deleteNetns(name: string): Promise<void> {
  if (netnsExists(name)) await run("ip", ["netns", "del", name]).catch(() => undefined);
}
