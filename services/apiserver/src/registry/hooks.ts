// Admission hooks: how in-process controllers (ClusterIP/NodePort allocators, GC, ...) take part
// in the apiserver's write path, as admission plugins do in kube-apiserver.
//
// Wiring is explicit: pass a HookMap to `createApiServer(config, { hooks })`. Keys name a resource
// the way Kubernetes prints a GroupResource: the plural, dotted with the group unless it is the core
// group: "services", "pods", "deployments.apps", "endpointslices.discovery.k8s.io". The key "*"
// runs for every resource. Several hooks per key run in array order.
import type { FieldError, KubeObject } from "@klab/api";

export interface HookContext {
  /** true for `?dryRun=All`: validate and mutate, but allocate nothing that outlives the request. */
  dryRun: boolean;
}

export interface AdmissionHooks {
  /** May mutate obj (e.g. assign clusterIP/nodePort) or return field errors (rendered as 422 Invalid). */
  beforeCreate?(obj: KubeObject, ctx: HookContext): FieldError[] | void;
  /** obj is the new object (mutable), old the stored one. Runs for spec and status writes alike. */
  beforeUpdate?(obj: KubeObject, old: KubeObject, ctx: HookContext): FieldError[] | void;
  /** Called once the object is gone from storage (not on dry runs, not when only marked for deletion). */
  afterDelete?(old: KubeObject): void;
}

export type HookMap = Record<string, AdmissionHooks | AdmissionHooks[]>;

/** "services", "deployments.apps": kube's GroupResource string. */
export function groupResource(group: string, plural: string): string {
  return group === "" ? plural : `${plural}.${group}`;
}

/** The hooks that apply to one resource, "*" first. */
export function hooksFor(map: HookMap | undefined, group: string, plural: string): AdmissionHooks[] {
  if (!map) return [];
  const out: AdmissionHooks[] = [];
  for (const key of ["*", groupResource(group, plural)]) {
    const h = map[key];
    if (h) out.push(...(Array.isArray(h) ? h : [h]));
  }
  return out;
}
