// Node health as the node lifecycle controller judges it (pkg/controller/nodelifecycle), as
// functions of data: when a node's heartbeat (its Lease in kube-node-lease, or its Ready
// condition's lastHeartbeatTime) is older than the grace period its conditions become Unknown,
// and the taints follow the Ready condition.
import type { Condition, Lease, Node, Taint } from "@klab/api";

export const TAINT_NOT_READY = "node.kubernetes.io/not-ready";
export const TAINT_UNREACHABLE = "node.kubernetes.io/unreachable";
export const TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable";
export const NODE_LEASE_NAMESPACE = "kube-node-lease";
const KUBELET_CONDITIONS = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

function ms(t: string | undefined | null): number {
  const n = t ? Date.parse(t) : NaN;
  return Number.isNaN(n) ? 0 : n;
}

/** The most recent sign of life: the Lease renewal or the Ready condition's heartbeat. */
export function lastHeartbeat(node: Node, lease: Lease | undefined): number {
  const ready = node.status?.conditions?.find((c) => c.type === "Ready");
  return Math.max(ms(lease?.spec?.renewTime), ms(ready?.lastHeartbeatTime));
}

export interface HealthSettings {
  gracePeriodMs: number;
  startupGracePeriodMs: number;
}

/**
 * The conditions a node should carry now, or undefined if they stand. A node silent for longer
 * than the grace period (the startup grace period if it never reported) has every kubelet
 * condition set to Unknown.
 */
export function staleConditions(
  node: Node,
  lease: Lease | undefined,
  now: number,
  s: HealthSettings,
  nowText: string,
): Condition[] | undefined {
  const conds = node.status?.conditions ?? [];
  const ready = conds.find((c) => c.type === "Ready");
  const beat = lastHeartbeat(node, lease);
  const since = beat || ms(node.metadata.creationTimestamp);
  const grace = ready ? s.gracePeriodMs : s.startupGracePeriodMs;
  if (now - since <= grace) return undefined;
  const never = !ready;
  const reason = never ? "NodeStatusNeverUpdated" : "NodeStatusUnknown";
  const message = never ? "Kubelet never posted node status." : "Kubelet stopped posting node status.";
  let changed = false;
  const out: Condition[] = [];
  for (const type of KUBELET_CONDITIONS) {
    const cur = conds.find((c) => c.type === type);
    if (cur?.status === "Unknown") {
      out.push(cur);
      continue;
    }
    changed = true;
    out.push({
      type,
      status: "Unknown",
      lastHeartbeatTime: cur?.lastHeartbeatTime ?? node.metadata.creationTimestamp ?? nowText,
      lastTransitionTime: nowText,
      reason,
      message,
    });
  }
  for (const c of conds) if (!KUBELET_CONDITIONS.includes(c.type)) out.push(c);
  return changed ? out : undefined;
}

/**
 * The taints the Ready condition and spec.unschedulable imply (TaintNodesByCondition and
 * taint-based eviction): not-ready or unreachable NoSchedule+NoExecute, unschedulable NoSchedule.
 */
export function desiredReadinessTaints(node: Node, nowText: string): Taint[] {
  const ready = node.status?.conditions?.find((c) => c.type === "Ready");
  const key =
    !ready || ready.status === "Unknown"
      ? TAINT_UNREACHABLE
      : ready.status === "False"
        ? TAINT_NOT_READY
        : undefined;
  // A node that never reported Ready keeps whatever the kubelet registered it with.
  let taints = ready ? withTaints(node, key ? [key] : [], nowText) : [...(node.spec?.taints ?? [])];
  const cordoned = taints.some((t) => t.key === TAINT_UNSCHEDULABLE && t.effect === "NoSchedule");
  if (node.spec?.unschedulable && !cordoned) {
    taints.push({ key: TAINT_UNSCHEDULABLE, effect: "NoSchedule", timeAdded: nowText });
  }
  if (!node.spec?.unschedulable && cordoned) taints = taints.filter((t) => t.key !== TAINT_UNSCHEDULABLE);
  return taints;
}

function withTaints(node: Node, keys: string[], nowText: string): Taint[] {
  const current = node.spec?.taints ?? [];
  const out = current.filter(
    (t) => (t.key !== TAINT_NOT_READY && t.key !== TAINT_UNREACHABLE) || keys.includes(t.key),
  );
  for (const key of keys) {
    if (!out.some((t) => t.key === key && t.effect === "NoSchedule")) out.push({ key, effect: "NoSchedule" });
    if (!out.some((t) => t.key === key && t.effect === "NoExecute"))
      out.push({ key, effect: "NoExecute", timeAdded: nowText });
  }
  return out;
}

export function sameTaints(a: Taint[] | undefined, b: Taint[] | undefined): boolean {
  const k = (ts: Taint[] | undefined) =>
    (ts ?? [])
      .map((t) => `${t.key}=${t.value ?? ""}:${t.effect}`)
      .sort()
      .join(",");
  return k(a) === k(b);
}

/** A Lease as the kubelet keeps it in kube-node-lease (for node agents that heartbeat). */
export function nodeLease(
  nodeName: string,
  nodeUid: string | undefined,
  renewTime: string,
  durationSeconds = 40,
): Lease {
  const lease: Lease = {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: { name: nodeName, namespace: NODE_LEASE_NAMESPACE },
    spec: { holderIdentity: nodeName, leaseDurationSeconds: durationSeconds, renewTime },
  };
  if (nodeUid) {
    lease.metadata.ownerReferences = [{ apiVersion: "v1", kind: "Node", name: nodeName, uid: nodeUid }];
  }
  return lease;
}
