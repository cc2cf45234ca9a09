// The v1 Endpoints a selector Service should have (pkg/controller/endpoint): ready pods under
// `addresses`, the others under `notReadyAddresses`, pods grouped into subsets by the ports
// they resolve to, at most 1000 addresses with the over-capacity annotation beyond that.
import type { EndpointAddress, EndpointPort, EndpointSubset, Endpoints, Pod, Service } from "@klab/api";
import {
  OVER_CAPACITY_ANNOTATION,
  TRIGGER_TIME_ANNOTATION,
  compareIPs,
  endpointHostname,
  inheritedLabels,
  isPodReady,
  podIP,
  podPorts,
  portsKey,
  selectedPods,
  sameValue,
  shouldPodBeInEndpoints,
} from "./logic.ts";

export const MAX_ENDPOINTS_CAPACITY = 1000;

function address(svc: Service, pod: Pod): EndpointAddress {
  const a: EndpointAddress = { ip: podIP(pod) };
  const host = endpointHostname(svc, pod);
  if (host) a.hostname = host;
  if (pod.spec?.nodeName) a.nodeName = pod.spec.nodeName;
  a.targetRef = {
    kind: "Pod",
    namespace: pod.metadata.namespace,
    name: pod.metadata.name,
    uid: pod.metadata.uid,
  };
  return a;
}

/** The subsets for a Service, repacked (one subset per distinct port set) and sorted. */
export function endpointSubsets(
  svc: Service,
  pods: Pod[],
): { subsets: EndpointSubset[]; truncated: boolean } {
  const publish = !!svc.spec?.publishNotReadyAddresses;
  const groups = new Map<
    string,
    { ports: EndpointPort[]; ready: EndpointAddress[]; notReady: EndpointAddress[] }
  >();
  for (const pod of selectedPods(svc, pods)) {
    if (!shouldPodBeInEndpoints(pod, publish)) continue;
    const ports = podPorts(svc, pod);
    // A Service without ports still lists its pods (headless services are used that way).
    if (ports.length === 0 && (svc.spec?.ports?.length ?? 0) > 0) continue;
    const key = portsKey(ports);
    let g = groups.get(key);
    if (!g) {
      g = {
        ports: ports
          .map((p) => {
            const e: EndpointPort = {
              name: p.name,
              port: p.port,
              protocol: p.protocol as EndpointPort["protocol"],
            };
            if (p.appProtocol) e.appProtocol = p.appProtocol;
            return e;
          })
          .sort((a, b) =>
            (a.name ?? "") < (b.name ?? "") ? -1 : (a.name ?? "") > (b.name ?? "") ? 1 : a.port - b.port,
          ),
        ready: [],
        notReady: [],
      };
      groups.set(key, g);
    }
    if (publish || isPodReady(pod)) g.ready.push(address(svc, pod));
    else g.notReady.push(address(svc, pod));
  }
  const byIP = (a: EndpointAddress, b: EndpointAddress) =>
    compareIPs(a.ip, b.ip) || ((a.targetRef?.uid ?? "") < (b.targetRef?.uid ?? "") ? -1 : 1);
  let subsets: EndpointSubset[] = [...groups.values()].map((g) => {
    const s: EndpointSubset = {};
    if (g.ready.length) s.addresses = g.ready.sort(byIP);
    if (g.notReady.length) s.notReadyAddresses = g.notReady.sort(byIP);
    if (g.ports.length) s.ports = g.ports;
    return s;
  });
  subsets.sort((a, b) => JSON.stringify(a.ports ?? []).localeCompare(JSON.stringify(b.ports ?? [])));
  const total = subsets.reduce(
    (n, s) => n + (s.addresses?.length ?? 0) + (s.notReadyAddresses?.length ?? 0),
    0,
  );
  if (total <= MAX_ENDPOINTS_CAPACITY) return { subsets, truncated: false };
  // truncateEndpoints: ready addresses are kept before not-ready ones.
  let room = MAX_ENDPOINTS_CAPACITY;
  subsets = subsets.map((s) => {
    const keep = (s.addresses ?? []).slice(0, room);
    room -= keep.length;
    return { ...s, addresses: keep };
  });
  subsets = subsets.map((s) => {
    const keep = (s.notReadyAddresses ?? []).slice(0, room);
    room -= keep.length;
    const out: EndpointSubset = { ...s, notReadyAddresses: keep };
    if (!out.addresses?.length) delete out.addresses;
    if (!out.notReadyAddresses?.length) delete out.notReadyAddresses;
    return out;
  });
  return { subsets: subsets.filter((s) => s.addresses || s.notReadyAddresses), truncated: true };
}

/** The Endpoints object for a Service (without resourceVersion). */
export function desiredEndpoints(svc: Service, pods: Pod[], triggerTime?: string): Endpoints {
  const { subsets, truncated } = endpointSubsets(svc, pods);
  const annotations: Record<string, string> = {};
  if (triggerTime) annotations[TRIGGER_TIME_ANNOTATION] = triggerTime;
  if (truncated) annotations[OVER_CAPACITY_ANNOTATION] = "truncated";
  const ep: Endpoints = {
    apiVersion: "v1",
    kind: "Endpoints",
    metadata: { name: svc.metadata.name, namespace: svc.metadata.namespace, labels: inheritedLabels(svc) },
  };
  if (Object.keys(annotations).length) ep.metadata.annotations = annotations;
  if (subsets.length) ep.subsets = subsets;
  return ep;
}

/** Whether the stored Endpoints already say what `want` says (the trigger time aside). */
export function endpointsEqual(have: Endpoints, want: Endpoints): boolean {
  const norm = (e: Endpoints) => [
    e.subsets ?? [],
    e.metadata.labels ?? {},
    e.metadata.annotations?.[OVER_CAPACITY_ANNOTATION] ?? "",
  ];
  return sameValue(norm(have), norm(want));
}
