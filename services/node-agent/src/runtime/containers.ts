import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { processStartTicks } from "../sandbox/sandbox.ts";

const SHIM = fileURLToPath(new URL("./shim.sh", import.meta.url));

/** One run of one container: its directory holds pid, exit and the CRI-format log. */
export interface ContainerRun {
  dir: string;
  containerID: string;
  pid: number;
  startTicks: string;
  startedAt: string;
}

export interface ContainerExit {
  exitCode: number;
  finishedAt: string;
}

export function containerDir(podDir: string, name: string, attempt: number): string {
  return join(podDir, "containers", name, String(attempt));
}

export function newContainerID(podUID: string, name: string, attempt: number): string {
  return createHash("sha256").update(`${podUID}/${name}/${attempt}/${process.hrtime.bigint()}`).digest("hex");
}

/**
 * Starts a container process through the shim (detached, in its own session, so it outlives the
 * agent). `argv` is already the full nsenter + command line.
 */
export async function startContainer(
  dir: string,
  argv: string[],
  env: Record<string, string>,
  onExit?: () => void,
): Promise<{ run: Omit<ContainerRun, "containerID">; child: ChildProcess }> {
  mkdirSync(dir, { recursive: true });
  for (const f of ["out", "err", "exit", "pid"]) rmSync(join(dir, f), { force: true });
  const child = spawn("sh", [SHIM, dir, "--", ...argv], { detached: true, stdio: "ignore", env });
  child.unref();
  if (onExit) child.once("exit", onExit);
  const startedAt = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  // the shim writes the pid within a few milliseconds of starting
  for (let i = 0; i < 500; i++) {
    const pid = readPid(dir);
    if (pid) {
      const startTicks = processStartTicks(pid) ?? "";
      return { run: { dir, pid, startTicks, startedAt }, child };
    }
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`container shim did not start (exit ${child.exitCode})`);
}

export function readPid(dir: string): number | undefined {
  try {
    const n = Number(readFileSync(join(dir, "pid"), "utf8").trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

export function readExit(dir: string): ContainerExit | undefined {
  try {
    const [code, at] = readFileSync(join(dir, "exit"), "utf8").trim().split(" ");
    return { exitCode: Number(code), finishedAt: at };
  } catch {
    return undefined;
  }
}

export function containerAlive(run: Pick<ContainerRun, "pid" | "startTicks">): boolean {
  const ticks = processStartTicks(run.pid);
  if (ticks !== undefined) return !!run.startTicks && ticks === run.startTicks;
  // /proc unreadable for a moment (e.g. under fd pressure): ask the kernel rather than guess "dead"
  try {
    process.kill(run.pid, 0);
    return existsSync(`/proc/${run.pid}`);
  } catch {
    return false;
  }
}

function signalGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    try {
      process.kill(pid, sig);
    } catch {
      /* gone */
    }
  }
}

/** SIGTERM, then SIGKILL after the grace period, as the runtime's StopContainer does. */
export async function stopContainer(run: ContainerRun, graceSeconds: number): Promise<void> {
  if (!containerAlive(run)) return;
  signalGroup(run.pid, "SIGTERM");
  const deadline = Date.now() + graceSeconds * 1000;
  while (Date.now() < deadline) {
    if (!containerAlive(run)) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  if (containerAlive(run)) signalGroup(run.pid, "SIGKILL");
  // let the shim record the exit
  for (let i = 0; i < 100 && !existsSync(join(run.dir, "exit")); i++)
    await new Promise((r) => setTimeout(r, 20));
}

/** kubelet's terminated reason for an exit code. */
export function terminatedReason(exitCode: number): string {
  return exitCode === 0 ? "Completed" : "Error";
}
