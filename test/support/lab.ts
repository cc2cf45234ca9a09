/**
 * A native `klab up` lab for the end-to-end suites, with the real kubectl and the klab CLI pointed
 * at it. Every suite gets its own lab name, KLAB_HOME and host ports, so suites run side by side.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { runCommand, until, type CommandResult } from "./wait.ts";

const root = resolve(import.meta.dirname, "../..");
const cli = join(root, "packages/cli/bin/klab.js");

export interface LabOptions {
  /** Up to 5 letters; the process id is appended so parallel suites never share a lab. */
  prefix: string;
  nodes?: number;
  /** Leave out the reference guide's example application. */
  bare?: boolean;
  proxyMode?: "iptables" | "ipvs" | "userspace";
}

export interface PodInfo {
  name: string;
  namespace: string;
  ip: string;
  node: string;
  ready: boolean;
  restarts: number;
}

export interface Lab {
  name: string;
  home: string;
  kubeconfig: string;
  apiPort: number;
  httpPort: number;
  httpsPort: number;
  env: NodeJS.ProcessEnv;
  /** Runs the klab CLI against this lab (add `--name lab.name` where the command takes it). */
  klab(args: string[], opts?: { timeoutMs?: number; input?: string }): Promise<CommandResult>;
  kubectl(
    args: string[],
    opts?: { timeoutMs?: number; input?: string; cwd?: string },
  ): Promise<CommandResult>;
  /** kubectl that throws with its stderr when it fails: for setup steps that must work. */
  kubectlOk(args: string[], opts?: { timeoutMs?: number; input?: string; cwd?: string }): Promise<string>;
  /** `kubectl exec` into a pod. */
  exec(namespace: string, pod: string, command: string[], timeoutMs?: number): Promise<CommandResult>;
  /** Running (not terminating) pods matching a label selector. */
  pods(namespace: string, selector: string): Promise<PodInfo[]>;
  /** Waits until exactly `count` Running pods match and all are Ready. */
  waitReady(namespace: string, selector: string, count: number, ms?: number): Promise<PodInfo[]>;
  down(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => ok(port));
    });
  });
}

/** Brings a lab up and waits for its system pods (`klab up` does); throws with klab's output if not. */
export async function startLab(opts: LabOptions): Promise<Lab> {
  const name = `${opts.prefix}${process.pid % 1000}`;
  const home = mkdtempSync(join(tmpdir(), `klab-${opts.prefix}-`));
  const env = { ...process.env, KLAB_HOME: home };
  const kubeconfig = join(home, name, "kubeconfig");
  const [apiPort, httpPort, httpsPort] = [await freePort(), await freePort(), await freePort()];

  const klab: Lab["klab"] = (args, o = {}) =>
    runCommand(process.execPath, [cli, ...args], { env, timeoutMs: o.timeoutMs ?? 120_000, input: o.input });
  const kubectl: Lab["kubectl"] = (args, o = {}) =>
    runCommand("kubectl", ["--kubeconfig", kubeconfig, ...args], {
      env,
      timeoutMs: o.timeoutMs ?? 60_000,
      input: o.input,
      cwd: o.cwd,
    });
  const kubectlOk: Lab["kubectlOk"] = async (args, o) => {
    const r = await kubectl(args, o);
    if (r.code !== 0)
      throw new Error(`kubectl ${args.join(" ")} failed (${r.code}): ${r.stderr || r.stdout}`);
    return r.stdout;
  };
  const pods: Lab["pods"] = async (namespace, selector) => {
    const out = await kubectlOk(["-n", namespace, "get", "pods", "-l", selector, "-o", "json"]);
    const list = JSON.parse(out) as {
      items: {
        metadata: { name: string; namespace: string; deletionTimestamp?: string };
        spec: { nodeName?: string };
        status: {
          podIP?: string;
          phase?: string;
          conditions?: { type: string; status: string }[];
          containerStatuses?: { restartCount: number }[];
        };
      }[];
    };
    return list.items
      .filter((p) => !p.metadata.deletionTimestamp && p.status.phase === "Running")
      .map((p) => ({
        name: p.metadata.name,
        namespace: p.metadata.namespace,
        ip: p.status.podIP ?? "",
        node: p.spec.nodeName ?? "",
        ready: !!p.status.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
        restarts: (p.status.containerStatuses ?? []).reduce((n, c) => n + c.restartCount, 0),
      }));
  };

  const lab: Lab = {
    name,
    home,
    kubeconfig,
    apiPort,
    httpPort,
    httpsPort,
    env,
    klab,
    kubectl,
    kubectlOk,
    pods,
    exec: (namespace, pod, command, timeoutMs = 60_000) =>
      kubectl(["-n", namespace, "exec", pod, "--", ...command], { timeoutMs }),
    waitReady: (namespace, selector, count, ms = 180_000) =>
      until(`${count} Ready pods ${namespace}/${selector}`, ms, async () => {
        const p = await pods(namespace, selector);
        return p.length === count && p.every((x) => x.ready) ? p : undefined;
      }),
    async down() {
      await klab(["down", "--name", name], { timeoutMs: 120_000 });
      rmSync(home, { recursive: true, force: true });
    },
  };

  const args = ["up", "--name", name, "--nodes", String(opts.nodes ?? 2)];
  args.push(
    "--api-port",
    String(apiPort),
    "--http-port",
    String(httpPort),
    "--https-port",
    String(httpsPort),
  );
  if (opts.bare) args.push("--bare");
  if (opts.proxyMode) args.push("--proxy-mode", opts.proxyMode);
  const up = await klab(args, { timeoutMs: 400_000 });
  if (up.code !== 0) {
    await lab.down().catch(() => undefined);
    throw new Error(`klab up failed (${up.code}):\n${up.stdout}\n${up.stderr}`);
  }
  return lab;
}
