// The scheduling decision as a function of data: the filters kube-scheduler runs by default that
// matter in a lab (NodeUnschedulable, NodeName, TaintToleration, NodeAffinity, NodePorts), then a
// score that spreads the pods of one owner over the nodes. Failure reasons are counted and worded
// as kube-scheduler's FitError prints them.
import type { Node, NodeSelectorRequirement, NodeSelectorTerm, Pod, Taint, Toleration } from "@klab/api";

export type ScheduleResult = { node: string } | { reasons: string };

export const ERR_NO_NODES = "no nodes available to schedule pods";
const REASON_UNSCHEDULABLE = "node(s) were unschedulable";
const REASON_NODE_NAME = "node(s) didn't match the requested node name";
const REASON_AFFINITY = "node(s) didn't match Pod's node affinity/selector";
const REASON_PORTS = "node(s) didn't have free ports for the requested pod ports";

/** v1helper.TolerationsTolerateTaint */
export function tolerates(t: Toleration, taint: Taint): boolean {
  if (t.effect && t.effect !== taint.effect) return false;
  if (t.key && t.key !== taint.key) return false;
  if (!t.key && t.operator !== "Exists") return false;
  switch (t.operator ?? "Equal") {
    case "Exists":
      return true;
    case "Equal":
      return (t.value ?? "") === (taint.value ?? "");
    default:
      return false;
  }
}

export function untoleratedTaint(
  taints: Taint[] | undefined,
  tolerations: Toleration[] | undefined,
  effects: Array<Taint["effect"]> = ["NoSchedule", "NoExecute"],
): Taint | undefined {
  return (taints ?? []).find(
    (taint) => effects.includes(taint.effect) && !(tolerations ?? []).some((t) => tolerates(t, taint)),
  );
}

function requirementMatches(r: NodeSelectorRequirement, value: string | undefined): boolean {
  const values = r.values ?? [];
  switch (r.operator) {
    case "In":
      return value !== undefined && values.includes(value);
    case "NotIn":
      return value === undefined || !values.includes(value);
    case "Exists":
      return value !== undefined;
    case "DoesNotExist":
      return value === undefined;
    case "Gt":
    case "Lt": {
      if (value === undefined || values.length !== 1) return false;
      const a = Number.parseInt(value, 10);
      const b = Number.parseInt(values[0]!, 10);
      if (Number.isNaN(a) || Number.isNaN(b)) return false;
      return r.operator === "Gt" ? a > b : a < b;
    }
    default:
      return false;
  }
}

export function nodeSelectorTermMatches(term: NodeSelectorTerm, node: Node): boolean {
  const exprs = term.matchExpressions ?? [];
  const fields = term.matchFields ?? [];
  // A term with no requirements matches no node (k8s.io/component-helpers nodeaffinity).
  if (exprs.length === 0 && fields.length === 0) return false;
  const labels = node.metadata.labels ?? {};
  return (
    exprs.every((r) => requirementMatches(r, labels[r.key])) &&
    fields.every((r) => requirementMatches(r, r.key === "metadata.name" ? node.metadata.name : undefined))
  );
}

/** nodeSelector and required node affinity, as the NodeAffinity filter checks them. */
export function nodeMatchesPod(pod: Pod, node: Node): boolean {
  const labels = node.metadata.labels ?? {};
  for (const [k, v] of Object.entries(pod.spec?.nodeSelector ?? {})) if (labels[k] !== v) return false;
  const required = pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  if (required) return required.nodeSelectorTerms.some((t) => nodeSelectorTermMatches(t, node));
  return true;
}

function hostPorts(pod: Pod): string[] {
  const out: string[] = [];
  for (const c of pod.spec?.containers ?? []) {
    for (const p of c.ports ?? []) {
      if (p.hostPort) out.push(`${p.hostIP || "0.0.0.0"}/${p.protocol ?? "TCP"}/${p.hostPort}`);
    }
  }
  return out;
}

function portsConflict(want: string[], used: Set<string>): boolean {
  for (const w of want) {
    const [ip, proto, port] = w.split("/");
    for (const u of used) {
      const [uip, uproto, uport] = u.split("/");
      if (proto === uproto && port === uport && (ip === uip || ip === "0.0.0.0" || uip === "0.0.0.0"))
        return true;
    }
  }
  return false;
}

