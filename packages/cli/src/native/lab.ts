/**
 * The native driver: the lab in network namespaces on this Linux machine.
 *
 *   <name>-lab            bridge klab0 (the node network, 172.29.0.0/16), no route anywhere else
 *   <name>-control-plane  eth0 172.29.0.2: the API server and its controllers
 *   <name>-node-N         eth0 172.29.0.(N+2): a node agent, its dataplane and its pods
 *
 * The host reaches the API server only through a relay on 127.0.0.1 that hands connections to a
 * unix socket, and a second relay inside the control-plane namespace that takes them on.
 */
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { KubeClient } from "@klab/client";
import { writeKubeconfigFor } from "../kubeconfig-file.ts";
import type { Node } from "@klab/api";
import { deleteNetns, ensureNetns, ip, linkExists, listNetns, netnsPids, sysctl } from "./netns.ts";
import { apiserverPortInLab, internetCIDR, internetDNS, type LabPlan, type Member } from "./plan.ts";
import { defaultSettings, installAddons } from "../addons/index.ts";
import { listProcessIds, runningPid, startProcess, stopProcess, terminate } from "./processes.ts";

export type Progress = (line: string) => void;

export function preflight(): string[] {
  const problems: string[] = [];
  if (process.platform !== "linux")
    problems.push("the native driver runs on Linux only: use `docker compose up`");
  if (process.getuid?.() !== 0) {
    problems.push("the native driver needs root (network namespaces and TUN devices): run it with sudo");
  }
  if (!existsSync("/dev/net/tun"))
    problems.push("/dev/net/tun is missing: load the tun module (modprobe tun)");
  return problems;
}

async function wireMember(plan: LabPlan, member: Member): Promise<void> {
  await ensureNetns(member.netns);
  if (!(await linkExists(member.bridgePort, plan.labNetns))) {
    await ip(
      ["link", "add", member.bridgePort, "type", "veth", "peer", "name", "eth0", "netns", member.netns],
      plan.labNetns,
    );
  }
  await ip(["link", "set", member.bridgePort, "master", plan.bridge, "up"], plan.labNetns);
  const addrs = await ip(["-4", "addr", "show", "dev", "eth0"], member.netns);
  if (!addrs.includes(`${member.ip}/`)) {
    await ip(["addr", "add", `${member.ip}/${plan.nodeNetworkPrefix}`, "dev", "eth0"], member.netns);
  }
  await ip(["link", "set", "eth0", "up"], member.netns);
}

