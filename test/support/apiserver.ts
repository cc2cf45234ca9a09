/**
 * Starts the real klab API server (`node packages/cli/bin/klab.js apiserver`) as a child process,
 * for tests that need a cluster API. Stable API, used by other suites:
 *
 *   const api = await startApiServer();            // fresh temp state dir, free port
 *   const api = await startApiServer({ stateDir, port });
 *   api.url         https://127.0.0.1:<port>
 *   api.kubeconfig  path of DIR/kubeconfig (cluster "klab", user "admin", context "klab")
 *   api.token       the admin bearer token;  api.caPem  the cluster CA (PEM);  api.stateDir
 *   api.pid()       the server's process id (changes after restart())
 *   await api.kubectl(["get", "pods", "-A"], { input })  → { stdout, stderr, code } (never throws)
 *   await api.stop()      SIGTERM, waits for a clean exit (code 0; state dir kept: restart() works
 *                         after it); rejects, after a SIGKILL, if the server does not stop in 30 s
 *   await api.kill9()     SIGKILL, waits for exit
 *   await api.restart()   stops it if running, starts again on the same state dir and port
 *
 * Temp state dirs it created are removed when the test process exits. kubectl runs with its
 * own discovery cache dir per server, so suites do not share stale discovery.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export interface KubectlResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface TestApiServer {
  url: string;
  kubeconfig: string;
  token: string;
  caPem: string;
  stateDir: string;
  pid(): number;
  kubectl(args: string[], opts?: { input?: string; timeoutMs?: number }): Promise<KubectlResult>;
  stop(): Promise<void>;
  kill9(): Promise<void>;
  restart(): Promise<void>;
}

const ROOT = resolve(import.meta.dirname, "../..");
const CLI = join(ROOT, "packages/cli/bin/klab.js");

const createdDirs: string[] = [];
const children = new Set<ChildProcess>();
process.once("exit", () => {
  for (const c of children) c.kill("SIGKILL");
  for (const d of createdDirs) rmSync(d, { recursive: true, force: true });
});

function waitExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((res) => child.once("exit", () => res()));
}

/** Spawns the server and resolves with its URL once it logs that it listens. */
function spawnServer(stateDir: string, port: number): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((res, rej) => {
    const child = spawn(
      process.execPath,
      [CLI, "apiserver", "--state-dir", stateDir, "--port", String(port)],
      {
        cwd: ROOT,
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    children.add(child);
    child.once("exit", () => children.delete(child));
    let out = "";
    let err = "";
    let done = false;
    const fail = (why: string) => {
      if (done) return;
      done = true;
      child.kill("SIGKILL");
      rej(
        new Error(
          `klab apiserver did not start: ${why}\nstdout:\n${out.slice(-4000)}\nstderr:\n${err.slice(-4000)}`,
        ),
      );
    };
    const timer = setTimeout(() => fail("no 'apiserver listening' log line within 60s"), 60_000);
    child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      if (done) {
        out = out.slice(-100_000);
        return;
      }
      for (const line of out.split("\n")) {
        if (!line.includes('"apiserver listening"')) continue;
        try {
          const rec = JSON.parse(line) as { url?: string };
          if (rec.url) {
            done = true;
            clearTimeout(timer);
            res({ child, url: rec.url });
            return;
          }
        } catch {
          // a partial line: wait for the rest
        }
      }
    });
    child.once("exit", (code, signal) => fail(`exited with ${code ?? signal}`));
  });
}

export async function startApiServer(
  opts: { stateDir?: string; port?: number } = {},
): Promise<TestApiServer> {
  let stateDir = opts.stateDir;
  if (!stateDir) {
    stateDir = mkdtempSync(join(tmpdir(), "klab-apiserver-"));
    createdDirs.push(stateDir);
  }
  let { child, url } = await spawnServer(stateDir, opts.port ?? 0);
  const port = Number(new URL(url).port);
  const kubeconfig = join(stateDir, "kubeconfig");
  const cacheDir = mkdtempSync(join(tmpdir(), "klab-kubecache-"));
  createdDirs.push(cacheDir);

  const api: TestApiServer = {
    url,
    kubeconfig,
    token: readFileSync(join(stateDir, "admin-token"), "utf8").trim(),
    caPem: readFileSync(join(stateDir, "pki", "ca.crt"), "utf8"),
    stateDir,
    pid: () => child.pid!,
    kubectl(args, o = {}) {
      return new Promise((res) => {
        const p = spawn("kubectl", args, {
          env: { ...process.env, KUBECONFIG: kubeconfig, KUBECACHEDIR: cacheDir },
          stdio: ["pipe", "pipe", "pipe"],
        });
        let stdout = "";
        let stderr = "";
        p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
        p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        const timer = setTimeout(() => p.kill("SIGKILL"), o.timeoutMs ?? 60_000);
        p.on("error", (e) => {
          clearTimeout(timer);
          res({ stdout, stderr: stderr + String(e), code: 127 });
        });
        p.on("close", (code) => {
          clearTimeout(timer);
          res({ stdout, stderr, code: code ?? 137 });
        });
        p.stdin.on("error", () => {});
        p.stdin.end(o.input ?? "");
      });
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
      await waitExit(child);
      clearTimeout(timer);
      if (child.exitCode !== 0) {
        throw new Error(
          `klab apiserver did not stop cleanly on SIGTERM (${child.exitCode ?? child.signalCode})`,
        );
      }
    },
    async kill9() {
      child.kill("SIGKILL");
      await waitExit(child);
    },
    async restart() {
      if (child.exitCode === null && child.signalCode === null) await api.stop();
      ({ child } = await spawnServer(stateDir, port));
    },
  };
  return api;
}
