/**
 * What the node-agent e2e suites share: a node namespace (the node's bridge lives there, no route
 * out), a running `klab node-agent`, and an API front that registers kubeletProxyPlugin the way the
 * API server does and passes every other request to the real klab API server behind it.
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import https from "node:https";
import {
  mkdtempSync,
  rmSync,
  writeFileSync,
  readFileSync,
  existsSync,
  readdirSync,
  readlinkSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import Fastify, { type FastifyInstance } from "fastify";
import { KubeClient } from "@klab/client";
import type { Node, Pod } from "@klab/api";
import { kubeletProxyPlugin, nodeKubeletAddress } from "../../services/apiserver/src/kubelet-proxy/index.ts";
import { ensureServingCert } from "../../services/node-agent/src/node/pki.ts";
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

/** An HTTPS API front: kubeletProxyPlugin + a pass-through to the real API server. */
export async function startFront(api: TestApiServer): Promise<Front> {
  const dir = mkdtempSync(join(tmpdir(), "klabt-front-"));
  const cert = await ensureServingCert(dir, "front", "127.0.0.1");
  const client = new KubeClient({ server: api.url, caPem: api.caPem, token: api.token });
  const app: FastifyInstance = Fastify({
    https: { key: cert.keyPem, cert: cert.certPem },
    logger: false,
    forceCloseConnections: true,
  });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "buffer" }, (_req, body, done) => done(null, body));
  await app.register(kubeletProxyPlugin, {
    resolvePod: (ns, name) => client.get<Pod>("v1", "pods", ns, name),
    resolveNodeAddress: async (n) => {
      const node = await client.get<Node>("v1", "nodes", undefined, n);
      return node ? nodeKubeletAddress(node) : undefined;
    },
    tls: { token: api.token },
    authorizeUpgrade: (req) => req.headers.authorization === `Bearer ${api.token}`,
  });
  const upstream = new URL(api.url);
  app.all("/*", (req, reply) => {
    reply.hijack();
    const up = https.request(
      {
        host: upstream.hostname,
        port: upstream.port,
        path: req.url,
        method: req.method,
        headers: { ...req.headers, host: upstream.host },
        ca: api.caPem,
      },
      (res) => {
        reply.raw.writeHead(res.statusCode ?? 502, res.headers);
        res.pipe(reply.raw);
        reply.raw.on("close", () => res.destroy());
      },
    );
    up.on("error", () => reply.raw.destroy());
    up.end(req.body as Buffer | undefined);
  });
  const url = await app.listen({ host: "127.0.0.1", port: 0 });
  const kubeconfig = join(dir, "kubeconfig");
  writeFileSync(
    kubeconfig,
    `apiVersion: v1\nkind: Config\nclusters: [{name: front, cluster: {server: "${url}", insecure-skip-tls-verify: true}}]\nusers: [{name: admin, user: {token: ${api.token}}}]\ncontexts: [{name: front, context: {cluster: front, user: admin, namespace: default}}]\ncurrent-context: front\n`,
  );
  const cacheDir = join(dir, "cache");
  return {
    url,
    kubeconfig,
    kubectl: (args, o = {}) =>
      new Promise((res) => {
        const p = spawn("kubectl", args, {
          env: { ...process.env, KUBECONFIG: kubeconfig, KUBECACHEDIR: cacheDir, ...(o.env ?? {}) },
          stdio: ["pipe", "pipe", "pipe"],
        });
        let stdout = "";
        let stderr = "";
        p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
        p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        const timer = setTimeout(() => p.kill("SIGKILL"), o.timeoutMs ?? 60_000);
        p.on("close", (code) => {
          clearTimeout(timer);
          res({ stdout, stderr, code: code ?? 137 });
        });
        p.stdin.on("error", () => {});
        p.stdin.end(o.input ?? "");
      }),
    close: async () => {
      await app.close();
      await client.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface TestNode {
  name: string;
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
        "127.0.0.1",
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
