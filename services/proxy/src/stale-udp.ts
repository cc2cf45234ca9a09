import { categorizeEndpoints, type ServicePortInfo } from "./service-ports.ts";

// kube-proxy's conntrack cleanup for UDP: when an endpoint goes away, conntrack entries that
// still DNAT to it must be deleted, or a client that keeps its source port keeps sending into
// the void (the long-standing "stale UDP" bug); and when a Service goes from no endpoints to
// some, entries created while it had none (which recorded no DNAT) must go too.

export interface UdpState {
  /** ip:port of every UDP endpoint in use */
  endpoints: Set<string>;
  /** "ip:port" of each UDP Service address (cluster IP, external IPs, LB IPs; node ports as ":port") that had no endpoints */
  withoutEndpoints: Set<string>;
}

export interface ConntrackFlush {
  /** delete UDP entries whose reply source (the DNAT target) is one of these ip:port */
  udpEndpoints: string[];
  /** delete UDP entries whose original destination is one of these ip:port (":port" = any local address) */
  udpServiceIPs: string[];
}

export function udpState(servicePorts: ServicePortInfo[]): UdpState {
  const endpoints = new Set<string>();
  const withoutEndpoints = new Set<string>();
  for (const s of servicePorts) {
    if (s.protocol !== "UDP") continue;
    const { allReachableEndpoints } = categorizeEndpoints(s);
    for (const e of allReachableEndpoints) endpoints.add(e.endpoint);
    if (allReachableEndpoints.length === 0) {
      for (const ip of [s.clusterIP, ...s.externalIPs, ...s.loadBalancerVIPs])
        withoutEndpoints.add(`${ip}:${s.port}`);
      if (s.nodePort) withoutEndpoints.add(`:${s.nodePort}`);
    }
  }
  return { endpoints, withoutEndpoints };
}

/** What to flush after a sync that moved from `prev` to `next`. */
export function staleUdp(prev: UdpState | undefined, next: UdpState): ConntrackFlush {
  if (!prev) return { udpEndpoints: [], udpServiceIPs: [] };
  return {
    udpEndpoints: [...prev.endpoints].filter((e) => !next.endpoints.has(e)).sort(),
    udpServiceIPs: [...prev.withoutEndpoints].filter((a) => !next.withoutEndpoints.has(a)).sort(),
  };
}