async function waitFor<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  let lastError = "";
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}${lastError ? ` (last error: ${lastError})` : ""}`);
}

export interface UpOptions {
  /** Start node agents (false until a test wants only the control plane). */
  withNodes?: boolean;
  timeoutMs?: number;
}

export async function up(plan: LabPlan, progress: Progress, options: UpOptions = {}): Promise<void> {
  const problems = preflight();
  if (problems.length) throw new Error(problems.join("\n"));
  const timeout = options.timeoutMs ?? 120_000;
  mkdirSync(join(plan.stateDir, "run"), { recursive: true });

  progress(`creating the lab network ${plan.labNetns} (bridge ${plan.bridge}, no route out)`);
  await ensureNetns(plan.labNetns);
  if (!(await linkExists(plan.bridge, plan.labNetns))) {
    await ip(["link", "add", plan.bridge, "type", "bridge"], plan.labNetns);
  }
  await ip(["link", "set", plan.bridge, "up"], plan.labNetns);
  for (const member of [plan.controlPlane, plan.edge, ...plan.nodes]) await wireMember(plan, member);
  for (const node of plan.nodes) {
    await sysctl(node.netns, "net.ipv4.ip_forward", "1");
    // The only way out of a node is the edge, and all it holds is the emulated internet.
    await ip(["route", "replace", internetCIDR, "via", plan.edge.ip], node.netns);
    // `ip netns exec` shows a node this file as /etc/resolv.conf: dnsPolicy Default and
    // CoreDNS's `forward . /etc/resolv.conf` reach the emulated internet's DNS.
    mkdirSync(netnsEtc(node.netns), { recursive: true });
    writeFileSync(join(netnsEtc(node.netns), "resolv.conf"), `nameserver ${internetDNS}\n`);
  }

  progress(`starting the control plane in ${plan.controlPlane.netns} (${plan.controlPlane.ip})`);
  const cpState = join(plan.stateDir, "control-plane");
  startProcess(plan.stateDir, {
    id: "apiserver",
    netns: plan.controlPlane.netns,
    args: [
      "apiserver",
      "--state-dir",
      cpState,
      "--bind",
      "0.0.0.0",
      "--port",
      String(apiserverPortInLab),
      "--advertise-address",
      plan.controlPlane.ip,
    ],
  });
  startProcess(plan.stateDir, {
    id: "relay-apiserver-lab",
    netns: plan.controlPlane.netns,
    args: ["relay", "--listen", `unix:${plan.apiSocket}`, "--connect", `tcp:127.0.0.1:${apiserverPortInLab}`],
  });
  startProcess(plan.stateDir, {
    id: "relay-apiserver-host",
    args: ["relay", "--listen", `tcp:127.0.0.1:${plan.apiPort}`, "--connect", `unix:${plan.apiSocket}`],
  });
  const cpKubeconfig = join(cpState, "kubeconfig");
  await waitFor("the API server's kubeconfig", timeout, async () =>
    existsSync(cpKubeconfig) ? true : undefined,
  );
  writeKubeconfigFor(cpKubeconfig, plan.kubeconfig, `https://127.0.0.1:${plan.apiPort}`);
  writeKubeconfigFor(
    cpKubeconfig,
    plan.nodeKubeconfig,
    `https://${plan.controlPlane.ip}:${apiserverPortInLab}`,
  );
  const client = KubeClient.fromKubeconfig(plan.kubeconfig);
  try {
    await waitFor("the API server to answer on 127.0.0.1", timeout, async () => {
      await client.request("GET", "/readyz");
      return true;
    });
    progress(`API server ready at https://127.0.0.1:${plan.apiPort}`);
    const created = await installAddons(
      client,
      {
        ...defaultSettings,
        apiServerURL: `https://${plan.controlPlane.ip}:${apiserverPortInLab}`,
        proxyMode: plan.proxyMode,
      },
      { example: !plan.bare },
    );
    if (created.length)
      progress(
        `installed ${created.length} objects: kube-proxy, CoreDNS, ingress-nginx${plan.bare ? "" : ", the guide's example"}`,
      );
    startEdge(plan);
    if (options.withNodes === false) return;

    for (const node of plan.nodes) {
      progress(`starting ${node.role} in ${node.netns} (${node.ip})`);
      startProcess(plan.stateDir, {
        id: `node-agent-${node.role}`,
        netns: node.netns,
        args: [
          "node-agent",
          "--kubeconfig",
          plan.nodeKubeconfig,
          "--node-name",
          node.role,
          "--node-ip",
          node.ip,
          "--state-dir",
          join(plan.stateDir, "nodes", node.role),
          // Pods' namespaces carry the lab's name, so `klab down` finds them by its prefix.
          "--netns-prefix",
          plan.name,
        ],
      });
    }
    let lastReport = "";
    await waitFor(`${plan.nodes.length} Ready nodes`, timeout, async () => {
      const list = await client.list<Node>("v1", "nodes");
      const ready = list.items.filter((n) =>
        n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
      ).length;
      const report = `${ready}/${plan.nodes.length} nodes Ready`;
      if (report !== lastReport) progress(report);
      lastReport = report;
      return ready >= plan.nodes.length ? true : undefined;
    });
    // The control plane reaches pods (webhooks, and replies to in-cluster clients of
    // 10.96.0.1) the way flannel's host-gw routes a control-plane node: each podCIDR via its node.
    const nodes = await client.list<Node>("v1", "nodes");
    for (const n of nodes.items) {
      const via = n.status?.addresses?.find((a) => a.type === "InternalIP")?.address;
      if (n.spec?.podCIDR && via)
        await ip(["route", "replace", n.spec.podCIDR, "via", via], plan.controlPlane.netns);
    }
    await waitForSystemPods(client, progress, timeout);
  } finally {
    await client.close();
  }
}

interface WorkloadStatus {
  status?: {
    desiredNumberScheduled?: number;
    numberReady?: number;
    replicas?: number;
    readyReplicas?: number;
  };
  spec?: { replicas?: number };
}

/** The lab is usable once kube-proxy runs on every node and CoreDNS and the ingress are Ready. */
async function waitForSystemPods(client: KubeClient, progress: Progress, timeout: number): Promise<void> {
  const workloads = [
    { label: "kube-proxy", plural: "daemonsets", ns: "kube-system", name: "kube-proxy" },
    { label: "coredns", plural: "deployments", ns: "kube-system", name: "coredns" },
    { label: "ingress-nginx", plural: "deployments", ns: "ingress-nginx", name: "ingress-nginx-controller" },
  ];
  let lastReport = "";
  await waitFor("the system pods (kubectl get pods -A shows which is not Ready)", timeout, async () => {
    const parts: string[] = [];
    let done = true;
    for (const w of workloads) {
      const o = await client.get<WorkloadStatus>("apps/v1", w.plural, w.ns, w.name);
      if (!o) continue; // not installed (an addon the user removed)
      const want =
        w.plural === "daemonsets" ? (o.status?.desiredNumberScheduled ?? 0) : (o.spec?.replicas ?? 1);
      const ready = w.plural === "daemonsets" ? (o.status?.numberReady ?? 0) : (o.status?.readyReplicas ?? 0);
      parts.push(`${w.label} ${ready}/${want}`);
      if (want === 0 || ready < want) done = false;
    }
    const report = `system pods Ready: ${parts.join(", ")}`;
    if (report !== lastReport) progress(report);
    lastReport = report;
    return done ? true : undefined;
  });
}

