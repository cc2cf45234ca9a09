/**
 * What the two Service suites (lab-services, lab-services-ipvs) share: the backends, kube-proxy's
 * chain-name algorithm re-derived here (so the suites check the proxy against the algorithm, not
 * against itself), counting answers by backend pod, and switching kube-proxy's mode the way an
 * operator does (edit ConfigMap kube-system/kube-proxy, restart the DaemonSet's pods).
 */
import { createHash } from "node:crypto";
import { parseDocument, stringify } from "yaml";
import type { Lab } from "../support/lab.ts";
import { until, type CommandResult } from "../support/wait.ts";

export const NS = "svc-e2e";
const AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.52";

const netexec = {
  name: "netexec",
  image: AGNHOST,
  args: ["netexec", "--http-port=8080", "--udp-port=8081"],
  ports: [{ name: "http", containerPort: 8080 }],
  readinessProbe: { httpGet: { path: "/healthz", port: 8080 }, periodSeconds: 2 },
};

const service = (name: string, selector: Record<string, string>, spec: Record<string, unknown> = {}) => ({
  apiVersion: "v1",
  kind: "Service",
  metadata: { name, namespace: NS },
  spec: { selector, ports: [{ name: "http", port: 80, targetPort: 8080 }], ...spec },
});

/**
 * A Deployment of 3 agnhost netexec pods behind `backend` (plus a ClientIP-affinity twin and a
 * Service selecting nothing), a client pod, and one netexec pod pinned to node-1 behind two
 * NodePort Services that differ only in externalTrafficPolicy.
 */
export function backendManifests(): string {
  const objects = [
    { apiVersion: "v1", kind: "Namespace", metadata: { name: NS } },
    {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "backend", namespace: NS },
      spec: {
        replicas: 3,
        selector: { matchLabels: { app: "backend" } },
        template: { metadata: { labels: { app: "backend" } }, spec: { containers: [netexec] } },
      },
    },
    service("backend", { app: "backend" }),
    service("sticky", { app: "backend" }, { sessionAffinity: "ClientIP" }),
    service("nobody", { app: "no-such-pod" }),
    {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "client", namespace: NS, labels: { app: "client" } },
      spec: { containers: [{ name: "client", image: AGNHOST, args: ["pause"] }] },
    },
    {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "pinned", namespace: NS, labels: { app: "pinned" } },
      spec: { nodeName: "node-1", containers: [netexec] },
    },
    service("pinned-local", { app: "pinned" }, { type: "NodePort", externalTrafficPolicy: "Local" }),
    service("pinned-cluster", { app: "pinned" }, { type: "NodePort", externalTrafficPolicy: "Cluster" }),
  ];
  return objects.map((o) => stringify(o)).join("---\n");
}

export interface Backends {
  clusterIP: string;
  /** pod name -> pod IP */
  pods: Map<string, string>;
}

/** Applies the manifests and waits for the 3 backends, the client and the pinned pod. */
export async function deployBackends(lab: Lab): Promise<Backends> {
  await lab.kubectlOk(["apply", "-f", "-"], { input: backendManifests() });
  const pods = await lab.waitReady(NS, "app=backend", 3, 240_000);
  await lab.waitReady(NS, "app=client", 1, 240_000);
  await lab.waitReady(NS, "app=pinned", 1, 240_000);
  const clusterIP = await lab.kubectlOk([
    "-n",
    NS,
    "get",
    "svc",
    "backend",
    "-o",
    "jsonpath={.spec.clusterIP}",
  ]);
  return { clusterIP, pods: new Map(pods.map((p) => [p.name, p.ip])) };
}

export async function clusterIPOf(lab: Lab, name: string): Promise<string> {
  return lab.kubectlOk(["-n", NS, "get", "svc", name, "-o", "jsonpath={.spec.clusterIP}"]);
}

