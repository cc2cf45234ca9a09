/**
 * NetworkPolicy compilation: every policy of the cluster turned into per-pod ingress and egress
 * allow-sets, a pure function of policies, pods and namespaces (recomputed when any of them
 * changes, labels included). Peers are resolved to pod IPs here, so the packet path only looks
 * up sets; named ports are resolved against the destination pod, at compile time for ingress
 * (the destination is the selected pod) and at evaluation for egress (it is the peer).
 *
 * Semantics follow networking.k8s.io/v1 and the upstream conformance model
 * (see shared/research/netpol.md): policyTypes defaulting, isolation per direction, union of
 * rules, AND within a peer and OR across peers, ipBlock matching pod IPs too, hostNetwork pods
 * ignored by selectors (they carry the node's IP).
 */
import {
  labelSelectorRequirements,
  labelsMatch,
  type LabelSelector,
  type LabelSelectorRequirement,
  type Namespace,
  type NetworkPolicy,
  type Pod,
} from "@klab/api";
import { parseCidr, inCidr, type Cidr } from "./cidr.ts";

export type PolicyProtocol = "TCP" | "UDP" | "SCTP";

/** A port entry of a rule: numeric (with optional endPort), named, or any port of a protocol. */
export type PortMatch =
  | { protocol: PolicyProtocol; kind: "any" }
  | { protocol: PolicyProtocol; kind: "range"; from: number; to: number }
  | { protocol: PolicyProtocol; kind: "named"; name: string };

export interface PeerMatch {
  /** Pod IPs selected by podSelector / namespaceSelector peers. */
  podIPs: Set<string>;
  ipBlocks: { cidr: Cidr; except: Cidr[] }[];
  /** The rule has no peers: every source or destination matches, external ones included. */
  any: boolean;
}

export interface CompiledRule {
  /** "namespace/name" of the policy the rule comes from. */
  policy: string;
  peers: PeerMatch;
  /** Empty: every port and protocol. */
  ports: PortMatch[];
}

export interface PodDirection {
  /** Policies that isolate the pod in this direction ("ns/name"); empty means not isolated. */
  isolatedBy: string[];
  rules: CompiledRule[];
}

export interface PodPolicy {
  namespace: string;
  name: string;
  ingress: PodDirection;
  egress: PodDirection;
}

export interface ContainerPort {
  name?: string;
  containerPort: number;
  protocol: PolicyProtocol;
}

export interface PolicyIndex {
  /** By pod IP, every (non-hostNetwork) pod with an IP. */
  pods: Map<string, PodPolicy>;
  /** Container ports by pod IP, for named ports of egress rules. */
  ports: Map<string, ContainerPort[]>;
  /** Policies that failed to compile (bad CIDR…), with why; they are skipped, not fatal. */
  errors: string[];
}

interface PodFacts {
  ip: string;
  namespace: string;
  name: string;
  labels: Record<string, string>;
  ports: ContainerPort[];
}

/** policyTypes as the API server defaults them: Ingress always, Egress only if egress rules exist. */
export function effectivePolicyTypes(p: NetworkPolicy): ("Ingress" | "Egress")[] {
  const given = p.spec?.policyTypes;
  if (given && given.length) return given as ("Ingress" | "Egress")[];
  return (p.spec?.egress?.length ?? 0) > 0 ? ["Ingress", "Egress"] : ["Ingress"];
}

