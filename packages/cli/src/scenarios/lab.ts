/**
 * The lab a scenario command works on: its API (a client and a kubeconfig for the real kubectl),
 * the host ports where it publishes the ingress, and how to run a command on one of its nodes
 * (the network namespace `klab exec-node` enters).
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { KubeClient } from "@klab/client";
import { labHome, planLab, type LabOptions } from "../native/plan.ts";

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runCommand(
  cmd: string,
  args: string[],
  opts: { timeoutMs?: number; input?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<CommandResult> {
  return new Promise((done) => {
    const child = execFile(
      cmd,
      args,
      { timeout: opts.timeoutMs ?? 60_000, maxBuffer: 32 << 20, env: opts.env ?? process.env },
      (err, stdout, stderr) => {
        const e = err as (NodeJS.ErrnoException & { code?: number | string; killed?: boolean }) | null;
        if (e && e.code === "ENOENT") {
          done({ code: 127, stdout: "", stderr: `${cmd}: command not found` });
          return;
        }
        const code = !e ? 0 : typeof e.code === "number" ? e.code : e.killed ? 124 : 1;
        done({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
    child.stdin?.end(opts.input ?? "");
  });
}

export interface LabTarget {
  name: string;
  client: KubeClient;
  kubeconfig: string;
  httpPort: number;
  httpsPort: number;
  /** Options the native lab was made with (lab.json), when it is a native lab on this machine. */
  options?: LabOptions;
  kubectl(args: string[], opts?: { timeoutMs?: number; input?: string }): Promise<CommandResult>;
  /** Runs a command in a node's network namespace, as `klab exec-node` does. */
  onNode(node: string, command: string[], timeoutMs?: number): Promise<CommandResult>;
  /** Runs the klab CLI itself (for `klab fault inject`). */
  klab(args: string[], timeoutMs?: number): Promise<CommandResult>;
  close(): Promise<void>;
}

const cli = resolve(import.meta.dirname, "../../bin/klab.js");

export function openLab(o: { name: string; kubeconfig?: string }): LabTarget {
  const stateDir = join(labHome(), o.name);
  const labJson = join(stateDir, "lab.json");
  const options = existsSync(labJson) ? (JSON.parse(readFileSync(labJson, "utf8")) as LabOptions) : undefined;
  const labKubeconfig = join(stateDir, "kubeconfig");
  const kubeconfig =
    o.kubeconfig ?? process.env.KUBECONFIG ?? (existsSync(labKubeconfig) ? labKubeconfig : undefined);
  if (!kubeconfig)
    throw new Error(
      `no kubeconfig for lab ${o.name}: start it with npx klab up --name ${o.name}, or pass --kubeconfig`,
    );
  const client = KubeClient.fromKubeconfig(kubeconfig);
  const plan = options ? planLab({ ...options, name: o.name }) : undefined;
  const lab: LabTarget = {
    name: o.name,
    client,
    kubeconfig,
    httpPort: options?.httpPort ?? 8080,
    httpsPort: options?.httpsPort ?? 8443,
    ...(options ? { options } : {}),
    kubectl: (args, opts = {}) => runCommand("kubectl", ["--kubeconfig", kubeconfig, ...args], opts),
    async onNode(node, command, timeoutMs = 60_000) {
      const member =
        plan?.nodes.find((n) => n.role === node) ??
        (node === "control-plane" ? plan?.controlPlane : undefined);
      if (!member)
        return {
          code: 1,
          stdout: "",
          stderr: plan
            ? `lab ${o.name} has no node "${node}" (nodes: ${plan.nodes.map((n) => n.role).join(", ")})`
            : `node probes need a native lab on this machine (no ${labJson})`,
        };
      return runCommand("ip", ["netns", "exec", member.netns, ...command], { timeoutMs });
    },
    klab: (args, timeoutMs = 120_000) =>
      runCommand(process.execPath, [cli, ...args, "--name", o.name, "--kubeconfig", kubeconfig], {
        timeoutMs,
      }),
    close: () => client.close(),
  };
  return lab;
}
