import { describe, expect, it } from "vitest";
import { spawnCollect } from "./spawner.ts";
import { run, CommandError } from "./run.ts";

describe("commands run from worker threads", () => {
  it("returns the exit code, both streams and their order", async () => {
    const r = await spawnCollect({
      argv: ["sh", "-c", "echo one; echo two >&2; exit 3"],
      timeoutMs: 10_000,
      maxBytes: 1024,
    });
    expect(r).toMatchObject({ code: 3, stdout: "one\n", stderr: "two\n", timedOut: false });
    expect(r.out).toContain("one\n");
    expect(r.out).toContain("two\n");
  });

  it("passes input, environment and many commands at once", async () => {
    const rs = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        spawnCollect({
          argv: ["sh", "-c", 'cat; echo "$N"'],
          env: { N: String(i), PATH: process.env.PATH ?? "/usr/bin:/bin" },
          input: `in${i}\n`,
          timeoutMs: 10_000,
          maxBytes: 1024,
        }),
      ),
    );
    rs.forEach((r, i) => expect(r.stdout).toBe(`in${i}\n${i}\n`));
  });

  it("kills the whole process group on timeout", async () => {
    const r = await spawnCollect({
      argv: ["sh", "-c", "sleep 30 & sleep 30; echo never"],
      timeoutMs: 200,
      detached: true,
      maxBytes: 1024,
    });
    expect(r.timedOut).toBe(true);
    expect(r.code).toBeNull();
    expect(r.out).toBe("");
  });

  it("a command that does not exist is an error, not a crash", async () => {
    const r = await spawnCollect({ argv: ["/nonexistent/klab-cmd"], timeoutMs: 10_000, maxBytes: 1024 });
    expect(r.error).toMatch(/ENOENT/);
    await expect(run("/nonexistent/klab-cmd", [])).rejects.toBeInstanceOf(CommandError);
    await expect(run("sh", ["-c", "echo bad >&2; exit 2"])).rejects.toThrow(/exit 2\): bad/);
    expect(await run("sh", ["-c", "echo ok"])).toBe("ok\n");
  });
});

describe("a probe's shell", () => {
  it("runs with stdin on /dev/null, so bash does not take itself for a remote shell", async () => {
    const r = await spawnCollect({
      argv: ["bash", "-c", "readlink /proc/self/fd/0"],
      timeoutMs: 10_000,
      maxBytes: 1024,
    });
    expect(r.stdout).toBe("/dev/null\n");
  });
});
