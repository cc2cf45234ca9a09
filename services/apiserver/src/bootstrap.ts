// What kube-apiserver creates at first start: the system namespaces and the `kubernetes` Service
// with Endpoints and an EndpointSlice pointing at the API server itself. Run at every start;
// it only fills in what is missing (and re-points the endpoints if the address changed).
import { findResource, type ResourceType } from "@klab/api";
import { ApiError } from "./registry/errors.ts";
import type { Registry } from "./registry/registry.ts";
import type { Obj } from "./storage/store.ts";

export const SYSTEM_NAMESPACES = ["default", "kube-system", "kube-public", "kube-node-lease"];

function rt(group: string, plural: string): ResourceType {
  const version = "v1";
  const r = findResource(group, version, plural);
  if (!r) throw new Error(`resource ${plural}.${group} is not served`);
  return r;
}

function exists(reg: Registry, r: ResourceType, ns: string | undefined, name: string): Obj | undefined {
  try {
    return reg.get(r, ns, name);
  } catch (e) {
    if (e instanceof ApiError && e.code === 404) return undefined;
    throw e;
  }
}

export interface BootstrapParams {
  advertiseAddress: string;
  port: number;
  /** The first address of the service CIDR. */
  serviceIP: string;
}

export function bootstrap(reg: Registry, p: BootstrapParams): void {
  const nsRt = rt("", "namespaces");
  for (const name of SYSTEM_NAMESPACES) {
    if (!exists(reg, nsRt, undefined, name)) {
      reg.create(nsRt, undefined, { apiVersion: "v1", kind: "Namespace", metadata: { name } });
    }
  }
  const svcRt = rt("", "services");
  const labels = { component: "apiserver", provider: "kubernetes" };
  const svc = exists(reg, svcRt, "default", "kubernetes");
  const svcPorts = (svc?.spec as { ports?: Array<{ targetPort?: unknown }> } | undefined)?.ports;
  if (svc && svcPorts?.length && svcPorts[0]!.targetPort !== p.port) {
    // The server moved to another port since the Service was made: follow it.
    const next = structuredClone(svc);
    (next.spec as { ports: Array<{ targetPort?: unknown }> }).ports[0]!.targetPort = p.port;
    reg.update(svcRt, "default", "kubernetes", next, undefined);
  }
  if (!svc) {
    // Like kube's bootstrap controller: ask for the reserved first address explicitly, so an
    // allocator hook records it as taken and no other Service can get it.
    reg.create(svcRt, "default", {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "kubernetes", namespace: "default", labels },
      spec: {
        type: "ClusterIP",
        clusterIP: p.serviceIP,
        clusterIPs: [p.serviceIP],
        sessionAffinity: "None",
        ports: [{ name: "https", port: 443, protocol: "TCP", targetPort: p.port }],
      },
    });
  }
  const epRt = rt("", "endpoints");
  const endpoints: Obj = {
    apiVersion: "v1",
    kind: "Endpoints",
    metadata: {
      name: "kubernetes",
      namespace: "default",
      labels: { "endpointslice.kubernetes.io/skip-mirror": "true" },
    },
    subsets: [
      { addresses: [{ ip: p.advertiseAddress }], ports: [{ name: "https", port: p.port, protocol: "TCP" }] },
    ],
  };
  const ep = exists(reg, epRt, "default", "kubernetes");
  if (!ep) reg.create(epRt, "default", endpoints);
  else
    reg.update(
      epRt,
      "default",
      "kubernetes",
      { ...endpoints, metadata: { ...ep.metadata, ...endpoints.metadata } },
      undefined,
    );

  const esRt = rt("discovery.k8s.io", "endpointslices");
  const slice: Obj = {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: {
      name: "kubernetes",
      namespace: "default",
      labels: {
        "kubernetes.io/service-name": "kubernetes",
        "endpointslice.kubernetes.io/managed-by": "kube-apiserver",
      },
    },
    addressType: "IPv4",
    endpoints: [{ addresses: [p.advertiseAddress], conditions: { ready: true } }],
    ports: [{ name: "https", port: p.port, protocol: "TCP" }],
  };
  const es = exists(reg, esRt, "default", "kubernetes");
  if (!es) reg.create(esRt, "default", slice);
  else
    reg.update(
      esRt,
      "default",
      "kubernetes",
      { ...slice, metadata: { ...es.metadata, ...slice.metadata } },
      undefined,
    );
}
