/**
 * The lab's long-running processes: started detached inside a network namespace, with their
 * output in a log file and their pid in a pid file, so `klab down` (or a second `klab up`)
 * finds them again from any shell.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const klabBin = fileURLToPath(new URL("../../bin/klab.js", import.meta.url));

export interface ProcessSpec {
  /** Unique within the lab, e.g. "apiserver" or "node-agent-node-1"; names the log and pid files. */
  id: string;
  netns?: string;
  /** Arguments to the `klab` command. */
  args: string[];
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

export function readPid(stateDir: string, id: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(stateDir, "pids", `${id}.pid`), "utf8"));
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

export function runningPid(stateDir: string, id: string): number | undefined {
  const pid = readPid(stateDir, id);
  return pid !== undefined && isAlive(pid) ? pid : undefined;
}

/** Starts the process unless it already runs; returns its pid. */
export function startProcess(stateDir: string, spec: ProcessSpec): number {
  const existing = runningPid(stateDir, spec.id);
  if (existing) return existing;
  mkdirSync(join(stateDir, "logs"), { recursive: true });
  mkdirSync(join(stateDir, "pids"), { recursive: true });
  const log = openSync(join(stateDir, "logs", `${spec.id}.log`), "a");
  const command = [process.execPath, klabBin, ...spec.args];
  const argv = spec.netns ? ["netns", "exec", spec.netns, ...command] : command;
  const child = spawn(spec.netns ? "ip" : argv.shift()!, argv, {
    detached: true,
    stdio: ["ignore", log, log],
    env: { ...process.env, KLAB_LAB_MEMBER: spec.id },
  });
  child.unref();
  writeFileSync(join(stateDir, "pids", `${spec.id}.pid`), String(child.pid));
  return child.pid!;
}

export function listProcessIds(stateDir: string): string[] {
  const dir = join(stateDir, "pids");
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith(".pid"))
    .map((f) => f.slice(0, -4));
}

async function waitGone(pids: number[], ms: number): Promise<number[]> {
  const deadline = Date.now() + ms;
  let alive = pids.filter(isAlive);
  while (alive.length && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    alive = alive.filter(isAlive);
  }
  return alive;
}

/** SIGTERM, then SIGKILL after the grace period, to each pid (and its process group). */
export async function terminate(pids: number[], graceMs = 10_000): Promise<void> {
  for (const pid of pids) {
    for (const target of [-pid, pid]) {
      try {
        process.kill(target, "SIGTERM");
      } catch {
        // Already gone, or not a group leader.
      }
    }
  }
  for (const pid of await waitGone(pids, graceMs)) {
    for (const target of [-pid, pid]) {
      try {
        process.kill(target, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
  }
  await waitGone(pids, 5_000);
}

export async function stopProcess(stateDir: string, id: string, graceMs?: number): Promise<void> {
  const pid = readPid(stateDir, id);
  if (pid !== undefined) await terminate([pid], graceMs);
  rmSync(join(stateDir, "pids", `${id}.pid`), { force: true });
}
