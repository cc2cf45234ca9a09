import { describe, expect, it } from "vitest";
import { findResource, resolveResourceName, resourceForKind, resourceTypes } from "./resources.ts";

describe("resource types", () => {
  it("carry the short names kubectl api-resources prints", () => {
    const short = Object.fromEntries(resourceTypes.map((r) => [r.plural, r.shortNames.join(",")]));
    expect(short).toMatchObject({
      services: "svc",
      pods: "po",
      deployments: "deploy",
      replicasets: "rs",
      daemonsets: "ds",
      endpoints: "ep",
      namespaces: "ns",
      nodes: "no",
      configmaps: "cm",
      events: "ev",
      serviceaccounts: "sa",
      ingresses: "ing",
      networkpolicies: "netpol",
      secrets: "",
      endpointslices: "",
      leases: "",
    });
  });

  it("put workloads and services in the all category, and nothing else", () => {
    const all = resourceTypes.filter((r) => r.categories.includes("all")).map((r) => r.plural);
    expect(all.sort()).toEqual(["daemonsets", "deployments", "pods", "replicasets", "services"]);
  });

  it("are found by path and by kind", () => {
    expect(findResource("", "v1", "services")?.kind).toBe("Service");
    expect(findResource("apps", "v1", "deployments")?.subresources).toEqual(["status", "scale"]);
    expect(findResource("apps", "v1", "nope")).toBeUndefined();
    expect(resourceForKind("networking.k8s.io/v1", "NetworkPolicy")?.plural).toBe("networkpolicies");
    expect(resourceForKind("v1", "Endpoints")?.listKind).toBe("EndpointsList");
    expect(resourceForKind("extensions/v1beta1", "Ingress")).toBeUndefined();
  });

  it("know which kinds are cluster-scoped", () => {
    const cluster = resourceTypes.filter((r) => !r.namespaced).map((r) => r.kind);
    expect(cluster.sort()).toEqual(["IngressClass", "Namespace", "Node"]);
  });

  it("resolve the names users type", () => {
    expect(resolveResourceName("svc")?.kind).toBe("Service");
    expect(resolveResourceName("deployments.apps")?.kind).toBe("Deployment");
    expect(resolveResourceName("Pod")?.plural).toBe("pods");
    expect(resolveResourceName("ingress")?.plural).toBe("ingresses");
  });
});
