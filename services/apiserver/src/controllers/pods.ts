// Pod facts the workload controllers share, as k8s.io/kubernetes/pkg/api/v1/pod and
// pkg/controller define them.
import type { Condition, KubeObject, ObjectMeta, OwnerReference, Pod, PodTemplateSpec } from "@klab/api";
import { generateName } from "./names.ts";

export function podReadyCondition(pod: Pod): Condition | undefined {
  return pod.status?.conditions?.find((c) => c.type === "Ready");
}

export function isPodReady(pod: Pod): boolean {
  return podReadyCondition(pod)?.status === "True";
}

/** Ready for at least minReadySeconds (podutil.IsPodAvailable). */
export function isPodAvailable(pod: Pod, minReadySeconds: number, now: number): boolean {
  const c = podReadyCondition(pod);
  if (c?.status !== "True") return false;
  if (!minReadySeconds) return true;
  const since = c.lastTransitionTime ? Date.parse(c.lastTransitionTime) : NaN;
  return !Number.isNaN(since) && since + minReadySeconds * 1000 <= now;
}

/** controller.IsPodActive: not finished and not being deleted. */
export function isPodActive(pod: Pod): boolean {
  const phase = pod.status?.phase;
  return phase !== "Succeeded" && phase !== "Failed" && !pod.metadata.deletionTimestamp;
}

export function ownerReference(owner: KubeObject): OwnerReference {
  return {
    apiVersion: owner.apiVersion,
    kind: owner.kind,
    name: owner.metadata.name!,
    uid: owner.metadata.uid!,
    controller: true,
    blockOwnerDeletion: true,
  };
}

export function isControlledBy(obj: KubeObject, owner: KubeObject): boolean {
  return !!obj.metadata.ownerReferences?.some((r) => r.controller && r.uid === owner.metadata.uid);
}

/** controller.GetPodFromTemplate: the pod a controller creates from its template. */
export function podFromTemplate(
  template: PodTemplateSpec | undefined,
  owner: KubeObject,
  extraLabels: Record<string, string> = {},
): Pod {
  const tm: ObjectMeta = template?.metadata ?? {};
  const metadata: ObjectMeta = {
    generateName: `${owner.metadata.name}-`,
    name: generateName(`${owner.metadata.name}-`),
    namespace: owner.metadata.namespace,
    labels: { ...(tm.labels ?? {}), ...extraLabels },
    ownerReferences: [ownerReference(owner)],
  };
  if (tm.annotations && Object.keys(tm.annotations).length) metadata.annotations = { ...tm.annotations };
  if (tm.finalizers?.length) metadata.finalizers = [...tm.finalizers];
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata,
    spec: structuredClone(template?.spec ?? { containers: [] }),
  };
}

/**
 * controller.ActivePodsWithRanks ordering: the pod to delete first sorts first. Unscheduled
 * before scheduled, Pending before Unknown before Running, not ready before ready, ready for
 * less time first, more restarts first, newer first.
 */
export function compareForDeletion(a: Pod, b: Pod): number {
  const bound = (p: Pod) => (p.spec?.nodeName ? 1 : 0);
  if (bound(a) !== bound(b)) return bound(a) - bound(b);
  const phaseRank = (p: Pod) => ({ Pending: 0, Unknown: 1, Running: 2 })[p.status?.phase as string] ?? 0;
  if (phaseRank(a) !== phaseRank(b)) return phaseRank(a) - phaseRank(b);
  const ready = (p: Pod) => (isPodReady(p) ? 1 : 0);
  if (ready(a) !== ready(b)) return ready(a) - ready(b);
  if (isPodReady(a) && isPodReady(b)) {
    const t = (p: Pod) => Date.parse(podReadyCondition(p)?.lastTransitionTime ?? "") || 0;
    if (t(a) !== t(b)) return t(b) - t(a);
  }
  const restarts = (p: Pod) =>
    Math.max(0, ...(p.status?.containerStatuses ?? []).map((c) => c.restartCount ?? 0));
  if (restarts(a) !== restarts(b)) return restarts(b) - restarts(a);
  const created = (p: Pod) => Date.parse(p.metadata.creationTimestamp ?? "") || 0;
  return created(b) - created(a);
}

/** A timestamp as the API writes it: RFC 3339 with whole seconds. */
export function apiTime(d: Date = new Date()): string {
  return d.toISOString().replace(/\.\d+Z$/, "Z");
}