function processesMentioning(text: string): number[] {
  // Every process is rooted in "/" and every command line contains "": only a lab's own directory.
  if (!text.startsWith("/") || text.split("/").filter(Boolean).length < 2)
    throw new Error(`refusing to look for processes of ${JSON.stringify(text)}: not a lab state dir`);
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      // A container process whose pod was torn down under it has left every named namespace, but
      // its root is still the pod's root under the state dir (shown with " (deleted)").
      const root = readlinkSync(`/proc/${entry}/root`);
      if (root.startsWith(`${text}/`) || readFileSync(`/proc/${entry}/cmdline`, "utf8").includes(text))
        pids.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

function netnsEtc(netns: string): string {
  return join("/etc/netns", netns);
}

function startEdge(plan: LabPlan): void {
  const ingress = "ingress-nginx/ingress-nginx-controller";
  startProcess(plan.stateDir, {
    id: "edge",
    netns: plan.edge.netns,
    args: [
      "edge",
      "--kubeconfig",
      plan.nodeKubeconfig,
      "--interface",
      "eth0",
      "--manage-routes",
      "--internet",
      "--publish",
      `unix:${plan.ingress.httpSocket}=${ingress}:80`,
      `unix:${plan.ingress.httpsSocket}=${ingress}:443`,
    ],
  });
  startProcess(plan.stateDir, {
    id: "relay-ingress-http",
    args: [
      "relay",
      "--listen",
      `tcp:127.0.0.1:${plan.ingress.httpPort}`,
      "--connect",
      `unix:${plan.ingress.httpSocket}`,
    ],
  });
  startProcess(plan.stateDir, {
    id: "relay-ingress-https",
    args: [
      "relay",
      "--listen",
      `tcp:127.0.0.1:${plan.ingress.httpsPort}`,
      "--connect",
      `unix:${plan.ingress.httpsSocket}`,
    ],
  });
}

/** Removes every process, namespace and file the lab made; safe on a half-made lab. */
export async function down(plan: LabPlan, progress: Progress): Promise<void> {
  const problems = preflight().filter((p) => !p.includes("/dev/net/tun"));
  if (problems.length) throw new Error(problems.join("\n"));
  // Node agents first, so they stop touching the API server and the pods.
  const ids = listProcessIds(plan.stateDir).sort(
    (a, b) => Number(b.startsWith("node")) - Number(a.startsWith("node")),
  );
  for (const id of ids) {
    progress(`stopping ${id}`);
    await stopProcess(plan.stateDir, id, 10_000);
  }
  const prefix = `${plan.name}-`;
  const namespaces = (await listNetns()).filter((ns) => ns.startsWith(prefix));
  // Container supervisors live in the nodes' namespaces and restart what dies in the pods':
  // stop everything in every lab namespace together, until nothing is left.
  for (let round = 0; round < 10; round++) {
    const pids = (await Promise.all(namespaces.map(netnsPids))).flat();
    if (!pids.length) break;
    await terminate(pids, round === 0 ? 5_000 : 0);
  }
  // Anything of the lab's that left its namespaces (or never entered one) is named by its state dir.
  const strays = processesMentioning(plan.stateDir);
  if (strays.length) await terminate(strays, 2_000);
  // Pods' namespaces before the nodes' and the lab's, so nothing is left half-connected.
  namespaces.sort((a, b) => Number(a === plan.labNetns) - Number(b === plan.labNetns) || b.length - a.length);
  for (const ns of namespaces) {
    progress(`deleting network namespace ${ns}`);
    await deleteNetns(ns);
    rmSync(netnsEtc(ns), { recursive: true, force: true });
  }
  rmSync(plan.stateDir, { recursive: true, force: true });
  progress(`lab ${plan.name} removed`);
}

export interface LabStatus {
  name: string;
  stateDir: string;
  namespaces: string[];
  processes: { id: string; pid?: number }[];
  kubeconfig?: string;
}

export async function status(plan: LabPlan): Promise<LabStatus> {
  const prefix = `${plan.name}-`;
  const namespaces =
    process.platform === "linux"
      ? (await listNetns().catch(() => [])).filter((n) => n.startsWith(prefix))
      : [];
  return {
    name: plan.name,
    stateDir: plan.stateDir,
    namespaces,
    processes: listProcessIds(plan.stateDir).map((id) => ({ id, pid: runningPid(plan.stateDir, id) })),
    kubeconfig: existsSync(plan.kubeconfig) ? plan.kubeconfig : undefined,
  };
}
