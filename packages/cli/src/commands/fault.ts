import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { isIPv4 } from "node:net";
import { join } from "node:path";
import type { Command } from "commander";
import type { ConfigMap, Node, Pod, Service } from "@klab/api";
import { ApiError, KubeClient } from "@klab/client";
import { FAULTS_CONFIGMAP, FAULTS_NAMESPACE } from "@klab/dataplane/faults/controller.ts";
import {
  DNS_FAULT_KINDS,
  FAULT_KINDS,
  FaultError,
  LINK_FAULT_KINDS,
  NODE_FAULT_KINDS,
  describeFault,
  isOneShotFault,
  faultToYaml,
  faultsFromData,
  parseDuration,
  parsePercent,
  parseRate,
  validateFault,
  type Fault,
  type FaultKind,
  type FaultTarget,
} from "@klab/dataplane/faults/model.ts";
import { labHome } from "../native/plan.ts";

// `klab fault inject KIND TARGET [--delay 100ms --jitter 10ms --loss 5% ...]`, `klab fault list`,
// `klab fault clear [ID]`: faults live in the ConfigMap kube-system/klab-faults (one key per
// fault), which the node agents and CoreDNS watch, so they outlive restarts of either.

export interface InjectOptions {
  id?: string;
  namespace?: string;
  peer?: string;
  port?: string;
  delay?: string;
  jitter?: string;
  percent?: string;
  loss?: string;
  rate?: string;
  burst?: string;
  mtu?: string;
  bytes?: string;
  max?: string;
  container?: string;
}

/** A target as typed: pod/NAME, node/NAME, service/NAME, an IP, IP:PORT, or a DNS name pattern. */
export interface TargetRef {
  kind: "pod" | "node" | "service" | "name";
  /** A name to look up, or an address already. */
  value: string;
}

export function parseTargetRef(kind: FaultKind, target: string | undefined): TargetRef {
  if (!target) throw new FaultError(`fault ${kind} needs a target (see klab fault inject --help)`);
  if ((DNS_FAULT_KINDS as readonly string[]).includes(kind)) return { kind: "name", value: target };
  const m = /^(pod|po|node|no|service|svc)\/(.+)$/.exec(target);
  const k = m ? (m[1]!.startsWith("po") ? "pod" : m[1]!.startsWith("no") ? "node" : "service") : undefined;
  const value = m ? m[2]! : target;
  // kill-container names a pod, the other node faults a node: a bare NAME means that.
  if (kind === "kill-container" || (NODE_FAULT_KINDS as readonly string[]).includes(kind)) {
    const want = kind === "kill-container" ? "pod" : "node";
    if (k && k !== want) throw new FaultError(`target ${target}: ${kind} targets ${want}/NAME`);
    return { kind: want, value };
  }
  if (k) return { kind: k, value };
  if ((LINK_FAULT_KINDS as readonly string[]).includes(kind)) {
    if (isIPv4(target)) return { kind: kind === "partition" ? "node" : "pod", value: target };
    throw new FaultError(`target ${target}: expected pod/NAME, node/NAME or a pod IP`);
  }
  if (/^[\d.]+:\d+$/.test(target)) return { kind: "service", value: target };
  throw new FaultError(`target ${target}: expected service/NAME or CLUSTER-IP:PORT`);
}

/** The fault the flags describe, with its target already resolved to addresses. */
export function buildFault(kind: string, target: FaultTarget, o: InjectOptions): Fault {
  if (!(FAULT_KINDS as readonly string[]).includes(kind))
    throw new FaultError(`unknown fault kind ${JSON.stringify(kind)}; one of ${FAULT_KINDS.join(", ")}`);
  const f: Record<string, unknown> = {
    id: o.id ?? `${kind}-${randomBytes(3).toString("hex")}`,
    kind,
    target,
  };
  if (o.delay !== undefined) f.delayMs = parseDuration(o.delay, "--delay");
  if (o.jitter !== undefined) f.jitterMs = parseDuration(o.jitter, "--jitter");
  const pct = o.loss ?? o.percent;
  if (pct !== undefined) f.percent = parsePercent(pct, o.loss !== undefined ? "--loss" : "--percent");
  if (o.rate !== undefined) f.rateBytesPerSecond = parseRate(o.rate);
  if (o.burst !== undefined) f.burstBytes = Number(o.burst);
  if (o.mtu !== undefined) f.mtu = Number(o.mtu);
  if (o.bytes !== undefined) f.bytes = Number(o.bytes);
  if (o.max !== undefined) f.max = Number(o.max);
  return validateFault(f);
}

