/**
 * What the cloud load balancer listens on and where it sends each connection: a pure function
 * of the Services, the Nodes and the address assignment. For every TCP port of a LoadBalancer
 * Service with an address: listen on <address>:<port>, forward to <node InternalIP>:<nodePort>
 * on every Ready node, health-checked the way cloud providers check kube-proxy:
 * externalTrafficPolicy Local → GET :healthCheckNodePort/healthz (200 only where endpoints are);
 * Cluster → GET :10256/healthz (kube-proxy's own health).
 */
import type { Node, Service } from "@klab/api";
import { serviceKey } from "./pool.ts";

export const kubeProxyHealthzPort = 10256;

export interface HealthCheck {
  port: number;
  path: string;
}

export interface Target {
  node: string;
  ip: string;
  port: number;
  health: HealthCheck;
}

export interface ListenerSpec {
  /** "ns/name:port/TCP", stable across syncs so a listener is reused, not reopened. */
  id: string;
  service: string;
  address: string;
  port: number;
  targets: Target[];
}

export function nodeInternalIP(node: Node): string | undefined {
  return node.status?.addresses?.find((a) => a.type === "InternalIP")?.address;
}

export function nodeIsReady(node: Node): boolean {
  return node.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
}

/**
 * Nodes a cloud load balancer would put behind its Services: Ready, with an address, and not
 * labelled node.kubernetes.io/exclude-from-external-load-balancers.
 */
export function eligibleNodes(nodes: Node[]): Node[] {
  return nodes.filter(
    (n) =>
      nodeIsReady(n) &&
      nodeInternalIP(n) &&
      n.metadata.labels?.["node.kubernetes.io/exclude-from-external-load-balancers"] === undefined,
  );
}

export function desiredListeners(
  services: Service[],
  nodes: Node[],
  addresses: Map<string, string>,
): ListenerSpec[] {
  const backends = eligibleNodes(nodes).sort((a, b) => a.metadata.name!.localeCompare(b.metadata.name!));
  const specs: ListenerSpec[] = [];
  for (const svc of services) {
    const address = addresses.get(serviceKey(svc));
    if (!address || svc.spec?.type !== "LoadBalancer") continue;
    const local = svc.spec.externalTrafficPolicy === "Local" && svc.spec.healthCheckNodePort;
    const health: HealthCheck = local
      ? { port: svc.spec.healthCheckNodePort!, path: "/healthz" }
      : { port: kubeProxyHealthzPort, path: "/healthz" };
    for (const port of svc.spec.ports ?? []) {
      if ((port.protocol ?? "TCP") !== "TCP" || !port.nodePort) continue;
      specs.push({
        id: `${serviceKey(svc)}:${port.port}/TCP`,
        service: serviceKey(svc),
        address,
        port: port.port,
        targets: backends.map((n) => ({
          node: n.metadata.name!,
          ip: nodeInternalIP(n)!,
          port: port.nodePort!,
          health,
        })),
      });
    }
  }
  return specs;
}
