// The resource types klab serves, described as kube-apiserver 1.32's discovery describes them
// (short names, categories and verbs as `kubectl api-resources -o wide` prints them).

export interface ResourceType {
  group: string;
  version: string;
  apiVersion: string;
  kind: string;
  listKind: string;
  plural: string;
  singular: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
  subresources: Array<"status" | "scale">;
  verbs: string[];
}

const ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];
/** Namespaces cannot be deleted as a collection. */
const NO_COLLECTION_DELETE = ["create", "delete", "get", "list", "patch", "update", "watch"];

function rt(
  group: string,
  version: string,
  kind: string,
  plural: string,
  namespaced: boolean,
  extra: Partial<Pick<ResourceType, "shortNames" | "categories" | "subresources" | "verbs">> = {},
): ResourceType {
  return {
    group,
    version,
    apiVersion: group === "" ? version : `${group}/${version}`,
    kind,
    listKind: `${kind}List`,
    plural,
    singular: kind.toLowerCase(),
    namespaced,
    shortNames: extra.shortNames ?? [],
    categories: extra.categories ?? [],
    subresources: extra.subresources ?? [],
    verbs: extra.verbs ?? ALL_VERBS,
  };
}

export const resourceTypes: ResourceType[] = [
  rt("", "v1", "Namespace", "namespaces", false, {
    shortNames: ["ns"],
    subresources: ["status"],
    verbs: NO_COLLECTION_DELETE,
  }),
  rt("", "v1", "Pod", "pods", true, { shortNames: ["po"], categories: ["all"], subresources: ["status"] }),
  rt("", "v1", "Service", "services", true, {
    shortNames: ["svc"],
    categories: ["all"],
    subresources: ["status"],
  }),
  rt("", "v1", "Endpoints", "endpoints", true, { shortNames: ["ep"] }),
  rt("", "v1", "Node", "nodes", false, { shortNames: ["no"], subresources: ["status"] }),
  rt("", "v1", "ConfigMap", "configmaps", true, { shortNames: ["cm"] }),
  rt("", "v1", "Secret", "secrets", true),
  rt("", "v1", "Event", "events", true, { shortNames: ["ev"] }),
  rt("", "v1", "ServiceAccount", "serviceaccounts", true, { shortNames: ["sa"] }),
  rt("apps", "v1", "Deployment", "deployments", true, {
    shortNames: ["deploy"],
    categories: ["all"],
    subresources: ["status", "scale"],
  }),
  rt("apps", "v1", "ReplicaSet", "replicasets", true, {
    shortNames: ["rs"],
    categories: ["all"],
    subresources: ["status", "scale"],
  }),
  rt("apps", "v1", "DaemonSet", "daemonsets", true, {
    shortNames: ["ds"],
    categories: ["all"],
    subresources: ["status"],
  }),
  rt("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", true),
  rt("networking.k8s.io", "v1", "Ingress", "ingresses", true, {
    shortNames: ["ing"],
    subresources: ["status"],
  }),
  rt("networking.k8s.io", "v1", "IngressClass", "ingressclasses", false),
  rt("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", true, { shortNames: ["netpol"] }),
  rt("coordination.k8s.io", "v1", "Lease", "leases", true),
];

const byPath = new Map<string, ResourceType>();
const byKind = new Map<string, ResourceType>();
for (const r of resourceTypes) {
  byPath.set(`${r.group}/${r.version}/${r.plural}`, r);
  byKind.set(`${r.apiVersion}/${r.kind}`, r);
}

/** The resource served at /api(s)/<group>/<version>/<plural>; group "" is the core group. */
export function findResource(group: string, version: string, plural: string): ResourceType | undefined {
  return byPath.get(`${group}/${version}/${plural}`);
}

/** The resource an object's apiVersion and kind belong to. */
export function resourceForKind(apiVersion: string, kind: string): ResourceType | undefined {
  return byKind.get(`${apiVersion}/${kind}`);
}

/**
 * The resource a user names on the command line: plural, singular, short name or kind,
 * optionally qualified by group (`deployments.apps`), as kubectl's RESTMapper resolves them.
 */
export function resolveResourceName(name: string): ResourceType | undefined {
  const lower = name.toLowerCase();
  const dot = lower.indexOf(".");
  const base = dot < 0 ? lower : lower.slice(0, dot);
  const group = dot < 0 ? undefined : lower.slice(dot + 1);
  return resourceTypes.find(
    (r) =>
      (group === undefined || r.group === group) &&
      (r.plural === base ||
        r.singular === base ||
        r.shortNames.includes(base) ||
        r.kind.toLowerCase() === base),
  );
}

/** The groups served, in discovery order, each with its versions. */
export function apiGroups(): Array<{ group: string; versions: string[] }> {
  const out: Array<{ group: string; versions: string[] }> = [];
  for (const r of resourceTypes) {
    let g = out.find((x) => x.group === r.group);
    if (!g) out.push((g = { group: r.group, versions: [] }));
    if (!g.versions.includes(r.version)) g.versions.push(r.version);
  }
  return out;
}
