/**
 * The container driver's roles (docker-compose.yml): each container runs one role, which starts
 * the same processes the native driver starts in a network namespace, here in the container's
 * own. The control plane shares the node kubeconfig with the nodes through a volume.
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { KubeClient } from "@klab/client";
import { writeKubeconfigFor } from "../kubeconfig-file.ts";
import type { Node } from "@klab/api";
import { klabBin } from "../native/processes.ts";
import { edgeAddress, internetCIDR, internetDNS } from "../native/plan.ts";
import { defaultSettings, installAddons } from "../addons/index.ts";

export const sharedDir = process.env.KLAB_SHARED_DIR ?? "/var/lib/klab-shared";
// Not under /var: pods mount volumes below /var (service-account token, kube-proxy config) through
// a private overlay that would hide a node state dir there, and kube-proxy must reach its nat.sock.
export const stateRoot = process.env.KLAB_STATE_DIR ?? "/klab-state";
export const nodeKubeconfig = join(sharedDir, "node-kubeconfig");
const apiPort = 6443;

/** This container's address and interface on the node network (KLAB_NODE_NETWORK, default 172.29.0.0/16). */
export function labInterface(network = process.env.KLAB_NODE_NETWORK ?? "172.29.0.0/16"): {
  ip: string;
  dev: string;
} {
  const prefix = network.split(".").slice(0, 2).join(".") + ".";
  const out = execFileSync("ip", ["-4", "-o", "addr", "show"], { encoding: "utf8" });
  for (const line of out.split("\n")) {
    const m = /^\d+:\s+(\S+)\s+inet (\d+\.\d+\.\d+\.\d+)\//.exec(line);
    if (m && m[2]!.startsWith(prefix)) return { dev: m[1]!, ip: m[2]! };
  }
  throw new Error(`no address in ${network} on this container: is it attached to the lab network?`);
}

export function labAddress(): string {
  return labInterface().ip;
}

