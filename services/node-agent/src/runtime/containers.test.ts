import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { until } from "../../../../test/support/wait.ts";
import { containerAlive, readExit, startContainer, stopContainer, type ContainerRun } from "./containers.ts";
import { killAll } from "./reap.ts";

const base = mkdtempSync(join(tmpdir(), "klab-containers-"));
const started: number[] = [];
afterAll(() => {
  killAll(started);
  rmSync(base, { recursive: true, force: true });
});

function alive(pid: number): boolean {
  try {
    // a zombie is dead to everyone but its parent
    return !readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z ");
  } catch {
    return false;
  }
}

/**
 * A container that ignores SIGTERM, with a child in its process group and one that left it for a
 * session of its own (setsid), every one ignoring SIGTERM too. Returns the run and the children.
 */
async function stubborn(name: string): Promise<{ run: ContainerRun; children: number[] }> {
  const dir = join(base, name);
  const pids = join(base, `${name}.pids`);
  const script = `trap '' TERM; sleep 1000 & echo $! >${pids}; setsid sleep 1000 & echo $! >>${pids}; wait`;
  const { run } = await startContainer(dir, ["sh", "-c", script], {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
  });
  started.push(run.pid);
  const children = await until(
    "the container's children",
    10_000,
    async () => {
      const p = readFileSync(pids, "utf8").trim().split("\n").map(Number);
      return p.length === 2 && p.every((x) => x > 0) ? p : undefined;
    },
    20,
  );
  started.push(...children);
  return { run: { ...run, containerID: name }, children };
}

describe("stopping a container (the runtime's StopContainer)", () => {
  for (const grace of [0, 1]) {
    it(`kills a container that ignores SIGTERM, and all it started, after a grace period of ${grace} s`, async () => {
      const { run, children } = await stubborn(`grace${grace}`);
      expect(containerAlive(run)).toBe(true);
      expect(children.every(alive)).toBe(true);
      await stopContainer(run, grace);
      expect(containerAlive(run)).toBe(false);
      expect(alive(run.pid)).toBe(false);
      expect(children.filter(alive)).toEqual([]);
      // reaped by its shim, which recorded how it ended: SIGKILL
      expect(readExit(run.dir)?.exitCode).toBe(137);
    });
  }

  it("lets a container that exits on SIGTERM finish within its grace period", async () => {
    const dir = join(base, "polite");
    const ready = join(base, "polite.ready");
    const { run } = await startContainer(
      dir,
      ["sh", "-c", `trap 'exit 0' TERM; sleep 1000 & echo $! >${ready}; wait`],
      { PATH: process.env.PATH ?? "/usr/bin:/bin" },
    );
    started.push(run.pid);
    // signalled before its trap is set, it would die of SIGTERM (143) rather than exit 0
    const child = await until(
      "the container's trap",
      10_000,
      async () => Number(readFileSync(ready, "utf8")) || undefined,
      20,
    );
    started.push(child);
    await stopContainer({ ...run, containerID: "polite" }, 30);
    expect(containerAlive(run)).toBe(false);
    expect(readExit(run.dir)?.exitCode).toBe(0);
  });

  it("kills at once when a later, shorter deletion says so", async () => {
    const { run, children } = await stubborn("shortened");
    // a graceful delete of 300 s, overridden by a forced one
    await stopContainer(run, 300, () => Date.now());
    expect(alive(run.pid)).toBe(false);
    expect(children.filter(alive)).toEqual([]);
  });

  it("records the end of a container stopped as it starts, and its shim exits", async () => {
    const dir = join(base, "early");
    const { run, child } = await startContainer(dir, ["sleep", "1000"], {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
    });
    started.push(run.pid);
    await stopContainer({ ...run, containerID: "early" }, 0);
    expect(containerAlive(run)).toBe(false);
    expect([137, 143]).toContain(readExit(dir)?.exitCode);
    await until("the shim's exit", 10_000, async () => (child.exitCode !== null ? true : undefined), 20);
  });

  it("is a no-op for a container already gone", async () => {
    const dir = join(base, "gone");
    const { run } = await startContainer(dir, ["true"], { PATH: process.env.PATH ?? "/usr/bin:/bin" });
    await until("the exit", 10_000, async () => readExit(dir), 20);
    await stopContainer({ ...run, containerID: "gone" }, 0);
    expect(readExit(dir)?.exitCode).toBe(0);
  });
});
