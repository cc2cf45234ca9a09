// Discovery documents: legacy (/api, /apis, /api/v1, /apis/<g>/<v>) and aggregated
// (apidiscovery.k8s.io/v2 and v2beta1, KEP-3352), built from the resource table.
import type { ResourceType } from "@klab/api";

interface SubresourceDoc {
  name: string;
  group?: string;
  version?: string;
  kind: string;
  verbs: string[];
}

/** The subresources a resource type serves, with the kinds their endpoints speak. */
export function subresourcesOf(rt: ResourceType): SubresourceDoc[] {
  const out: SubresourceDoc[] = [];
  if (rt.subresources.includes("status"))
    out.push({ name: "status", kind: rt.kind, verbs: ["get", "patch", "update"] });
  if (rt.subresources.includes("scale")) {
    out.push({
      name: "scale",
      group: "autoscaling",
      version: "v1",
      kind: "Scale",
      verbs: ["get", "patch", "update"],
    });
  }
  if (rt.group === "" && rt.plural === "namespaces")
    out.push({ name: "finalize", kind: "Namespace", verbs: ["update"] });
  if (rt.group === "" && rt.plural === "pods")
    out.push({ name: "binding", kind: "Binding", verbs: ["create"] });
  return out;
}

export function groupVersions(types: ResourceType[]): Array<{ group: string; versions: string[] }> {
  const out: Array<{ group: string; versions: string[] }> = [];
  for (const r of types) {
    let g = out.find((x) => x.group === r.group);
    if (!g) out.push((g = { group: r.group, versions: [] }));
    if (!g.versions.includes(r.version)) g.versions.push(r.version);
  }
  return out;
}

export function apiVersions(serverAddress: string): object {
  return {
    kind: "APIVersions",
    versions: ["v1"],
    serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress }],
  };
}

export function apiGroupList(types: ResourceType[]): object {
  return {
    kind: "APIGroupList",
    apiVersion: "v1",
    groups: groupVersions(types)
      .filter((g) => g.group !== "")
      .map((g) => ({
        name: g.group,
        versions: g.versions.map((v) => ({ groupVersion: `${g.group}/${v}`, version: v })),
        preferredVersion: { groupVersion: `${g.group}/${g.versions[0]}`, version: g.versions[0] },
      })),
  };
}

export function apiResourceList(types: ResourceType[], group: string, version: string): object | undefined {
  const rts = types.filter((r) => r.group === group && r.version === version);
  if (rts.length === 0) return undefined;
  const resources: object[] = [];
  for (const r of rts) {
    const main: Record<string, unknown> = {
      name: r.plural,
      singularName: r.singular,
      namespaced: r.namespaced,
      kind: r.kind,
      verbs: r.verbs,
    };
    if (r.shortNames.length) main.shortNames = r.shortNames;
    if (r.categories.length) main.categories = r.categories;
    resources.push(main);
    for (const s of subresourcesOf(r)) {
      const sub: Record<string, unknown> = {
        name: `${r.plural}/${s.name}`,
        singularName: "",
        namespaced: r.namespaced,
      };
      if (s.group) sub.group = s.group;
      if (s.version) sub.version = s.version;
      sub.kind = s.kind;
      sub.verbs = s.verbs;
      resources.push(sub);
    }
  }
  return {
    kind: "APIResourceList",
    apiVersion: "v1",
    groupVersion: group ? `${group}/${version}` : version,
    resources,
  };
}

/** The aggregated document for /api (core) or /apis (named groups). */
export function aggregatedDiscovery(types: ResourceType[], core: boolean, apiVersion: string): object {
  const items = groupVersions(types)
    .filter((g) => (g.group === "") === core)
    .map((g) => {
      const item: Record<string, unknown> = {
        metadata: core ? { creationTimestamp: null } : { name: g.group, creationTimestamp: null },
        versions: g.versions.map((v) => ({
          version: v,
          resources: types
            .filter((r) => r.group === g.group && r.version === v)
            .map((r) => {
              const res: Record<string, unknown> = {
                resource: r.plural,
                responseKind: { group: r.group, version: r.version, kind: r.kind },
                scope: r.namespaced ? "Namespaced" : "Cluster",
                singularResource: r.singular,
                verbs: r.verbs,
              };
              if (r.shortNames.length) res.shortNames = r.shortNames;
              if (r.categories.length) res.categories = r.categories;
              const subs = subresourcesOf(r);
              if (subs.length) {
                res.subresources = subs.map((s) => ({
                  subresource: s.name,
                  responseKind: { group: s.group ?? r.group, version: s.version ?? r.version, kind: s.kind },
                  verbs: s.verbs,
                }));
              }
              return res;
            }),
          freshness: "Current",
        })),
      };
      return item;
    });
  return { kind: "APIGroupDiscoveryList", apiVersion, metadata: {}, items };
}
