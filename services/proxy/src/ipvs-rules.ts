import type { EndpointSlice, Node, Service } from "@klab/api";
import type { VirtualServer } from "@klab/dataplane/nat/ipvs/table.ts";
import {
  buildServicePorts,
  categorizeEndpoints,
  nodeInfo,
  type EndpointInfo,
  type NodeInfo,
  type ServicePortInfo,
} from "./service-ports.ts";
import { cidrContains } from "./iptables-rules.ts";

// kube-proxy's ipvs mode as a pure function: one virtual server per Service address and port
// (cluster IP, each external IP, each load-balancer IP, each node address for a NodePort) with
// its endpoints as real servers, and the set of addresses bound to kube-ipvs0.

export interface IpvsProxyConfig {
  /** ipvs.scheduler; empty means rr */
  scheduler?: string;
  /** --nodeport-addresses; empty means every node address */
  nodePortAddresses?: string[];
}

export interface IpvsRuleset {
  virtualServers: VirtualServer[];
  /** kube-ipvs0: every cluster IP, external IP and load-balancer IP */
  addresses: string[];
  servicePorts: ServicePortInfo[];
}

const realServers = (eps: EndpointInfo[]) => eps.map((e) => ({ address: e.ip, port: e.port, weight: 1 }));

export function buildIpvsRuleset(
  services: Service[],
  endpointSlices: EndpointSlice[],
  node: Node | NodeInfo | string,
  config: IpvsProxyConfig = {},
): IpvsRuleset {
  const n = nodeInfo(node);
  const servicePorts = buildServicePorts(services, endpointSlices, n);
  const scheduler = config.scheduler || "rr";
  const nodeIPs = config.nodePortAddresses?.length
    ? n.ips.filter((ip) => config.nodePortAddresses!.some((c) => cidrContains(c, ip)))
    : n.ips;
  const virtualServers: VirtualServer[] = [];
  const addresses = new Set<string>();

  for (const svc of servicePorts) {
    const { clusterEndpoints, localEndpoints } = categorizeEndpoints(svc);
    const base = {
      protocol: svc.protocol,
      scheduler,
      service: svc.nameString,
      ...(svc.stickyMaxAgeSeconds > 0 ? { persistentTimeout: svc.stickyMaxAgeSeconds } : {}),
    };
    const internal = svc.internalPolicyLocal ? localEndpoints : clusterEndpoints;
    const external = svc.externalPolicyLocal ? localEndpoints : clusterEndpoints;
    const local = svc.externalPolicyLocal ? { local: true } : {};

    addresses.add(svc.clusterIP);
    virtualServers.push({
      ...base,
      address: svc.clusterIP,
      port: svc.port,
      kind: "ClusterIP",
      realServers: realServers(internal),
    });
    for (const ip of svc.externalIPs) {
      addresses.add(ip);
      virtualServers.push({
        ...base,
        ...local,
        address: ip,
        port: svc.port,
        kind: "ExternalIP",
        realServers: realServers(external),
      });
    }
    for (const ip of svc.loadBalancerVIPs) {
      addresses.add(ip);
      virtualServers.push({
        ...base,
        ...local,
        address: ip,
        port: svc.port,
        kind: "LoadBalancer",
        realServers: realServers(external),
      });
    }
    if (svc.nodePort) {
      for (const ip of nodeIPs) {
        virtualServers.push({
          ...base,
          ...local,
          address: ip,
          port: svc.nodePort,
          kind: "NodePort",
          realServers: realServers(external),
        });
      }
    }
  }
  // Two Services may not share an address:port, but a user can still write that; the first wins.
  const seen = new Set<string>();
  const unique = virtualServers.filter((v) => {
    const k = `${v.protocol} ${v.address}:${v.port}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
  return { virtualServers: unique, addresses: [...addresses], servicePorts };
}
