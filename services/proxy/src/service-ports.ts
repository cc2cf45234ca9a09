import type { EndpointSlice, Node, Service } from "@klab/api";
import {
  endpointChain,
  joinHostPort,
  serviceClusterChain,
  serviceExternalChain,
  serviceFirewallChain,
  serviceLocalChain,
  servicePortNameString,
} from "./chain-names.ts";

// kube-proxy's view of the cluster: one entry per service port ("ServicePortName") with the
// endpoints that back it. Both the iptables and the ipvs builders work from this view.

export type L4Protocol = "TCP" | "UDP" | "SCTP";

export const DEFAULT_STICKY_MAX_AGE_SECONDS = 10800;
export const SERVICE_NAME_LABEL = "kubernetes.io/service-name";

export interface EndpointInfo {
  ip: string;
  port: number;
  /** ip:port as kube-proxy prints it */
  endpoint: string;
  isLocal: boolean;
  ready: boolean;
  serving: boolean;
  terminating: boolean;
  nodeName?: string;
  chainName: string;
}

export interface ServicePortInfo {
  namespace: string;
  name: string;
  portName: string;
  /** "ns/svc:port" */
  nameString: string;
  protocol: L4Protocol;
  clusterIP: string;
  port: number;
  nodePort: number;
  externalIPs: string[];
  loadBalancerVIPs: string[];
  loadBalancerSourceRanges: string[];
  healthCheckNodePort: number;
  /** 0 when sessionAffinity is None */
  stickyMaxAgeSeconds: number;
  externalPolicyLocal: boolean;
  internalPolicyLocal: boolean;
  clusterPolicyChainName: string;
  localPolicyChainName: string;
  externalChainName: string;
  firewallChainName: string;
  endpoints: EndpointInfo[];
}

export interface NodeInfo {
  name: string;
  /** InternalIP / ExternalIP addresses of the node */
  ips: string[];
}

