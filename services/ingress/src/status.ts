/**
 * Ingress status: which address the controller publishes in status.loadBalancer.ingress —
 * the LoadBalancer ingress of its own Service (--publish-service) when the edge assigned one,
 * else the addresses of the nodes (ExternalIP, else InternalIP), as ingress-nginx does.
 */
import type { Ingress, IngressLoadBalancerIngress, Node, Service } from "@klab/api";

export function statusAddresses(
  publishService: Service | undefined,
  nodes: readonly Node[],
  nodeName?: string,
): IngressLoadBalancerIngress[] {
  const lb = publishService?.status?.loadBalancer?.ingress ?? [];
  const fromLb = lb
    .filter((i) => i.ip || i.hostname)
    .map((i) => (i.ip ? { ip: i.ip } : { hostname: i.hostname }));
  if (fromLb.length) return sortAddresses(fromLb);
  const external = publishService?.spec?.externalIPs ?? [];
  if (external.length) return sortAddresses(external.map((ip) => ({ ip })));
  const chosen = nodeName ? nodes.filter((n) => n.metadata.name === nodeName) : nodes;
  const ips = new Set<string>();
  for (const n of chosen) {
    const addrs = n.status?.addresses ?? [];
    const ip =
      addrs.find((a) => a.type === "ExternalIP")?.address ??
      addrs.find((a) => a.type === "InternalIP")?.address;
    if (ip) ips.add(ip);
  }
  return sortAddresses([...ips].map((ip) => ({ ip })));
}

function sortAddresses(list: IngressLoadBalancerIngress[]): IngressLoadBalancerIngress[] {
  const key = (a: IngressLoadBalancerIngress): string => a.ip ?? a.hostname ?? "";
  return [...list].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

/** The Ingress with the new status, or undefined when it already says so. */
export function withStatus(ing: Ingress, addresses: IngressLoadBalancerIngress[]): Ingress | undefined {
  const current = ing.status?.loadBalancer?.ingress ?? [];
  if (JSON.stringify(current) === JSON.stringify(addresses)) return undefined;
  return { ...ing, status: { ...ing.status, loadBalancer: { ingress: addresses } } };
}
