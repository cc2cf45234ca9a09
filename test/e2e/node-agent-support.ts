/**
 * What the node-agent e2e suites share: a node namespace (the node's bridge and lab0 live there, no
 * route out) and a running `klab node-agent` against the real klab API server, whose kubelet proxy
 * carries kubectl's logs, exec and port-forward to the agent.
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, readFileSync, existsSync, readdirSync, readlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { TestApiServer, KubectlResult } from "../support/apiserver.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const CLI = join(ROOT, "packages/cli/bin/klab.js");

export interface Front {
  url: string;
  kubeconfig: string;
  kubectl(
    args: string[],
    opts?: { input?: string; timeoutMs?: number; env?: Record<string, string> },
  ): Promise<KubectlResult>;
  close(): Promise<void>;
}

/**
 * How the suites reach the cluster: the real klab API server, which serves pods/log, exec,
 * attach and portforward through kubeletProxyPlugin (services/apiserver/src/main.ts).
 */
export async function startFront(api: TestApiServer): Promise<Front> {
  return {
    url: api.url,
    kubeconfig: api.kubeconfig,
    kubectl: (args, o = {}) => api.kubectl(args, o),
    close: async () => {},
  };
}

export interface TestNode {
  name: string;
  /** The node's address: a loopback address of its own, so suites running side by side never share its ports (overlay 8472, kubelet). */
  ip: string;
  netns: string;
  prefix: string;
  stateDir: string;
  child: ChildProcess;
  log(): string;
  kill9(): Promise<void>;
  stop(): Promise<void>;
  restart(): Promise<void>;
  /** removes every pod namespace, process and the node namespace */
  cleanup(): Promise<void>;
}

function waitExit(c: ChildProcess): Promise<void> {
  return c.exitCode !== null || c.signalCode !== null
    ? Promise.resolve()
    : new Promise((r) => c.once("exit", () => r()));
}

/** Starts `klab node-agent` with its bridge in a fresh klabt- namespace and its pods in klabt- namespaces. */
export async function startNode(
  api: TestApiServer,
  name: string,
  opts: { podNetwork?: "tun" | "bridge" } = {},
): Promise<TestNode> {
  const tag = Math.random().toString(36).slice(2, 7);
  const octet = () => 1 + Math.floor(Math.random() * 250);
  const nodeIP = `127.${octet()}.${octet()}.${octet()}`;
  const prefix = `klabt${tag}`;
  const netns = `${prefix}-node`;
  execFileSync("ip", ["netns", "add", netns]);
  execFileSync("ip", ["-n", netns, "link", "set", "lo", "up"]);
  const stateDir = mkdtempSync(join(tmpdir(), "klabt-node-"));
  let out = "";
  const spawnAgent = () => {
    const child = spawn(
      process.execPath,
      [
        CLI,
        "node-agent",
        "--kubeconfig",
        api.kubeconfig,
        "--node-name",
        name,
        "--node-ip",
        nodeIP,
        "--state-dir",
        stateDir,
        "--netns-prefix",
        prefix,
        "--node-netns",
        netns,
        "--kubelet-port",
        "0",
      ],
      { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
    );
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    return child;
  };
  const ready = async (child: ChildProcess) => {
    for (let i = 0; i < 600; i++) {
      if (out.split("\n").filter((l) => l.includes('"node agent ready"')).length > restarts) return;
      if (child.exitCode !== null)
        throw new Error(`node agent exited (${child.exitCode}): ${out.slice(-6000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`node agent not ready: ${out.slice(-3000)}`);
  };
  let restarts = 0;
  const node: TestNode = {
    name,
    ip: nodeIP,
    netns,
    prefix,
    stateDir,
    child: spawnAgent(),
    log: () => out,
    async kill9() {
      node.child.kill("SIGKILL");
      await waitExit(node.child);
    },
    async stop() {
      node.child.kill("SIGTERM");
      await waitExit(node.child);
    },
    async restart() {
      restarts++;
      node.child = spawnAgent();
      await ready(node.child);
    },
    async cleanup() {
      node.child.kill("SIGKILL");
      await waitExit(node.child);
      const safe = <T>(f: () => T, dflt: T): T => {
        try {
          return f();
        } catch {
          return dflt;
        }
      };
      const mine = () =>
        safe(() => execFileSync("ip", ["netns", "list"]).toString(), "")
          .split("\n")
          .map((l) => l.split(" ")[0])
          .filter((n) => n.startsWith(`${prefix}-`));
      const victims = new Set<number>();
      for (const ns of mine())
        for (const p of safe(() => execFileSync("ip", ["netns", "pids", ns]).toString(), "")
          .split("\n")
          .filter(Boolean))
          victims.add(Number(p));
      // shims and infra processes of this node's pods: their command line or their root is under the state dir
      for (const pid of safe(() => readdirSync("/proc"), [] as string[]).filter((d) => /^\d+$/.test(d))) {
        const cmd = safe(() => readFileSync(`/proc/${pid}/cmdline`, "utf8"), "");
        const root = safe(() => readlinkSync(`/proc/${pid}/root`), "");
        if (cmd.includes(stateDir) || root.startsWith(stateDir)) victims.add(Number(pid));
      }
      for (const pid of victims) safe(() => process.kill(pid, "SIGKILL"), true);
      await new Promise((r) => setTimeout(r, 200));
      for (const ns of mine()) safe(() => execFileSync("ip", ["netns", "del", ns]), undefined);
      if (existsSync(stateDir)) rmSync(stateDir, { recursive: true, force: true });
    },
  };
  try {
    await ready(node.child);
  } catch (err) {
    await node.cleanup();
    throw err;
  }
  return node;
}

export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  timeoutMs = 60_000,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
}

export function readText(path: string): string {
  return readFileSync(path, "utf8");
}
