/**
 * Cluster state as the kubernetes plugin needs it, and the lookup tables built from it
 * (CoreDNS's informer indexes: services by name and by cluster IP, endpoints by service and by
 * IP, pods by IP). Pure: rebuilt from the objects whenever they change.
 */
import type { EndpointSlice, Namespace, Pod, Service } from "@klab/api";

export interface ClusterState {
  services: readonly Service[];
  endpointSlices: readonly EndpointSlice[];
  pods: readonly Pod[];
  namespaces: readonly Namespace[];
  /** Unix seconds of the last change (the SOA serial). */
  modified?: number;
}

export interface PortInfo {
  name: string;
  protocol: string;
  /** -1 when the object declares no ports (CoreDNS's sentinel: A records but no SRV). */
  port: number;
}

export interface ServiceInfo {
  namespace: string;
  name: string;
  kind: "ClusterIP" | "Headless" | "ExternalName";
  clusterIPs: string[];
  externalName: string;
  ports: PortInfo[];
  /** Whether the Service selects pods (its endpoints are managed by the control plane). */
  hasSelector: boolean;
}

export interface EndpointInfo {
  ip: string;
  hostname: string;
  /** Name of the pod behind the endpoint (for `endpoint_pod_names`). */
  targetRefName: string;
  ports: PortInfo[];
}

export interface ClusterIndex {
  services: Map<string, ServiceInfo>;
  /** Ready endpoints per `namespace/service`. */
  endpoints: Map<string, EndpointInfo[]>;
  namespaces: Set<string>;
  servicesByIP: Map<string, ServiceInfo[]>;
  endpointsByIP: Map<string, { service: string; namespace: string; endpoint: EndpointInfo }[]>;
  podsByIP: Map<string, { namespace: string; name: string }[]>;
  serial: number;
}

export const SERVICE_NAME_LABEL = "kubernetes.io/service-name";

/** Canonical text of an IP address, so that `fd00:0::1` and `fd00::1` compare equal. */
export function canonicalIP(ip: string): string {
  if (!ip.includes(":")) return ip;
  try {
    return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  } catch {
    return ip.toLowerCase();
  }
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

export function indexCluster(state: ClusterState): ClusterIndex {
  const services = new Map<string, ServiceInfo>();
  const servicesByIP = new Map<string, ServiceInfo[]>();
  const publishNotReady = new Set<string>();
  for (const svc of state.services) {
    const ns = svc.metadata.namespace ?? "default";
    const name = svc.metadata.name ?? "";
    const spec = svc.spec ?? {};
    const kind =
      spec.type === "ExternalName" ? "ExternalName" : spec.clusterIP === "None" ? "Headless" : "ClusterIP";
    const clusterIPs =
      kind === "ClusterIP"
        ? (spec.clusterIPs?.length ? spec.clusterIPs : spec.clusterIP ? [spec.clusterIP] : []).map(
            canonicalIP,
          )
        : [];
    const ports: PortInfo[] = (spec.ports ?? []).map((p) => ({
      name: (p.name ?? "").toLowerCase(),
      protocol: (p.protocol ?? "TCP").toLowerCase(),
      port: p.port,
    }));
    const info: ServiceInfo = {
      namespace: ns.toLowerCase(),
      name: name.toLowerCase(),
      kind,
      clusterIPs,
      externalName: (spec.externalName ?? "").toLowerCase(),
      ports: ports.length > 0 ? ports : [{ name: "", protocol: "", port: -1 }],
      hasSelector: Object.keys(spec.selector ?? {}).length > 0,
    };
    services.set(`${info.namespace}/${info.name}`, info);
    for (const ip of clusterIPs) push(servicesByIP, ip, info);
    if (spec.publishNotReadyAddresses) publishNotReady.add(`${info.namespace}/${info.name}`);
  }

  const endpoints = new Map<string, EndpointInfo[]>();
  const endpointsByIP = new Map<string, { service: string; namespace: string; endpoint: EndpointInfo }[]>();
  for (const slice of state.endpointSlices) {
    if (slice.addressType === "FQDN") continue;
    const serviceName = slice.metadata.labels?.[SERVICE_NAME_LABEL];
    if (!serviceName) continue;
    const ns = (slice.metadata.namespace ?? "default").toLowerCase();
    const key = `${ns}/${serviceName.toLowerCase()}`;
    const ports: PortInfo[] = (slice.ports ?? []).map((p) => ({
      name: (p.name ?? "").toLowerCase(),
      protocol: (p.protocol ?? "TCP").toLowerCase(),
      port: p.port ?? -1,
    }));
    if (ports.length === 0) ports.push({ name: "", protocol: "", port: -1 });
    for (const ep of slice.endpoints ?? []) {
      const ready = ep.conditions?.ready !== false || publishNotReady.has(key);
      if (!ready) continue;
      for (const address of ep.addresses ?? []) {
        const info: EndpointInfo = {
          ip: canonicalIP(address),
          hostname: (ep.hostname ?? "").toLowerCase(),
          targetRefName:
            ep.targetRef?.kind === "Pod" || ep.targetRef?.kind === undefined
              ? (ep.targetRef?.name ?? "").toLowerCase()
              : "",
          ports,
        };
        push(endpoints, key, info);
        push(endpointsByIP, info.ip, { service: serviceName.toLowerCase(), namespace: ns, endpoint: info });
      }
    }
  }

  const podsByIP = new Map<string, { namespace: string; name: string }[]>();
  for (const pod of state.pods) {
    const ips = new Set<string>();
    if (pod.status?.podIP) ips.add(canonicalIP(pod.status.podIP));
    for (const p of pod.status?.podIPs ?? []) if (p.ip) ips.add(canonicalIP(p.ip));
    for (const ip of ips)
      push(podsByIP, ip, {
        namespace: (pod.metadata.namespace ?? "default").toLowerCase(),
        name: pod.metadata.name ?? "",
      });
  }

  const namespaces = new Set(state.namespaces.map((n) => (n.metadata.name ?? "").toLowerCase()));
  return {
    services,
    endpoints,
    namespaces,
    servicesByIP,
    endpointsByIP,
    podsByIP,
    serial: state.modified ?? Math.floor(Date.now() / 1000),
  };
}