export function nodeInfo(node: Node | NodeInfo | string): NodeInfo {
  if (typeof node === "string") return { name: node, ips: [] };
  if ("ips" in node) return node;
  const ips = (node.status?.addresses ?? [])
    .filter((a) => a.type === "InternalIP" || a.type === "ExternalIP")
    .map((a) => a.address);
  return { name: node.metadata.name ?? "", ips };
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
export const isIPv4 = (s: string): boolean => IPV4.test(s);

/** A CIDR as kube-proxy accepts it in loadBalancerSourceRanges (surrounding blanks tolerated). */
function parseSourceRange(raw: string): string | undefined {
  const s = raw.trim();
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(s);
  if (!m || !isIPv4(m[1]) || Number(m[2]) > 32) return undefined;
  return s;
}

/** kube-proxy ignores headless and ExternalName Services (proxy.ShouldSkipService). */
export function shouldSkipService(svc: Service): boolean {
  const ip = svc.spec?.clusterIP;
  if (!ip || ip === "None") return true;
  if (svc.spec?.type === "ExternalName") return true;
  return false;
}

function endpointsForPort(
  slices: EndpointSlice[],
  portName: string,
  protocol: L4Protocol,
  spn: string,
  nodeName: string,
): EndpointInfo[] {
  const byEndpoint = new Map<string, EndpointInfo>();
  for (const slice of slices) {
    if (slice.addressType !== "IPv4") continue;
    for (const p of slice.ports ?? []) {
      if ((p.name ?? "") !== portName || (p.protocol ?? "TCP") !== protocol || p.port == null) continue;
      for (const ep of slice.endpoints ?? []) {
        const ip = ep.addresses?.[0];
        if (!ip || !isIPv4(ip)) continue;
        const ready = ep.conditions?.ready ?? true;
        const serving = ep.conditions?.serving ?? ready;
        const terminating = ep.conditions?.terminating ?? false;
        const endpoint = joinHostPort(ip, p.port);
        const prior = byEndpoint.get(endpoint);
        // The same endpoint can appear in two slices while the controller moves it; keep the ready copy.
        if (prior && (prior.ready || !ready)) continue;
        byEndpoint.set(endpoint, {
          ip,
          port: p.port,
          endpoint,
          isLocal: ep.nodeName !== undefined && ep.nodeName === nodeName,
          ready,
          serving,
          terminating,
          nodeName: ep.nodeName,
          chainName: endpointChain(spn, protocol, endpoint),
        });
      }
    }
  }
  return [...byEndpoint.values()].sort(compareEndpoints);
}

function ipKey(ip: string): number {
  return ip.split(".").reduce((acc, o) => acc * 256 + Number(o), 0);
}

function compareEndpoints(a: EndpointInfo, b: EndpointInfo): number {
  return ipKey(a.ip) - ipKey(b.ip) || a.port - b.port;
}

/** Builds the service-port map, sorted by name so every sync writes the same text for the same state. */
export function buildServicePorts(
  services: Service[],
  endpointSlices: EndpointSlice[],
  node: NodeInfo,
): ServicePortInfo[] {
  const slicesByService = new Map<string, EndpointSlice[]>();
  for (const slice of endpointSlices) {
    const svcName = slice.metadata.labels?.[SERVICE_NAME_LABEL];
    if (!svcName) continue;
    const key = `${slice.metadata.namespace ?? "default"}/${svcName}`;
    const list = slicesByService.get(key) ?? [];
    list.push(slice);
    slicesByService.set(key, list);
  }

  const out: ServicePortInfo[] = [];
  for (const svc of services) {
    if (shouldSkipService(svc)) continue;
    const spec = svc.spec ?? {};
    const clusterIP = spec.clusterIP as string;
    if (!isIPv4(clusterIP)) continue;
    const namespace = svc.metadata.namespace ?? "default";
    const name = svc.metadata.name ?? "";
    const slices = slicesByService.get(`${namespace}/${name}`) ?? [];
    const externalIPs = (spec.externalIPs ?? []).filter(isIPv4);
    const loadBalancerVIPs =
      spec.type === "LoadBalancer"
        ? (svc.status?.loadBalancer?.ingress ?? [])
            // ipMode Proxy means the load balancer is not a VIP: kube-proxy must not capture it.
            .filter((i) => i.ip && isIPv4(i.ip) && i.ipMode !== "Proxy")
            .map((i) => i.ip as string)
        : [];
    const loadBalancerSourceRanges =
      loadBalancerVIPs.length > 0
        ? (spec.loadBalancerSourceRanges ?? []).map(parseSourceRange).filter((c): c is string => !!c)
        : [];
    const sticky =
      spec.sessionAffinity === "ClientIP"
        ? (spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? DEFAULT_STICKY_MAX_AGE_SECONDS)
        : 0;
    for (const sp of spec.ports ?? []) {
      const protocol = (sp.protocol ?? "TCP") as L4Protocol;
      const portName = sp.name ?? "";
      const nameString = servicePortNameString(namespace, name, portName);
      const nodePort = spec.type === "NodePort" || spec.type === "LoadBalancer" ? (sp.nodePort ?? 0) : 0;
      const externallyAccessible = nodePort !== 0 || loadBalancerVIPs.length > 0 || externalIPs.length > 0;
      out.push({
        namespace,
        name,
        portName,
        nameString,
        protocol,
        clusterIP,
        port: sp.port,
        nodePort,
        externalIPs,
        loadBalancerVIPs,
        loadBalancerSourceRanges,
        healthCheckNodePort:
          spec.type === "LoadBalancer" && spec.externalTrafficPolicy === "Local"
            ? (spec.healthCheckNodePort ?? 0)
            : 0,
        stickyMaxAgeSeconds: sticky,
        externalPolicyLocal: externallyAccessible && spec.externalTrafficPolicy === "Local",
        internalPolicyLocal: spec.internalTrafficPolicy === "Local",
        clusterPolicyChainName: serviceClusterChain(nameString, protocol),
        localPolicyChainName: serviceLocalChain(nameString, protocol),
        externalChainName: serviceExternalChain(nameString, protocol),
        firewallChainName: serviceFirewallChain(nameString, protocol),
        endpoints: endpointsForPort(slices, portName, protocol, nameString, node.name),
      });
    }
  }
  return out.sort((a, b) =>
    a.nameString < b.nameString ? -1 : a.nameString > b.nameString ? 1 : a.protocol < b.protocol ? -1 : 1,
  );
}

export const externallyAccessible = (s: ServicePortInfo): boolean =>
  s.nodePort !== 0 || s.loadBalancerVIPs.length > 0 || s.externalIPs.length > 0;
export const usesClusterEndpoints = (s: ServicePortInfo): boolean =>
  !s.internalPolicyLocal || (externallyAccessible(s) && !s.externalPolicyLocal);
export const usesLocalEndpoints = (s: ServicePortInfo): boolean =>
  s.internalPolicyLocal || (externallyAccessible(s) && s.externalPolicyLocal);

export interface CategorizedEndpoints {
  clusterEndpoints: EndpointInfo[];
  localEndpoints: EndpointInfo[];
  allReachableEndpoints: EndpointInfo[];
  hasAnyEndpoints: boolean;
}

/**
 * kube-proxy's CategorizeEndpoints: ready endpoints first; if none are ready anywhere, endpoints
 * that are still serving while terminating (so a rolling update does not black-hole traffic).
 * Topology hints are not applied.
 */
export function categorizeEndpoints(s: ServicePortInfo): CategorizedEndpoints {
  const eps = s.endpoints;
  let clusterEndpoints: EndpointInfo[] = [];
  let localEndpoints: EndpointInfo[] = [];
  let hasAnyEndpoints = false;
  if (usesClusterEndpoints(s)) {
    clusterEndpoints = eps.filter((e) => e.ready);
    if (clusterEndpoints.length === 0) clusterEndpoints = eps.filter((e) => e.serving && e.terminating);
    if (clusterEndpoints.length > 0) hasAnyEndpoints = true;
  }
  if (!usesLocalEndpoints(s)) {
    return { clusterEndpoints, localEndpoints, allReachableEndpoints: clusterEndpoints, hasAnyEndpoints };
  }
  let hasLocalReady = false;
  let hasLocalServingTerminating = false;
  for (const e of eps) {
    if (e.ready) {
      hasAnyEndpoints = true;
      if (e.isLocal) hasLocalReady = true;
    } else if (e.serving && e.terminating) {
      hasAnyEndpoints = true;
      if (e.isLocal) hasLocalServingTerminating = true;
    }
  }
  if (hasLocalReady) localEndpoints = eps.filter((e) => e.isLocal && e.ready);
  else if (hasLocalServingTerminating)
    localEndpoints = eps.filter((e) => e.isLocal && e.serving && e.terminating);
  if (!usesClusterEndpoints(s)) {
    return { clusterEndpoints, localEndpoints, allReachableEndpoints: localEndpoints, hasAnyEndpoints };
  }
  const merged = new Map<string, EndpointInfo>();
  for (const e of clusterEndpoints) merged.set(e.endpoint, e);
  for (const e of localEndpoints) merged.set(e.endpoint, e);
  return {
    clusterEndpoints,
    localEndpoints,
    allReachableEndpoints: [...merged.values()].sort(compareEndpoints),
    hasAnyEndpoints,
  };
}
