/** Ingress service backends → upstreams: the Service port, then ready EndpointSlice endpoints (or the ClusterIP). */
import type { EndpointSlice, IngressServiceBackend, Service } from "@klab/api";
import type { Upstream, UpstreamEndpoint } from "./model.ts";

export const DEFAULT_BACKEND_NAME = "upstream-default-backend";

export const defaultBackendUpstream: Upstream = Object.freeze({
  name: DEFAULT_BACKEND_NAME,
  endpoints: [],
  defaultBackend: true,
}) as Upstream;

export interface ServiceIndex {
  services: ReadonlyMap<string, Service>;
  /** `namespace/service` → its slices */
  slices: ReadonlyMap<string, EndpointSlice[]>;
}

export function indexServices(services: readonly Service[], slices: readonly EndpointSlice[]): ServiceIndex {
  const s = new Map<string, Service>();
  for (const svc of services) s.set(`${svc.metadata.namespace}/${svc.metadata.name}`, svc);
  const e = new Map<string, EndpointSlice[]>();
  for (const slice of slices) {
    const owner = slice.metadata.labels?.["kubernetes.io/service-name"];
    if (!owner) continue;
    const key = `${slice.metadata.namespace}/${owner}`;
    const list = e.get(key);
    if (list) list.push(slice);
    else e.set(key, [slice]);
  }
  return { services: s, slices: e };
}

function endpoint(ip: string, port: number): UpstreamEndpoint {
  return { ip, port, address: ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}` };
}

export function resolveUpstream(
  namespace: string,
  backend: IngressServiceBackend,
  index: ServiceIndex,
  serviceUpstream: boolean,
): Upstream {
  const portKey = backend.port?.number ?? backend.port?.name ?? "";
  const name = `${namespace}-${backend.name}-${portKey}`;
  const base = { name, namespace, service: backend.name, defaultBackend: false };
  const svc = index.services.get(`${namespace}/${backend.name}`);
  if (!svc) return { ...base, endpoints: [], problem: `service ${namespace}/${backend.name} not found` };
  const ports = svc.spec?.ports ?? [];
  const sp =
    backend.port?.number !== undefined
      ? ports.find((p) => p.port === backend.port?.number)
      : ports.find((p) => p.name === backend.port?.name);
  if (svc.spec?.type === "ExternalName" && svc.spec.externalName) {
    const port = sp?.port ?? backend.port?.number;
    if (port === undefined)
      return {
        ...base,
        endpoints: [],
        problem: `service ${namespace}/${backend.name} has no port ${portKey}`,
      };
    return { ...base, endpoints: [endpoint(svc.spec.externalName, port)] };
  }
  if (!sp)
    return { ...base, endpoints: [], problem: `service ${namespace}/${backend.name} has no port ${portKey}` };
  if (serviceUpstream) {
    const ip = svc.spec?.clusterIP;
    if (!ip || ip === "None")
      return { ...base, endpoints: [], problem: `service ${namespace}/${backend.name} has no ClusterIP` };
    return { ...base, endpoints: [endpoint(ip, sp.port)] };
  }
  const seen = new Set<string>();
  const endpoints: UpstreamEndpoint[] = [];
  for (const slice of index.slices.get(`${namespace}/${backend.name}`) ?? []) {
    if (slice.addressType === "FQDN") continue;
    const slicePort = (slice.ports ?? []).find((p) => (p.name ?? "") === (sp.name ?? ""));
    if (!slicePort || typeof slicePort.port !== "number") continue;
    for (const ep of slice.endpoints ?? []) {
      // A nil ready condition means ready (discovery.k8s.io/v1).
      if (ep.conditions?.ready === false) continue;
      const ip = ep.addresses?.[0];
      if (!ip) continue;
      const e = endpoint(ip, slicePort.port);
      if (seen.has(e.address)) continue;
      seen.add(e.address);
      endpoints.push(e);
    }
  }
  endpoints.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
  return endpoints.length
    ? { ...base, endpoints }
    : { ...base, endpoints, problem: `service ${namespace}/${backend.name} has no ready endpoints` };
}