// --- kube-proxy's chain names (pkg/proxy/iptables/proxier.go), from the algorithm ---

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** RFC 4648 base32 (Go's base32.StdEncoding), without the padding kube-proxy cuts off anyway. */
export function base32(bytes: Uint8Array): string {
  let out = "";
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

const hash16 = (s: string) => base32(createHash("sha256").update(s).digest()).slice(0, 16);

/** KUBE-SVC-…: servicePortName ("ns/name:port") + lower-case protocol. */
export const svcChain = (servicePortName: string, protocol = "tcp") =>
  `KUBE-SVC-${hash16(servicePortName + protocol)}`;

/** KUBE-SEP-…: servicePortName + protocol + "ip:port". */
export const sepChain = (servicePortName: string, endpoint: string, protocol = "tcp") =>
  `KUBE-SEP-${hash16(servicePortName + protocol + endpoint)}`;

// --- counting answers ---

/** One curl, many connections: `Connection: close` makes every URL of the glob a new connection. */
export function curlMany(url: string, count: number): string[] {
  return ["curl", "-s", "--max-time", "10", "-H", "Connection: close", "-w", "\\n", `${url}?i=[1-${count}]`];
}

/** The answering pod of each line, in order; throws if any connection did not name a backend. */
export function answers(r: CommandResult, backends: Backends, expected: number): string[] {
  if (r.code !== 0) throw new Error(`client failed (${r.code}): ${r.stderr.slice(0, 500)}`);
  const lines = r.stdout.split("\n").filter((l) => l !== "");
  const unknown = lines.filter((l) => !backends.pods.has(l));
  if (unknown.length || lines.length !== expected) {
    throw new Error(
      `expected ${expected} answers from ${[...backends.pods.keys()].join(", ")}; got ${lines.length}, ` +
        `${unknown.length} unknown (first: ${JSON.stringify(unknown[0])})`,
    );
  }
  return lines;
}

export function tally(names: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const n of names) m.set(n, (m.get(n) ?? 0) + 1);
  return m;
}

// --- switching kube-proxy's mode ---

/** Edits config.conf in ConfigMap kube-system/kube-proxy and restarts kube-proxy on every node. */
export async function switchProxyMode(
  lab: Lab,
  mode: "iptables" | "ipvs",
  scheduler?: string,
): Promise<void> {
  const conf = await lab.kubectlOk([
    "-n",
    "kube-system",
    "get",
    "configmap",
    "kube-proxy",
    "-o",
    "jsonpath={.data.config\\.conf}",
  ]);
  const doc = parseDocument(conf);
  doc.set("mode", mode);
  if (scheduler !== undefined) doc.setIn(["ipvs", "scheduler"], scheduler);
  await lab.kubectlOk([
    "-n",
    "kube-system",
    "patch",
    "configmap",
    "kube-proxy",
    "--type=merge",
    "-p",
    JSON.stringify({ data: { "config.conf": doc.toString() } }),
  ]);
  await lab.kubectlOk(["-n", "kube-system", "rollout", "restart", "daemonset/kube-proxy"]);
  await lab.kubectlOk(["-n", "kube-system", "rollout", "status", "daemonset/kube-proxy", "--timeout=240s"], {
    timeoutMs: 260_000,
  });
}

/** `klab ipvsadm -Ln` on a node once its virtual server for ip:port has `servers` real servers. */
export async function ipvsadmShows(
  lab: Lab,
  node: string,
  vip: string,
  servers: number,
  scheduler = "rr",
): Promise<string> {
  return until(
    `${vip}:80 ${scheduler} with ${servers} real servers in ipvsadm on ${node}`,
    180_000,
    async () => {
      const r = await lab.klab(["ipvsadm", "--name", lab.name, "--node", node, "-Ln"]);
      if (r.code !== 0) return undefined;
      const block = virtualServerBlock(r.stdout, `TCP  ${vip}:80 ${scheduler}`);
      return block && block.filter((l) => l.includes("Masq")).length === servers ? r.stdout : undefined;
    },
  );
}

/** The lines of one virtual server in `ipvsadm -Ln` output: its header and its real servers. */
export function virtualServerBlock(text: string, header: string): string[] | undefined {
  const lines = text.split("\n");
  const i = lines.findIndex((l) => l.startsWith(header));
  if (i < 0) return undefined;
  const block = [lines[i]!];
  for (const l of lines.slice(i + 1)) {
    if (!l.startsWith("  ->")) break;
    block.push(l);
  }
  return block;
}
