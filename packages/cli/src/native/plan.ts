/**
 * The native lab's layout, as a function of its options: which network namespaces, links,
 * addresses and processes it is made of. `up` creates exactly this, `down` removes exactly
 * this, so the two can never disagree.
 */
import { homedir } from "node:os";
import { join } from "node:path";

export interface LabOptions {
  name: string;
  nodes: number;
  /** Where the lab keeps its state; defaults to $KLAB_HOME/<name> or ~/.klab/<name>. */
  stateDir?: string;
  apiPort: number;
  proxyMode: "iptables" | "ipvs" | "userspace";
  /** Host ports for the ingress (HTTP, HTTPS) on 127.0.0.1. */
  httpPort?: number;
  httpsPort?: number;
  /** Skip the guide's example application. */
  bare?: boolean;
}

export interface Member {
  /** "control-plane" or the Node name. */
  role: string;
  netns: string;
  /** Its address on the node network (eth0 inside its namespace). */
  ip: string;
  /** The bridge-side end of its veth, inside the lab namespace. */
  bridgePort: string;
}

export interface LabPlan {
  name: string;
  stateDir: string;
  /** Holds the node-network bridge; nothing in the lab has a route out of it. */
  labNetns: string;
  bridge: string;
  nodeNetworkPrefix: number;
  controlPlane: Member;
  /** The outside world: cloud load balancer, host publishing, the emulated internet. */
  edge: Member;
  nodes: Member[];
  apiPort: number;
  proxyMode: LabOptions["proxyMode"];
  /** The API server's socket, reachable from every namespace through the filesystem. */
  apiSocket: string;
  /** The ingress, published by the edge on these sockets and by relays on the host's ports. */
  ingress: { httpPort: number; httpsPort: number; httpSocket: string; httpsSocket: string };
  bare: boolean;
  /** The kubeconfig for the host (https://127.0.0.1:<apiPort>). */
  kubeconfig: string;
  /** The kubeconfig for node agents (https://172.29.0.2:6443 inside the lab). */
  nodeKubeconfig: string;
}

export const nodeNetwork = { base: [172, 29, 0, 0] as const, prefix: 16 };
export const apiserverPortInLab = 6443;
/** The edge sits at the top of the node network, next to the LoadBalancer pool. */
export const edgeAddress = "172.29.255.254";
export const internetCIDR = "203.0.113.0/24";
export const internetDNS = "203.0.113.53";

export function labHome(env = process.env): string {
  return env.KLAB_HOME ?? join(homedir(), ".klab");
}

const namePattern = /^[a-z0-9]([-a-z0-9]{0,14}[a-z0-9])?$/;

export function validateLabOptions(options: LabOptions): string[] {
  const problems: string[] = [];
  if (!namePattern.test(options.name)) {
    problems.push(`--name "${options.name}": use 1-16 lowercase letters, digits and '-' (e.g. klab)`);
  }
  if (!Number.isInteger(options.nodes) || options.nodes < 1 || options.nodes > 200) {
    problems.push(`--nodes ${options.nodes}: a lab has 1 to 200 nodes`);
  }
  if (!Number.isInteger(options.apiPort) || options.apiPort < 1 || options.apiPort > 65535) {
    problems.push(`--api-port ${options.apiPort}: not a TCP port`);
  }
  if (!["iptables", "ipvs", "userspace"].includes(options.proxyMode)) {
    problems.push(`--proxy-mode ${options.proxyMode}: use iptables, ipvs or userspace`);
  }
  return problems;
}

/** The node network address with host number n (control plane .0.2, nodes from .0.3). */
export function nodeNetworkAddress(n: number): string {
  const [a, b] = nodeNetwork.base;
  return `${a}.${b}.${Math.floor(n / 256)}.${n % 256}`;
}

export function planLab(options: LabOptions): LabPlan {
  const problems = validateLabOptions(options);
  if (problems.length) throw new Error(problems.join("\n"));
  const stateDir = options.stateDir ?? join(labHome(), options.name);
  const member = (role: string, host: number, port: string): Member => ({
    role,
    netns: `${options.name}-${role}`,
    ip: nodeNetworkAddress(host),
    bridgePort: port,
  });
  return {
    name: options.name,
    stateDir,
    labNetns: `${options.name}-lab`,
    bridge: "klab0",
    nodeNetworkPrefix: nodeNetwork.prefix,
    controlPlane: member("control-plane", 2, "vcp"),
    edge: { ...member("edge", 0, "vedge"), ip: edgeAddress },
    nodes: Array.from({ length: options.nodes }, (_, i) => member(`node-${i + 1}`, i + 3, `vn${i + 1}`)),
    apiPort: options.apiPort,
    proxyMode: options.proxyMode,
    apiSocket: join(stateDir, "run", "apiserver.sock"),
    ingress: {
      httpPort: options.httpPort ?? 8080,
      httpsPort: options.httpsPort ?? 8443,
      httpSocket: join(stateDir, "run", "ingress-http.sock"),
      httpsSocket: join(stateDir, "run", "ingress-https.sock"),
    },
    bare: options.bare ?? false,
    kubeconfig: join(stateDir, "kubeconfig"),
    nodeKubeconfig: join(stateDir, "node-kubeconfig"),
  };
}
