import type { Endpoint, EndpointSlice, Service, ServicePort, ServiceSpec, ServiceStatus } from "@klab/api";

// Builders for the Service and EndpointSlice objects the proxy's tests feed to its pure core.

export function service(ns: string, name: string, spec: ServiceSpec, status: ServiceStatus = {}): Service {
  return { apiVersion: "v1", kind: "Service", metadata: { namespace: ns, name }, spec, status };
}

export function tcp(name: string, port: number, extra: Partial<ServicePort> = {}): ServicePort {
  return { name, port, protocol: "TCP", ...extra };
}

export function slice(
  ns: string,
  svc: string,
  ports: Array<{ name: string; port: number; protocol?: "TCP" | "UDP" | "SCTP" }>,
  endpoints: Endpoint[],
  suffix = "abcde",
): EndpointSlice {
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: { namespace: ns, name: `${svc}-${suffix}`, labels: { "kubernetes.io/service-name": svc } },
    addressType: "IPv4",
    endpoints,
    ports: ports.map((p) => ({ name: p.name, port: p.port, protocol: p.protocol ?? "TCP" })),
  };
}

export const ep = (ip: string, nodeName?: string, conditions?: Endpoint["conditions"]): Endpoint => ({
  addresses: [ip],
  ...(nodeName ? { nodeName } : {}),
  ...(conditions ? { conditions } : {}),
});