/** The lab has no route out: drop the default route Docker gives a container on a published network. */
export function dropDefaultRoute(): void {
  try {
    execFileSync("ip", ["route", "del", "default"], { stdio: "ignore" });
  } catch {
    // None to drop (internal network only).
  }
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
  writeKubeconfigFor(kubeconfig, nodeKubeconfig, `https://${ip}:${apiPort}`, 0o644);
  if (outDir) {
    mkdirSync(outDir, { recursive: true });
    writeKubeconfigFor(kubeconfig, join(outDir, "kubeconfig"), `https://127.0.0.1:${apiPort}`, 0o644);
  }
  const client = KubeClient.fromKubeconfig(nodeKubeconfig);
  try {
    for (;;) {
      try {
        await client.request("GET", "/readyz");
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    const proxyMode = (process.env.KLAB_PROXY_MODE ?? "iptables") as "iptables" | "ipvs" | "userspace";
    await installAddons(
      client,
      { ...defaultSettings, apiServerURL: `https://${ip}:${apiPort}`, proxyMode },
      { example: process.env.KLAB_BARE !== "1" },
    );
  } finally {
    await client.close();
  }
  routePodCIDRsForever();
}

/**
 * The control plane reaches pods (replies to in-cluster clients of 10.96.0.1) as a control-plane
 * node does under flannel's host-gw: each node's podCIDR via that node. Nodes come and go, so
 * this is kept in step for as long as the role runs.
 */
function routePodCIDRsForever(): void {
  const client = KubeClient.fromKubeconfig(nodeKubeconfig);
  const sync = async () => {
    try {
      const nodes = await client.list<Node>("v1", "nodes");
      for (const n of nodes.items) {
        const via = n.status?.addresses?.find((a) => a.type === "InternalIP")?.address;
        if (n.spec?.podCIDR && via) execFileSync("ip", ["route", "replace", n.spec.podCIDR, "via", via]);
      }
    } catch (err) {
      process.stderr.write(`klab role: cannot route podCIDRs yet: ${(err as Error).message}\n`);
    }
  };
  void sync();
  setInterval(() => void sync(), 5_000);
}

export async function edge(): Promise<void> {
  dropDefaultRoute();
  const { dev } = labInterface();
  // What nodes send to the internet arrives mapped (see internetOnTheWire): back to 203.0.113.0/24.
  ensureNatRule(["PREROUTING", "-i", dev, "-d", internetOnTheWire(), "-j", "NETMAP", "--to", internetCIDR]);
  await waitForFile(nodeKubeconfig, "the control plane's node kubeconfig");
  const ingress = "ingress-nginx/ingress-nginx-controller";
  supervise([
    klab([
      "edge",
      "--kubeconfig",
      nodeKubeconfig,
      "--interface",
      dev,
      "--manage-routes",
      "--internet",
      "--publish",
      `tcp:0.0.0.0:8080=${ingress}:80`,
      `tcp:0.0.0.0:8443=${ingress}:443`,
    ]),
  ]);
}

/** Appends a nat-table rule unless it is there already (a restarted role keeps its container). */
function ensureNatRule(rule: string[]): void {
  try {
    execFileSync("iptables", ["-t", "nat", "-C", ...rule], { stdio: "ignore" });
  } catch {
    execFileSync("iptables", ["-t", "nat", "-A", ...rule]);
  }
}

/**
 * Docker drops packets on an internal network whose source is outside its subnet, so pod
 * addresses cannot leave a node container as they leave a native node: traffic from pods to
 * anything but pods (the API server, the edge) is masqueraded to the node's address, as
 * flannel's --ip-masq does. Pod-to-pod traffic crosses nodes inside VXLAN and keeps its source.
 */
function masqueradePodsLeavingTheNode(dev: string): void {
  const cidr = defaultSettings.clusterCIDR;
  ensureNatRule(["POSTROUTING", "-s", cidr, "!", "-d", cidr, "-o", dev, "-j", "MASQUERADE"]);
}

/**
 * The emulated internet's prefix as it crosses the Docker network: Docker's internal networks
 * also drop packets addressed outside their subnet (the host's DOCKER-ISOLATION-STAGE-1 rule
 * `! -d <subnet> -i <bridge> -j DROP`), and 203.0.113.0/24 is. So on that one wire the
 * internet's addresses travel mapped 1:1 (NETMAP) into a /24 of the node network that nothing
 * else uses; nodes, pods and the edge only ever see 203.0.113.0/24.
 */
export function internetOnTheWire(network = process.env.KLAB_NODE_NETWORK ?? "172.29.0.0/16"): string {
  return process.env.KLAB_INTERNET_ON_THE_WIRE ?? `${network.split(".").slice(0, 2).join(".")}.254.0/24`;
}

/** A node reaches the emulated internet through the edge, as the mapped prefix on the wire. */
function routeTheInternetViaTheEdge(dev: string): void {
  const wire = internetOnTheWire();
  // 203.0.113.0/24 keeps its route so that lab0 never claims it (the dataplane hands it to the kernel).
  execFileSync("ip", ["route", "replace", internetCIDR, "via", edgeAddress, "dev", dev]);
  execFileSync("ip", ["route", "replace", wire, "via", edgeAddress, "dev", dev]);
  // Pods' packets arrive from lab0 (PREROUTING); the node's own processes send them (OUTPUT).
  for (const chain of ["PREROUTING", "OUTPUT"])
    ensureNatRule([chain, "-d", internetCIDR, "-j", "NETMAP", "--to", wire]);
}

export async function node(name: string): Promise<void> {
  dropDefaultRoute();
  const { ip, dev } = labInterface();
  // The only way out of a node is the edge, which holds the emulated internet and its DNS.
  routeTheInternetViaTheEdge(dev);
  masqueradePodsLeavingTheNode(dev);
  writeFileSync("/etc/resolv.conf", `nameserver ${internetDNS}\n`);
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

interface Workload {
  status?: {
    replicas?: number;
    availableReplicas?: number;
    desiredNumberScheduled?: number;
    numberReady?: number;
  };
  spec?: { replicas?: number };
}

/** The lab is ready when its nodes are, and its addons and example serve. */
export async function labReady(
  client: KubeClient,
  expectedNodes: number,
  example: boolean,
): Promise<string | undefined> {
  const nodes = await client.list<Node>("v1", "nodes");
  const ready = nodes.items.filter((n) =>
    n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
  );
  if (ready.length < expectedNodes) return `${ready.length}/${expectedNodes} nodes Ready`;
  const deployments = [
    ["kube-system", "coredns"],
    ["ingress-nginx", "ingress-nginx-controller"],
    ...(example
      ? [
          ["default", "web"],
          ["default", "api"],
        ]
      : []),
  ];
  for (const [ns, name] of deployments) {
    const d = await client.get<Workload>("apps/v1", "deployments", ns, name!);
    const want = d?.spec?.replicas ?? 1;
    if ((d?.status?.availableReplicas ?? 0) < want) return `deployment ${ns}/${name} not available`;
  }
  const proxy = await client.get<Workload>("apps/v1", "daemonsets", "kube-system", "kube-proxy");
  const desired = proxy?.status?.desiredNumberScheduled ?? 0;
  if (desired === 0 || (proxy?.status?.numberReady ?? 0) < desired)
    return "daemonset kube-system/kube-proxy not ready";
  return undefined;
}

/** Exit status for Docker's healthcheck: 0 when this role is ready. */
export async function health(role: string, nodeName: string): Promise<boolean> {
  if (role === "edge") {
    try {
      const res = await fetch("http://127.0.0.1:9101/healthz");
      return res.ok;
    } catch {
      return false;
    }
  }
  if (!existsSync(nodeKubeconfig)) return false;
  const client = KubeClient.fromKubeconfig(nodeKubeconfig);
  try {
    if (role === "control-plane") {
      await client.request("GET", "/readyz");
      const notReady = await labReady(
        client,
        Number(process.env.KLAB_NODES ?? 0),
        process.env.KLAB_BARE !== "1",
      );
      if (notReady) process.stderr.write(`${notReady}\n`);
      return notReady === undefined;
    }
    const node = await client.get<Node>("v1", "nodes", undefined, nodeName);
    return node?.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
  } catch {
    return false;
  } finally {
    await client.close();
  }
}