/** The first filter a node fails for the pod, in kube-scheduler's plugin order, or undefined. */
export function filterNode(pod: Pod, node: Node, podsOnNode: Pod[]): string | undefined {
  const tolerations = pod.spec?.tolerations;
  if (
    node.spec?.unschedulable &&
    !(tolerations ?? []).some((t) =>
      tolerates(t, { key: "node.kubernetes.io/unschedulable", effect: "NoSchedule" }),
    )
  ) {
    return REASON_UNSCHEDULABLE;
  }
  if (pod.spec?.nodeName && pod.spec.nodeName !== node.metadata.name) return REASON_NODE_NAME;
  const taint = untoleratedTaint(node.spec?.taints, tolerations);
  if (taint) return `node(s) had untolerated taint {${taint.key}: ${taint.value ?? ""}}`;
  if (!nodeMatchesPod(pod, node)) return REASON_AFFINITY;
  const want = hostPorts(pod);
  if (want.length) {
    const used = new Set(podsOnNode.flatMap(hostPorts));
    if (portsConflict(want, used)) return REASON_PORTS;
  }
  return undefined;
}

/** Pods that count as "the same workload" for spreading: same controller, else same labels. */
function sameWorkload(a: Pod, b: Pod): boolean {
  const ca = a.metadata.ownerReferences?.find((r) => r.controller);
  const cb = b.metadata.ownerReferences?.find((r) => r.controller);
  if (ca || cb) return !!ca && !!cb && ca.uid === cb.uid;
  const la = a.metadata.labels ?? {};
  const lb = b.metadata.labels ?? {};
  const ka = Object.keys(la);
  return ka.length > 0 && ka.length === Object.keys(lb).length && ka.every((k) => la[k] === lb[k]);
}

function preferredScore(pod: Pod, node: Node): number {
  let score = 0;
  for (const p of pod.spec?.affinity?.nodeAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? []) {
    if (nodeSelectorTermMatches(p.preference, node)) score += p.weight;
  }
  // TaintToleration scoring: fewer intolerable PreferNoSchedule taints is better.
  const soft = (node.spec?.taints ?? []).filter(
    (t) => t.effect === "PreferNoSchedule" && !(pod.spec?.tolerations ?? []).some((x) => tolerates(x, t)),
  ).length;
  return score - soft * 100;
}

/**
 * FitError.Error(): `0/N nodes are available: <count> <reason>, .... preemption: ...`. Every filter
 * used here fails as UnschedulableAndUnresolvable, so preemption could never help.
 */
export function fitErrorMessage(total: number, counts: Map<string, number>): string {
  const parts = [...counts.entries()].map(([reason, n]) => `${n} ${reason}`).sort();
  let msg = `0/${total} nodes are available:`;
  if (parts.length) msg += ` ${parts.join(", ")}.`;
  msg += ` preemption: 0/${total} nodes are available: ${total} Preemption is not helpful for scheduling.`;
  return msg;
}

/**
 * Picks a node for the pod. `podsByNode` holds the pods already on (or assumed onto) each node.
 * Ties are broken by `random` as kube-scheduler's selectHost does.
 */
export function schedule(
  pod: Pod,
  nodes: Node[],
  podsByNode: Map<string, Pod[]>,
  random: () => number = Math.random,
): ScheduleResult {
  if (nodes.length === 0) return { reasons: ERR_NO_NODES };
  const counts = new Map<string, number>();
  const feasible: Node[] = [];
  for (const node of nodes) {
    const reason = filterNode(pod, node, podsByNode.get(node.metadata.name!) ?? []);
    if (reason) counts.set(reason, (counts.get(reason) ?? 0) + 1);
    else feasible.push(node);
  }
  if (feasible.length === 0) return { reasons: fitErrorMessage(nodes.length, counts) };

  let best: Node[] = [];
  let bestScore: [number, number, number] | undefined;
  for (const node of feasible) {
    const onNode = podsByNode.get(node.metadata.name!) ?? [];
    const score: [number, number, number] = [
      preferredScore(pod, node),
      -onNode.filter((p) => sameWorkload(p, pod)).length,
      -onNode.length,
    ];
    const cmp = bestScore ? compare(score, bestScore) : 1;
    if (cmp > 0) {
      best = [node];
      bestScore = score;
    } else if (cmp === 0) best.push(node);
  }
  return { node: best[Math.floor(random() * best.length)]!.metadata.name! };
}

function compare(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

/** Pods the scheduler is responsible for: unbound, not finished, not being deleted, ours by name. */
export function needsScheduling(pod: Pod): boolean {
  if (pod.spec?.nodeName) return false;
  if (pod.metadata.deletionTimestamp) return false;
  const phase = pod.status?.phase;
  if (phase === "Succeeded" || phase === "Failed") return false;
  const name = pod.spec?.schedulerName;
  return !name || name === "default-scheduler";
}
