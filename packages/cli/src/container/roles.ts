/**
 * The container driver's roles (docker-compose.yml): each container runs one role, which starts
 * the same processes the native driver starts in a network namespace, here in the container's
 * own. The control plane shares the node kubeconfig with the nodes through a volume.
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { KubeClient } from "@klab/client";
import type { Node } from "@klab/api";
import { klabBin } from "../native/processes.ts";

export const sharedDir = process.env.KLAB_SHARED_DIR ?? "/var/lib/klab-shared";
export const stateRoot = process.env.KLAB_STATE_DIR ?? "/var/lib/klab";
export const nodeKubeconfig = join(sharedDir, "node-kubeconfig");
const apiPort = 6443;

/** This container's address on the node network (KLAB_NODE_NETWORK, default 172.29.0.0/16). */
export function labAddress(network = process.env.KLAB_NODE_NETWORK ?? "172.29.0.0/16"): string {
  const prefix = network.split(".").slice(0, 2).join(".") + ".";
  const out = execFileSync("ip", ["-4", "-o", "addr", "show"], { encoding: "utf8" });
  for (const line of out.split("\n")) {
    const m = /inet (\d+\.\d+\.\d+\.\d+)\//.exec(line);
    if (m && m[1]!.startsWith(prefix)) return m[1]!;
  }
  throw new Error(`no address in ${network} on this container: is it attached to the lab network?`);
}

/** The lab has no route out: drop the default route Docker gives a container on a published network. */
export function dropDefaultRoute(): void {
  try {
    execFileSync("ip", ["route", "del", "default"], { stdio: "ignore" });
  } catch {
    // None to drop (internal network only).
  }
}

function rewriteKubeconfig(source: string, target: string, server: string): void {
  const doc = parse(readFileSync(source, "utf8")) as { clusters: { cluster: { server: string } }[] };
  for (const c of doc.clusters) c.cluster.server = server;
  writeFileSync(target, stringify(doc), { mode: 0o644 });
}

async function waitForFile(path: string, what: string): Promise<void> {
  const started = Date.now();
  while (!existsSync(path)) {
    if (Date.now() - started > 300_000) throw new Error(`timed out waiting for ${what} (${path})`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Runs `klab ARGS…` as a child and exits with it; SIGTERM is passed on for a clean stop. */
function supervise(children: ChildProcess[]): void {
  const stop = () => {
    for (const c of children) c.kill("SIGTERM");
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
  for (const child of children) {
    child.once("exit", (code, signal) => {
      process.stderr.write(`klab role: ${child.spawnargs[2]} exited (${signal ?? code})\n`);
      stop();
      process.exitCode = code ?? 1;
    });
  }
}

function klab(args: string[]): ChildProcess {
  return spawn(process.execPath, [klabBin, ...args], { stdio: "inherit" });
}

export async function controlPlane(outDir: string | undefined): Promise<void> {
  dropDefaultRoute();
  const ip = labAddress();
  const stateDir = join(stateRoot, "control-plane");
  const apiserver = klab([
    "apiserver",
    "--state-dir",
    stateDir,
    "--bind",
    "0.0.0.0",
    "--port",
    String(apiPort),
    "--advertise-address",
    ip,
    "--tls-san",
    "127.0.0.1",
    "control-plane",
  ]);
  supervise([apiserver]);
  const kubeconfig = join(stateDir, "kubeconfig");
  await waitForFile(kubeconfig, "the API server's kubeconfig");
  mkdirSync(sharedDir, { recursive: true });
  rewriteKubeconfig(kubeconfig, nodeKubeconfig, `https://${ip}:${apiPort}`);
  if (outDir) {
    mkdirSync(outDir, { recursive: true });
    rewriteKubeconfig(kubeconfig, join(outDir, "kubeconfig"), `https://127.0.0.1:${apiPort}`);
  }
}

export async function node(name: string): Promise<void> {
  dropDefaultRoute();
  const ip = labAddress();
  await waitForFile(nodeKubeconfig, "the control plane's node kubeconfig");
  const agent = klab([
    "node-agent",
    "--kubeconfig",
    nodeKubeconfig,
    "--node-name",
    name,
    "--node-ip",
    ip,
    "--state-dir",
    join(stateRoot, "node"),
  ]);
  supervise([agent]);
}

/** Exit status for Docker's healthcheck: 0 when this role is ready. */
export async function health(role: string, nodeName: string): Promise<boolean> {
  if (!existsSync(nodeKubeconfig)) return false;
  const client = KubeClient.fromKubeconfig(nodeKubeconfig);
  try {
    if (role === "control-plane") {
      await client.request("GET", "/readyz");
      return true;
    }
    const node = await client.get<Node>("v1", "nodes", undefined, nodeName);
    return node?.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
  } catch {
    return false;
  } finally {
    await client.close();
  }
}
