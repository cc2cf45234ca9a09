import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, expect, it } from "vitest";
import { describeWith } from "../../../../test/support/prereq.ts";
import { renderLines, splitRecords, type LogLine } from "../kubelet/logs.ts";

const SHIM = fileURLToPath(new URL("./shim.sh", import.meta.url));
const base = mkdtempSync(join(tmpdir(), "klab-shim-"));
afterAll(() => rmSync(base, { recursive: true, force: true }));

const PATH = process.env.PATH ?? "/usr/bin:/bin";

/** Runs one container through the shim as the agent starts it, and waits for the shim to end. */
async function runShim(
  name: string,
  argv: string[],
  env: Record<string, string> = { PATH },
): Promise<{ dir: string; records: LogLine[]; log: string }> {
  const dir = join(base, name);
  mkdirSync(dir);
  const shim = spawn("sh", [SHIM, dir, "--", ...argv], { detached: true, stdio: "ignore", env });
  const code = await new Promise<number | null>((resolve) => shim.once("exit", resolve));
  expect(code).toBe(0);
  const log = readFileSync(join(dir, "log"), "utf8");
  const { lines, rest } = splitRecords(log);
  expect(rest).toBe("");
  return { dir, records: lines, log };
}

const RFC3339_NANO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/;

function stream(records: LogLine[], s: "stdout" | "stderr"): string[] {
  return records.filter((r) => r.stream === s).map((r) => r.text);
}

describeWith({ tools: ["bash", "setsid", "mkfifo"] }, "container shim", () => {
  it("logs both streams in the CRI format, a line per line, and records pid and exit code", async () => {
    const before = Date.now();
    const script = [
      `printf 'first\\n\\n  two spaces  \\nback\\\\slash \\t tab\\n'`,
      `printf 'oops\\n' >&2`,
      `printf 'ünïcödé ✓\\n'`,
      `printf 'no newline at the end' >&2`,
      `printf 'last without newline'`,
      `echo $$ >pid.seen`,
      `exit 3`,
    ].join("; ");
    const { dir, records, log } = await runShim("format", ["sh", "-c", `cd ${base}/format && ${script}`]);
    for (const line of log.trimEnd().split("\n")) expect(line).toMatch(/^\S+ (stdout|stderr) F /);
    for (const r of records) {
      expect(r.time).toMatch(RFC3339_NANO_UTC);
      expect(r.full).toBe(true);
      const t = Date.parse(r.time);
      expect(t).toBeGreaterThanOrEqual(before - 1000);
      expect(t).toBeLessThanOrEqual(Date.now() + 1000);
    }
    expect(stream(records, "stdout")).toEqual([
      "first",
      "",
      "  two spaces  ",
      "back\\slash \t tab",
      "ünïcödé ✓",
      "last without newline",
    ]);
    expect(stream(records, "stderr")).toEqual(["oops", "no newline at the end"]);
    // what `kubectl logs` shows: the container's output, each line ended
    expect(
      renderLines(
        records.filter((r) => r.stream === "stderr"),
        { timestamps: false },
      ),
    ).toBe("oops\nno newline at the end\n");
    // the pid file names the container's own process (the shell that ran the script)
    expect(readFileSync(join(dir, "pid"), "utf8")).toBe(readFileSync(join(dir, "pid.seen"), "utf8"));
    const [code, at] = readFileSync(join(dir, "exit"), "utf8").trim().split(" ");
    expect(code).toBe("3");
    expect(at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    // the fifos go with the shim
    expect(existsSync(join(dir, "out"))).toBe(false);
    expect(existsSync(join(dir, "err"))).toBe(false);
  });

  it("takes thousands of lines from both streams at once, whole records, each stream in order", async () => {
    const N = 5000;
    // both streams at the same time, so their records are appended to the log side by side
    const script = `seq -f 'out line %g of a container writing as fast as it can' ${N} & seq -f 'err %g' ${N} >&2; wait`;
    const { records, log } = await runShim("many", ["sh", "-c", script]);
    expect(log.split("\n").length - 1).toBe(2 * N);
    const want = (f: (i: number) => string) => Array.from({ length: N }, (_, i) => f(i + 1));
    expect(stream(records, "stdout")).toEqual(
      want((i) => `out line ${i} of a container writing as fast as it can`),
    );
    expect(stream(records, "stderr")).toEqual(want((i) => `err ${i}`));
    for (const s of ["stdout", "stderr"] as const) {
      const times = records.filter((r) => r.stream === s).map((r) => r.time);
      for (let i = 1; i < times.length; i++) expect(times[i] >= times[i - 1]).toBe(true);
    }
  });

  it("records a container killed by a signal as 128 + the signal, and what it logged before", async () => {
    const { dir, records } = await runShim("killed", ["sh", "-c", "echo bye; kill -KILL $$"]);
    expect(stream(records, "stdout")).toEqual(["bye"]);
    expect(readFileSync(join(dir, "exit"), "utf8").split(" ")[0]).toBe("137");
  });

  it("logs why a command that does not exist did not start, and its exit code", async () => {
    const { dir, records } = await runShim("missing", ["/nonexistent/klab-no-such-command"]);
    const err = stream(records, "stderr").join("\n");
    expect(err).toContain("/nonexistent/klab-no-such-command");
    expect(Number(readFileSync(join(dir, "exit"), "utf8").split(" ")[0])).toBeGreaterThan(0);
  });

  it("refuses to start a container, with a message, where bash is missing for its loggers", async () => {
    const dir = join(base, "no-bash");
    mkdirSync(dir);
    const shim = spawn("/bin/sh", [SHIM, dir, "--", "/bin/echo", "never"], {
      stdio: ["ignore", "ignore", "pipe"],
      env: { PATH: join(base, "no-such-bin") },
    });
    let stderr = "";
    shim.stderr!.on("data", (b: Buffer) => (stderr += b.toString()));
    const code = await new Promise<number | null>((resolve) => shim.once("close", resolve));
    expect(code).toBe(127);
    expect(stderr).toContain("bash not found");
    expect(existsSync(join(dir, "pid"))).toBe(false);
  });

  it("keeps the container's environment its own, and the loggers unmoved by it", async () => {
    const marker = join(base, "bash-env-ran");
    const bashEnv = join(base, "bash-env.sh");
    writeFileSync(bashEnv, `echo sourced >${marker}\n`);
    const env = {
      PATH,
      KLAB_SHIM_TEST: "yes",
      // a logger that sourced it, timed its reads out or went POSIX would show here
      BASH_ENV: bashEnv,
      TMOUT: "1",
      POSIXLY_CORRECT: "1",
      TZ: "America/New_York",
      LC_ALL: "C.UTF-8",
    };
    // a pause longer than TMOUT between two lines
    const { records } = await runShim("env", ["sh", "-c", "env; sleep 1.5; echo after the pause"], env);
    const out = stream(records, "stdout");
    expect(out.at(-1)).toBe("after the pause");
    const seen = new Map(
      out.slice(0, -1).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
    );
    for (const [k, v] of Object.entries(env)) expect(seen.get(k)).toBe(v);
    // what a shell in between would add
    expect(seen.has("SHLVL")).toBe(false);
    expect(seen.has("_")).toBe(false);
    expect(existsSync(marker)).toBe(false);
    // UTC whatever the container's TZ
    for (const r of records) expect(r.time).toMatch(RFC3339_NANO_UTC);
  });
});
