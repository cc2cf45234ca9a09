import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { processStartTicks } from "../sandbox/sandbox.ts";
import { killAll, processTree } from "./reap.ts";

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
      const startTicks = processStartTicks(pid);
      if (startTicks) return { run: { dir, pid, startTicks, startedAt }, child };
      // an unreadable start time for a live process would make it look gone, never to be stopped:
      // read again; a process already gone (exited at once) has none to read
      if (!pidExists(pid)) return { run: { dir, pid, startTicks: "", startedAt }, child };
    }
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`container shim did not start (exit ${child.exitCode})`);
}

function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * SIGTERM, then SIGKILL to the container's whole process tree once the grace period is over (or
 * sooner, when `killBy()` – a later, shorter deletion – says so), as the runtime's StopContainer
 * does; returns once the container's process is reaped and the shim recorded its exit.
 */
export async function stopContainer(
  run: ContainerRun,
  graceSeconds: number,
  killBy: () => number = () => Infinity,
): Promise<void> {
  const running = containerAlive(run);
  if (running) {
    signalGroup(run.pid, "SIGTERM");
    const deadline = Date.now() + Math.max(0, graceSeconds) * 1000;
    for (;;) {
      const left = Math.min(deadline, killBy()) - Date.now();
      if (left <= 0 || !containerAlive(run)) break;
      await sleep(Math.min(50, left));
    }
    // the process may have gone on SIGTERM while what it started did not: the group goes too
    for (let i = 0; i < 200 && containerAlive(run); i++) {
      killAll(processTree(run.pid));
      signalGroup(run.pid, "SIGKILL");
      await sleep(i < 10 ? 5 : 50);
    }
  }
  // the shim reaps the process, kills what is left in its group and records the exit (soon, or
  // never: a process found gone long ago may have lost its shim too)
  const tries = running ? 200 : 40;
  for (let i = 0; i < tries && !existsSync(join(run.dir, "exit")); i++) await sleep(i < 10 ? 5 : 50);
}

/** kubelet's terminated reason for an exit code. */
export function terminatedReason(exitCode: number): string {
  return exitCode === 0 ? "Completed" : "Error";
}
