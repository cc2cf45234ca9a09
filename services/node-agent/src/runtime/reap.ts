/**
 * What a pid namespace gives the container runtime for free: every process of a container, and of
 * a pod, can be found and killed. klab's containers share the node's pid namespace, so the agent
 * finds them in /proc instead: a container by its process tree and process group, a pod by its
 * root directory (every container, exec session and daemonised child chroots into it).
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

interface ProcStat {
  pid: number;
  ppid: number;
  pgrp: number;
}

function readStat(pid: number): ProcStat | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // fields after the command name, which may itself hold spaces or parentheses
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { pid, ppid: Number(f[1]), pgrp: Number(f[2]) };
  } catch {
    return undefined;
  }
}

function pids(): number[] {
  try {
    return readdirSync("/proc")
      .filter((e) => /^\d+$/.test(e))
      .map(Number);
  } catch {
    return [];
  }
}

/**
 * The container's processes: the one the shim started, everything descended from it, and its
 * process group (whose members outlive a parent that exits). Taken before the kill, while
 * parents still link the tree.
 */
export function processTree(pid: number): number[] {
  const stats = pids()
    .map(readStat)
    .filter((s): s is ProcStat => !!s);
  const children = new Map<number, number[]>();
  for (const s of stats) children.set(s.ppid, [...(children.get(s.ppid) ?? []), s.pid]);
  const found = new Set<number>();
  const walk = [pid];
  for (const s of stats) if (s.pgrp === pid) walk.push(s.pid);
  while (walk.length) {
    const p = walk.pop()!;
    if (found.has(p)) continue;
    found.add(p);
    walk.push(...(children.get(p) ?? []));
  }
  return [...found];
}

/** Processes whose root is the pod's root (or below it): the pod's containers and exec sessions. */
export function processesRootedIn(root: string): number[] {
  // Every process on the machine is rooted in "/": only ever a pod's own directory.
  if (!root.startsWith("/") || root.split("/").filter(Boolean).length < 2)
    throw new Error(`refusing to look for processes rooted in ${JSON.stringify(root)}: not a pod root`);
  const out: number[] = [];
  for (const pid of pids()) {
    if (pid === process.pid) continue;
    try {
      // a root removed meanwhile reads as "<path> (deleted)"
      const r = readlinkSync(`/proc/${pid}/root`).replace(/ \(deleted\)$/, "");
      if (r === root || r.startsWith(`${root}/`)) out.push(pid);
    } catch {
      // gone, or a zombie (no root left): nothing to kill
    }
  }
  return out;
}

export function killAll(list: number[]): void {
  for (const pid of list) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

/**
 * SIGKILLs every process rooted in the pod's root until none is left (as the end of a pod's pid
 * namespace does), for at most `ms`. Returns the pids that would not go.
 */
export async function killPodProcesses(root: string, ms = 10_000): Promise<number[]> {
  const until = Date.now() + ms;
  let left = processesRootedIn(root);
  while (left.length && Date.now() < until) {
    killAll(left);
    await new Promise((r) => setTimeout(r, 20));
    left = processesRootedIn(root);
  }
  return left;
}
