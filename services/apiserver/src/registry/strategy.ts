// Per-kind rules of the generic registry, as kube-apiserver's REST strategies state them:
// which kinds track metadata.generation, what status a new object starts with, and how
// a Scale subresource maps onto a workload.
import type { ResourceType } from "@klab/api";
import type { Obj } from "../storage/store.ts";

type Map = Record<string, unknown>;

/** Kinds whose strategy sets metadata.generation and bumps it when the spec changes. */
const TRACKS_GENERATION = new Set([
  "deployments.apps",
  "replicasets.apps",
  "daemonsets.apps",
  "statefulsets.apps",
  "ingresses.networking.k8s.io",
  "ingressclasses.networking.k8s.io",
  "networkpolicies.networking.k8s.io",
  "endpointslices.discovery.k8s.io",
]);

export function groupResourceOf(rt: ResourceType): string {
  return rt.group === "" ? rt.plural : `${rt.plural}.${rt.group}`;
}

export function tracksGeneration(rt: ResourceType): boolean {
  return TRACKS_GENERATION.has(groupResourceOf(rt));
}

/** Everything but metadata and status: a change here is a new generation. */
export function specOf(o: Obj): Map {
  const out: Map = {};
  for (const [k, v] of Object.entries(o))
    if (k !== "metadata" && k !== "status" && k !== "apiVersion" && k !== "kind") out[k] = v;
  return out;
}

function qosClass(pod: Obj): string {
  const spec = (pod.spec ?? {}) as { containers?: Array<{ resources?: { requests?: Map; limits?: Map } }> };
  const containers = spec.containers ?? [];
  let any = false;
  let guaranteed = containers.length > 0;
  for (const c of containers) {
    const req = c.resources?.requests ?? {};
    const lim = c.resources?.limits ?? {};
    if (Object.keys(req).length || Object.keys(lim).length) any = true;
    for (const r of ["cpu", "memory"]) {
      if (lim[r] === undefined) guaranteed = false;
      else if (req[r] !== undefined && String(req[r]) !== String(lim[r])) guaranteed = false;
    }
  }
  if (!any) return "BestEffort";
  return guaranteed ? "Guaranteed" : "Burstable";
}

/** PrepareForCreate: the status a new object starts with, whatever the client sent. */
export function initialStatus(rt: ResourceType, obj: Obj): void {
  if (!rt.subresources.includes("status")) return;
  switch (groupResourceOf(rt)) {
    case "nodes":
      // The kubelet registers its Node with the status it observes.
      return;
    case "namespaces":
      obj.status = { phase: "Active" };
      return;
    case "pods":
      obj.status = { phase: "Pending", qosClass: qosClass(obj) };
      return;
    case "services":
      obj.status = { loadBalancer: {} };
      return;
    default:
      obj.status = {};
  }
}

/** Namespaces are created with the "kubernetes" finalizer that the namespace controller removes. */
export function prepareCreate(rt: ResourceType, obj: Obj): void {
  if (groupResourceOf(rt) === "namespaces") {
    const spec = ((obj.spec as Map | undefined) ?? {}) as { finalizers?: string[] };
    if (!spec.finalizers?.includes("kubernetes"))
      spec.finalizers = [...(spec.finalizers ?? []), "kubernetes"];
    obj.spec = spec;
    const labels = (obj.metadata.labels ?? {}) as Record<string, string>;
    labels["kubernetes.io/metadata.name"] = obj.metadata.name!;
    obj.metadata.labels = labels;
  }
}

/** metav1.LabelSelector → the string form Scale.status.selector carries. */
export function selectorString(sel: unknown): string {
  const s = (sel ?? {}) as {
    matchLabels?: Record<string, string>;
    matchExpressions?: Array<{ key: string; operator: string; values?: string[] }>;
  };
  const parts: string[] = [];
  for (const [k, v] of Object.entries(s.matchLabels ?? {})) parts.push(`${k}=${v}`);
  for (const e of s.matchExpressions ?? []) {
    const vals = [...(e.values ?? [])].sort().join(",");
    if (e.operator === "In") parts.push(`${e.key} in (${vals})`);
    else if (e.operator === "NotIn") parts.push(`${e.key} notin (${vals})`);
    else if (e.operator === "Exists") parts.push(e.key);
    else if (e.operator === "DoesNotExist") parts.push(`!${e.key}`);
  }
  return parts.sort().join(",");
}

export function scaleOf(obj: Obj): Obj {
  const spec = (obj.spec ?? {}) as { replicas?: number; selector?: unknown };
  const status = (obj.status ?? {}) as { replicas?: number };
  const m = obj.metadata as Map;
  return {
    kind: "Scale",
    apiVersion: "autoscaling/v1",
    metadata: {
      name: obj.metadata.name,
      namespace: obj.metadata.namespace,
      uid: m.uid as string,
      resourceVersion: obj.metadata.resourceVersion,
      creationTimestamp: m.creationTimestamp as string,
    },
    spec: { replicas: spec.replicas ?? 1 },
    status: { replicas: status.replicas ?? 0, selector: selectorString(spec.selector) },
  };
}