async function resolveTarget(
  client: KubeClient,
  kind: FaultKind,
  ref: TargetRef,
  o: InjectOptions,
): Promise<FaultTarget> {
  const ns = o.namespace ?? "default";
  switch (ref.kind) {
    case "name":
      return { name: ref.value };
    case "pod": {
      if (kind === "kill-container") {
        const pod = await client.get<Pod>("v1", "pods", ns, ref.value);
        if (!pod) throw new FaultError(`pods "${ref.value}" not found in namespace ${ns}`);
        const names = (pod.spec?.containers ?? []).map((c) => c.name);
        if (o.container !== undefined && !names.includes(o.container))
          throw new FaultError(
            `container ${o.container} is not valid for pod ${ref.value}: one of ${names.join(", ")}`,
          );
        return { podName: `${ns}/${ref.value}`, ...(o.container ? { container: o.container } : {}) };
      }
      if (isIPv4(ref.value)) return { pod: ref.value };
      const pod = await client.get<Pod>("v1", "pods", ns, ref.value);
      if (!pod) throw new FaultError(`pods "${ref.value}" not found in namespace ${ns}`);
      if (!pod.status?.podIP) throw new FaultError(`pod ${ns}/${ref.value} has no IP yet`);
      return { pod: pod.status.podIP };
    }
    case "node": {
      const target: FaultTarget = { node: await nodeIP(client, ref.value) };
      if (o.peer) target.peer = await nodeIP(client, o.peer.replace(/^(node|no)\//, ""));
      return target;
    }
    case "service": {
      if (/^[\d.]+:\d+$/.test(ref.value)) return { service: ref.value };
      const svc = await client.get<Service>("v1", "services", ns, ref.value);
      if (!svc) throw new FaultError(`services "${ref.value}" not found in namespace ${ns}`);
      const ip = svc.spec?.clusterIP;
      if (!ip || !isIPv4(ip)) throw new FaultError(`service ${ns}/${ref.value} has no ClusterIP`);
      const ports = svc.spec?.ports ?? [];
      const port = o.port
        ? ports.find((p) => String(p.port) === o.port || p.name === o.port)?.port
        : ports.length === 1
          ? ports[0]!.port
          : undefined;
      if (port === undefined)
        throw new FaultError(
          o.port
            ? `service ${ns}/${ref.value} has no port ${o.port}`
            : `service ${ns}/${ref.value} has ${ports.length} ports: pick one with --port`,
        );
      return { service: `${ip}:${port}` };
    }
  }
}

async function nodeIP(client: KubeClient, name: string): Promise<string> {
  if (isIPv4(name)) return name;
  const node = await client.get<Node>("v1", "nodes", undefined, name);
  if (!node) throw new FaultError(`nodes "${name}" not found`);
  const ip = node.status?.addresses?.find((a) => a.type === "InternalIP")?.address;
  if (!ip) throw new FaultError(`node ${name} has no InternalIP`);
  return ip;
}

async function readFaults(client: KubeClient): Promise<ConfigMap | undefined> {
  return client.get<ConfigMap>("v1", "configmaps", FAULTS_NAMESPACE, FAULTS_CONFIGMAP);
}

export async function storeFault(client: KubeClient, f: Fault): Promise<void> {
  const data = { [f.id]: faultToYaml(f) };
  const cm = await readFaults(client);
  if (cm?.data?.[f.id] !== undefined) throw new FaultError(`fault ${f.id} already exists: clear it first`);
  if (!cm) {
    try {
      await client.create<ConfigMap>({
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: FAULTS_CONFIGMAP, namespace: FAULTS_NAMESPACE },
        data,
      });
      return;
    } catch (err) {
      if (!(err instanceof ApiError && err.code === 409)) throw err;
    }
  }
  await client.patch("v1", "configmaps", FAULTS_NAMESPACE, FAULTS_CONFIGMAP, { data });
}

/** Removes one fault (or all); returns the ids removed. */
export async function clearFaults(client: KubeClient, id?: string): Promise<string[]> {
  const cm = await readFaults(client);
  const ids = Object.keys(cm?.data ?? {});
  if (id !== undefined && !ids.includes(id)) throw new FaultError(`fault ${id} not found (klab fault list)`);
  const gone = id === undefined ? ids : [id];
  if (gone.length === 0) return [];
  // A merge patch with null deletes the key (RFC 7386).
  const patch = { data: Object.fromEntries(gone.map((k) => [k, null])) };
  await client.patch("v1", "configmaps", FAULTS_NAMESPACE, FAULTS_CONFIGMAP, patch);
  return gone;
}

/** One-shot faults leave klab-faults once the target's node agent carried them out. */
async function waitCarriedOut(client: KubeClient, id: string, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const cm = await readFaults(client);
    if (cm?.data?.[id] === undefined) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new FaultError(
    `fault ${id} was not carried out within ${timeoutMs / 1000}s (is its node agent running? klab fault clear ${id})`,
  );
}

export function formatFaultTable(faults: Fault[]): string {
  const rows = [["ID", "KIND", "TARGET"], ...faults.map((f) => [f.id, f.kind, describeFault(f)])];
  const widths = [0, 1].map((i) => Math.max(...rows.map((r) => r[i]!.length)) + 3);
  return rows.map((r) => r[0]!.padEnd(widths[0]!) + r[1]!.padEnd(widths[1]!) + r[2]).join("\n") + "\n";
}

function client(kubeconfig: string | undefined, lab: string): KubeClient {
  const labConfig = join(labHome(), lab, "kubeconfig");
  if (!kubeconfig && !process.env.KUBECONFIG && existsSync(labConfig))
    return KubeClient.fromKubeconfig(labConfig);
  return KubeClient.resolve(kubeconfig);
}

async function withClient<T>(
  o: { kubeconfig?: string; name: string },
  fn: (c: KubeClient) => Promise<T>,
): Promise<T> {
  const c = client(o.kubeconfig, o.name);
  try {
    return await fn(c);
  } finally {
    await c.close();
  }
}

export function register(program: Command): void {
  const fault = program
    .command("fault")
    .description(
      "break the lab's network on purpose: inject, list and clear faults (kube-system/klab-faults)",
    );
  const common = (c: Command) =>
    c
      .option("--kubeconfig <path>", "kubeconfig (default: $KUBECONFIG, else the lab's)")
      .option("--name <name>", "the lab's name", "klab");

  common(
    fault
      .command("inject")
      .argument("<kind>", `one of ${FAULT_KINDS.join(", ")}`)
      .argument("[target]", "pod/NAME or pod IP, node/NAME, service/NAME or IP:PORT, or a DNS name pattern")
      .description("inject a fault; it stays until `klab fault clear`")
      .option("--id <id>", "the fault's id (default: KIND-<random>)")
      .option("-n, --namespace <ns>", "namespace of a pod/ or service/ target", "default")
      .option("--peer <node>", "node faults: only between the target node and this one")
      .option("--port <port>", "service faults: the Service port (number or name)")
      .option("--delay <duration>", "delay, dns-delay: added latency; slow-close: how long a FIN waits")
      .option("--jitter <duration>", "delay: ± jitter, e.g. 10ms")
      .option("--loss <percent>", "loss: share of packets dropped, e.g. 5%")
      .option("--percent <percent>", "duplicate, corrupt: share of packets affected")
      .option("--rate <rate>", "bandwidth: e.g. 1mbit, 512kbit, 100kbps")
      .option("--burst <bytes>", "bandwidth: bucket size in bytes")
      .option("--mtu <bytes>", "mtu: larger packets with DF set are black-holed")
      .option("--bytes <n>", "limit-data: bytes a Service may send on a connection before it is reset")
      .option("--max <n>", "conntrack-fill: nf_conntrack_max while the fault lasts (default 4096)")
      .option("--container <name>", "kill-container: which container (default: the first)"),
  ).action(
    async (
      kind: string,
      target: string | undefined,
      o: InjectOptions & { kubeconfig?: string; name: string },
    ) => {
      const k = kind as FaultKind;
      if (!(FAULT_KINDS as readonly string[]).includes(kind))
        throw new FaultError(`unknown fault kind ${JSON.stringify(kind)}; one of ${FAULT_KINDS.join(", ")}`);
      const ref = parseTargetRef(k, target);
      const f = await withClient(o, async (c) => {
        const built = buildFault(k, await resolveTarget(c, k, ref, o), o);
        await storeFault(c, built);
        if (isOneShotFault(built)) await waitCarriedOut(c, built.id);
        return built;
      });
      process.stdout.write(`fault/${f.id} injected (${f.kind} ${describeFault(f)})\n`);
    },
  );

  common(
    fault
      .command("list")
      .description("list the faults in effect")
      .option("-o, --output <format>", "table or yaml", "table"),
  ).action(async (o: { kubeconfig?: string; name: string; output: string }) => {
    if (o.output !== "table" && o.output !== "yaml")
      throw new FaultError(`-o ${o.output}: use table or yaml`);
    const cm = await withClient(o, (c) => readFaults(c));
    const { faults, errors } = faultsFromData(cm?.data);
    for (const e of errors) process.stderr.write(`warning: ${e}\n`);
    if (faults.length === 0) {
      process.stderr.write("No faults found.\n");
      return;
    }
    process.stdout.write(
      o.output === "yaml" ? faults.map(faultToYaml).join("---\n") : formatFaultTable(faults),
    );
  });

  common(
    fault
      .command("clear")
      .argument("[id]", "the fault to clear (default: all)")
      .description("remove a fault, or all"),
  ).action(async (id: string | undefined, o: { kubeconfig?: string; name: string }) => {
    const gone = await withClient(o, (c) => clearFaults(c, id));
    for (const g of gone) process.stdout.write(`fault/${g} cleared\n`);
    if (gone.length === 0) process.stderr.write("No faults found.\n");
  });
}