function podFacts(pods: Pod[]): PodFacts[] {
  const facts: PodFacts[] = [];
  for (const pod of pods) {
    const ip = pod.status?.podIP;
    // hostNetwork pods share the node's IP: selectors ignore them, as most CNIs do.
    if (!ip || pod.spec?.hostNetwork) continue;
    if (pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed") continue;
    const ports: ContainerPort[] = [];
    for (const c of pod.spec?.containers ?? []) {
      for (const p of c.ports ?? []) {
        ports.push({
          name: p.name,
          containerPort: p.containerPort,
          protocol: (p.protocol ?? "TCP") as PolicyProtocol,
        });
      }
    }
    facts.push({
      ip,
      namespace: pod.metadata.namespace ?? "default",
      name: pod.metadata.name ?? "",
      labels: pod.metadata.labels ?? {},
      ports,
    });
  }
  return facts;
}

type Matcher = (labels: Record<string, string>) => boolean;

const API_OPERATOR: Record<string, LabelSelectorRequirement["operator"]> = {
  in: "In",
  "=": "In",
  "==": "In",
  notin: "NotIn",
  "!=": "NotIn",
  exists: "Exists",
  "!": "DoesNotExist",
};

/**
 * A label selector converted once (labelSelectorMatches re-validates on every call, which made
 * 1,000 policies over 1,000 pods take seconds). Invalid selectors match nothing, as in kube.
 */
function selectorMatcher(sel: LabelSelector | undefined): Matcher {
  if (!sel) return () => false;
  try {
    const reqs = labelSelectorRequirements(sel).map((r): LabelSelectorRequirement => ({
      key: r.key,
      operator: API_OPERATOR[r.op] ?? "In",
      values: r.values,
    }));
    if (reqs.length === 0) return () => true;
    return (labels) => labelsMatch(reqs, labels);
  } catch {
    return () => false;
  }
}

type NetworkPolicyPeer = NonNullable<
  NonNullable<NonNullable<NetworkPolicy["spec"]>["ingress"]>[number]["from"]
>[number];
type NetworkPolicyPort = NonNullable<
  NonNullable<NonNullable<NetworkPolicy["spec"]>["ingress"]>[number]["ports"]
>[number];

function compilePeers(
  peers: NetworkPolicyPeer[] | undefined,
  policyNamespace: string,
  pods: PodFacts[],
  namespaceLabels: Map<string, Record<string, string>>,
  errors: string[],
): PeerMatch {
  const match: PeerMatch = { podIPs: new Set(), ipBlocks: [], any: !peers || peers.length === 0 };
  for (const peer of peers ?? []) {
    if (peer.ipBlock) {
      try {
        match.ipBlocks.push({
          cidr: parseCidr(peer.ipBlock.cidr),
          except: (peer.ipBlock.except ?? []).map(parseCidr),
        });
      } catch (err) {
        // Fail closed: the peer matches nothing, the policy still isolates what it selects.
        errors.push((err as Error).message);
      }
      continue;
    }
    const nsSel = peer.namespaceSelector as LabelSelector | undefined;
    const podSel = peer.podSelector as LabelSelector | undefined;
    if (!nsSel && !podSel) continue; // Invalid ("must specify a peer"); the API rejects it.
    const nsMatch = nsSel ? selectorMatcher(nsSel) : undefined;
    const podMatch = podSel ? selectorMatcher(podSel) : undefined;
    const nsOK = new Map<string, boolean>();
    for (const pod of pods) {
      let ok = nsOK.get(pod.namespace);
      if (ok === undefined) {
        ok = nsMatch
          ? nsMatch(namespaceLabels.get(pod.namespace) ?? { "kubernetes.io/metadata.name": pod.namespace })
          : pod.namespace === policyNamespace;
        nsOK.set(pod.namespace, ok);
      }
      if (ok && (!podMatch || podMatch(pod.labels))) match.podIPs.add(pod.ip);
    }
  }
  return match;
}

function compilePorts(ports: NetworkPolicyPort[] | undefined): PortMatch[] {
  return (ports ?? []).map((p): PortMatch => {
    const protocol = (p.protocol ?? "TCP") as PolicyProtocol;
    if (p.port === undefined || p.port === null) return { protocol, kind: "any" };
    if (typeof p.port === "string") {
      // A numeric string is still a number to the API ("80" is IntOrString's string form of 80 only
      // when it is not a valid name); names are IANA_SVC_NAME, which cannot be all digits.
      if (/^\d+$/.test(p.port)) return { protocol, kind: "range", from: Number(p.port), to: Number(p.port) };
      return { protocol, kind: "named", name: p.port };
    }
    return { protocol, kind: "range", from: p.port, to: p.endPort ?? p.port };
  });
}

/** Resolves named ports of ingress rules against the selected pod itself. */
function resolveNamedPorts(ports: PortMatch[], podPorts: ContainerPort[]): PortMatch[] {
  return ports.map((p) => {
    if (p.kind !== "named") return p;
    const found = podPorts.find((c) => c.name === p.name && c.protocol === p.protocol);
    // Unresolvable: keeps isolating, matches nothing.
    return found
      ? { protocol: p.protocol, kind: "range", from: found.containerPort, to: found.containerPort }
      : p;
  });
}

export function compilePolicies(
  policies: NetworkPolicy[],
  pods: Pod[],
  namespaces: Namespace[],
): PolicyIndex {
  const facts = podFacts(pods);
  const namespaceLabels = new Map<string, Record<string, string>>();
  for (const ns of namespaces) {
    namespaceLabels.set(ns.metadata.name!, {
      "kubernetes.io/metadata.name": ns.metadata.name!,
      ...ns.metadata.labels,
    });
  }
  const index: PolicyIndex = { pods: new Map(), ports: new Map(), errors: [] };
  const byNamespace = new Map<string, PodFacts[]>();
  for (const pod of facts) {
    const l = byNamespace.get(pod.namespace);
    if (l) l.push(pod);
    else byNamespace.set(pod.namespace, [pod]);
  }
  for (const pod of facts) {
    index.pods.set(pod.ip, {
      namespace: pod.namespace,
      name: pod.name,
      ingress: { isolatedBy: [], rules: [] },
      egress: { isolatedBy: [], rules: [] },
    });
    index.ports.set(pod.ip, pod.ports);
  }
  const sorted = [...policies].sort((a, b) =>
    `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`),
  );
  for (const policy of sorted) {
    const ns = policy.metadata.namespace ?? "default";
    const id = `${ns}/${policy.metadata.name}`;
    const types = effectivePolicyTypes(policy);
    const selects = selectorMatcher((policy.spec?.podSelector ?? {}) as LabelSelector);
    const selected = (byNamespace.get(ns) ?? []).filter((p) => selects(p.labels));
    if (!selected.length) continue;
    const errors: string[] = [];
    {
      const ingressRules = types.includes("Ingress")
        ? (policy.spec?.ingress ?? []).map((r) => ({
            peers: compilePeers(r.from, ns, facts, namespaceLabels, errors),
            ports: compilePorts(r.ports),
          }))
        : [];
      const egressRules = types.includes("Egress")
        ? (policy.spec?.egress ?? []).map((r) => ({
            peers: compilePeers(r.to, ns, facts, namespaceLabels, errors),
            ports: compilePorts(r.ports),
          }))
        : [];
      for (const pod of selected) {
        const entry = index.pods.get(pod.ip)!;
        if (types.includes("Ingress")) {
          entry.ingress.isolatedBy.push(id);
          for (const r of ingressRules) {
            entry.ingress.rules.push({
              policy: id,
              peers: r.peers,
              ports: resolveNamedPorts(r.ports, pod.ports),
            });
          }
        }
        if (types.includes("Egress")) {
          entry.egress.isolatedBy.push(id);
          for (const r of egressRules) entry.egress.rules.push({ policy: id, ...r });
        }
      }
    }
    for (const e of errors) index.errors.push(`${id}: ${e}`);
  }
  return index;
}

export { inCidr };
