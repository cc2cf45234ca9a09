/**
 * TEST FIXTURE, not a product path: a small cluster as plain objects, and a ClusterSource that
 * serves it without an API server (the interface the informer source implements).
 */
import type { EndpointSlice, Namespace, Pod, Service } from "@klab/api";
import { indexCluster, type ClusterState } from "../kubernetes/cluster.ts";
import type { ClusterSource } from "../kubernetes/source.ts";

const meta = (namespace: string, name: string, labels?: Record<string, string>) => ({
  namespace,
  name,
  labels,
});

export function service(ns: string, name: string, spec: Service["spec"]): Service {
  return { apiVersion: "v1", kind: "Service", metadata: meta(ns, name), spec };
}

export function slice(
  ns: string,
  svc: string,
  endpoints: { ip: string; hostname?: string; ready?: boolean; pod?: string }[],
  ports: { name?: string; port: number; protocol?: "TCP" | "UDP" }[],
  addressType: "IPv4" | "IPv6" = "IPv4",
): EndpointSlice {
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: meta(ns, `${svc}-${Math.random().toString(36).slice(2, 7)}`, {
      "kubernetes.io/service-name": svc,
    }),
    addressType,
    endpoints: endpoints.map((e) => ({
      addresses: [e.ip],
      hostname: e.hostname,
      conditions: { ready: e.ready ?? true },
      targetRef: e.pod ? { kind: "Pod", namespace: ns, name: e.pod } : undefined,
    })),
    ports: ports.map((p) => ({ name: p.name ?? "", port: p.port, protocol: p.protocol ?? "TCP" })),
  };
}

export function pod(ns: string, name: string, ip: string): Pod {
  return { apiVersion: "v1", kind: "Pod", metadata: meta(ns, name), status: { podIP: ip, podIPs: [{ ip }] } };
}

export function namespace(name: string): Namespace {
  return { apiVersion: "v1", kind: "Namespace", metadata: { name } };
}

/** The cluster every DNS test uses. */
export function sampleCluster(): ClusterState {
  return {
    modified: 1_700_000_000,
    namespaces: ["default", "kube-system", "other"].map(namespace),
    services: [
      service("default", "web", {
        type: "ClusterIP",
        clusterIP: "10.96.0.20",
        clusterIPs: ["10.96.0.20"],
        ports: [
          { name: "http", port: 80, protocol: "TCP" },
          { name: "https", port: 443, protocol: "TCP" },
        ],
      }),
      service("default", "headless", {
        clusterIP: "None",
        ports: [{ name: "http", port: 80, protocol: "TCP" }],
      }),
      service("default", "empty-headless", { clusterIP: "None", ports: [{ name: "http", port: 80 }] }),
      service("default", "ext", { type: "ExternalName", externalName: "www.example.com" }),
      service("default", "inzone", { type: "ExternalName", externalName: "web.default.svc.cluster.local" }),
      service("default", "v6", {
        clusterIP: "fd00::20",
        clusterIPs: ["fd00::20"],
        ipFamilies: ["IPv6"],
        ports: [{ name: "dns", port: 53, protocol: "UDP" }],
      }),
      service("default", "noports", { clusterIP: "10.96.0.30", clusterIPs: ["10.96.0.30"] }),
      service("default", "unnamed", {
        clusterIP: "10.96.0.31",
        clusterIPs: ["10.96.0.31"],
        ports: [{ port: 8080, protocol: "TCP" }],
      }),
      service("other", "api", {
        clusterIP: "10.96.0.40",
        clusterIPs: ["10.96.0.40"],
        ports: [{ name: "grpc", port: 9000 }],
      }),
      service("kube-system", "kube-dns", {
        clusterIP: "10.96.0.10",
        clusterIPs: ["10.96.0.10"],
        ports: [
          { name: "dns", port: 53, protocol: "UDP" },
          { name: "dns-tcp", port: 53, protocol: "TCP" },
          { name: "metrics", port: 9153, protocol: "TCP" },
        ],
      }),
    ],
    endpointSlices: [
      slice(
        "default",
        "web",
        [
          { ip: "10.244.1.5", pod: "web-abc" },
          { ip: "10.244.2.6", pod: "web-def" },
          { ip: "10.244.2.7", ready: false, pod: "web-ghi" },
        ],
        [
          { name: "http", port: 8080 },
          { name: "https", port: 8443 },
        ],
      ),
      slice(
        "default",
        "headless",
        [
          { ip: "10.244.1.10", hostname: "my-pet", pod: "db-0" },
          { ip: "10.244.1.11", pod: "db-1" },
          { ip: "10.244.1.12", ready: false, pod: "db-2" },
        ],
        [{ name: "http", port: 80 }],
      ),
      slice(
        "default",
        "v6",
        [{ ip: "fd00:10:244::5" }],
        [{ name: "dns", port: 53, protocol: "UDP" }],
        "IPv6",
      ),
      slice(
        "kube-system",
        "kube-dns",
        [{ ip: "10.244.0.2", pod: "coredns-x" }],
        [
          { name: "dns", port: 53, protocol: "UDP" },
          { name: "dns-tcp", port: 53 },
          { name: "metrics", port: 9153 },
        ],
      ),
    ],
    pods: [
      pod("default", "web-abc", "10.244.1.5"),
      pod("default", "web-def", "10.244.2.6"),
      pod("kube-system", "coredns-x", "10.244.0.2"),
      pod("default", "lonely", "10.244.3.3"),
    ],
  };
}

/** A ClusterSource over fixed (but replaceable) objects. */
export class StaticSource implements ClusterSource {
  private synced = false;
  private idx;
  constructor(
    private state: ClusterState,
    private readonly syncNow = true,
  ) {
    this.idx = indexCluster(state);
  }
  async start(): Promise<void> {
    if (this.syncNow) this.synced = true;
  }
  stop(): void {}
  hasSynced(): boolean {
    return this.synced;
  }
  markSynced(): void {
    this.synced = true;
  }
  index() {
    return this.idx;
  }
  replace(state: ClusterState): void {
    this.state = state;
    this.idx = indexCluster(state);
  }
}
