// The EndpointSlices a selector Service should have (pkg/controller/endpointslice reconciler):
// endpoints grouped by the ports they resolve to, at most 100 per slice, kept in the slice they
// already sit in so an unrelated pod change rewrites one slice, not all of them.
import type { Endpoint, EndpointSlice, EndpointSlicePort, Node, Pod, Service } from "@klab/api";
import { generateName } from "../names.ts";
import {
  MANAGED_BY_LABEL,
  SERVICE_NAME_LABEL,
  SLICE_CONTROLLER_NAME,
  TRIGGER_TIME_ANNOTATION,
  compareIPs,
  endpointHostname,
  inheritedLabels,
  isPodReady,
  nodeZone,
  podIP,
  podPorts,
  portsKey,
  selectedPods,
  shouldPodBeInEndpoints,
  sameValue,
  type ResolvedPort,
} from "./logic.ts";

export const MAX_ENDPOINTS_PER_SLICE = 100;

/** podToEndpoint */
export function podEndpoint(svc: Service, pod: Pod, nodes: Map<string, Node>): Endpoint {
  const publish = !!svc.spec?.publishNotReadyAddresses;
  const terminating = !!pod.metadata.deletionTimestamp;
  const serving = publish || isPodReady(pod);
  const ep: Endpoint = {
    addresses: [podIP(pod)],
    // "ready" is never true for a terminating pod, unless publishNotReadyAddresses says so.
    conditions: { ready: publish || (serving && !terminating), serving, terminating },
  };
  const host = endpointHostname(svc, pod);
  if (host) ep.hostname = host;
  ep.targetRef = {
    kind: "Pod",
    namespace: pod.metadata.namespace,
    name: pod.metadata.name,
    uid: pod.metadata.uid,
  };
  if (pod.spec?.nodeName) ep.nodeName = pod.spec.nodeName;
  const zone = nodeZone(nodes, pod.spec?.nodeName);
  if (zone) ep.zone = zone;
  return ep;
}

function slicePorts(ports: ResolvedPort[]): EndpointSlicePort[] {
  return ports.map((p) => {
    const out: EndpointSlicePort = {
      name: p.name,
      port: p.port,
      protocol: p.protocol as EndpointSlicePort["protocol"],
    };
    if (p.appProtocol) out.appProtocol = p.appProtocol;
    return out;
  });
}

function slicePortsKey(ports: EndpointSlicePort[] | null | undefined): string {
  return portsKey(
    (ports ?? []).map((p) => ({
      name: p.name ?? "",
      port: p.port ?? 0,
      protocol: p.protocol ?? "TCP",
      appProtocol: p.appProtocol,
    })),
  );
}

export function sliceLabels(svc: Service): Record<string, string> {
  return {
    ...inheritedLabels(svc),
    [SERVICE_NAME_LABEL]: svc.metadata.name!,
    [MANAGED_BY_LABEL]: SLICE_CONTROLLER_NAME,
  };
}

export function ownsSlice(svc: Service, slice: EndpointSlice): boolean {
  return (
    slice.metadata.namespace === svc.metadata.namespace &&
    slice.metadata.labels?.[SERVICE_NAME_LABEL] === svc.metadata.name &&
    slice.metadata.labels?.[MANAGED_BY_LABEL] === SLICE_CONTROLLER_NAME
  );
}

export interface SlicePlan {
  create: EndpointSlice[];
  update: EndpointSlice[];
  delete: EndpointSlice[];
}

function newSlice(svc: Service, ports: EndpointSlicePort[] | undefined): EndpointSlice {
  const slice: EndpointSlice = {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: {
      generateName: `${svc.metadata.name}-`,
      name: generateName(`${svc.metadata.name}-`),
      namespace: svc.metadata.namespace,
      labels: sliceLabels(svc),
      ownerReferences: [
        {
          apiVersion: "v1",
          kind: "Service",
          name: svc.metadata.name!,
          uid: svc.metadata.uid!,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    addressType: "IPv4",
    endpoints: [],
  };
  if (ports?.length) slice.ports = ports;
  return slice;
}

function endpointKey(e: Endpoint): string {
  return e.targetRef?.uid ?? e.addresses.join(",");
}

function sortEndpoints(eps: Endpoint[]): Endpoint[] {
  return eps.sort((a, b) => compareIPs(a.addresses[0] ?? "", b.addresses[0] ?? ""));
}

/**
 * Creates, updates and deletes that turn `existing` (the slices this controller owns for the
 * Service) into the slices the pods imply. A Service with no endpoints keeps one empty slice.
 */
export function planSlices(
  svc: Service,
  pods: Pod[],
  existing: EndpointSlice[],
  nodes: Map<string, Node>,
  triggerTime?: string,
): SlicePlan {
  const groups = new Map<string, { ports: EndpointSlicePort[]; endpoints: Map<string, Endpoint> }>();
  for (const pod of selectedPods(svc, pods)) {
    if (!shouldPodBeInEndpoints(pod, true)) continue;
    const ports = podPorts(svc, pod);
    if (ports.length === 0 && (svc.spec?.ports?.length ?? 0) > 0) continue;
    const key = portsKey(ports);
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { ports: slicePorts(ports), endpoints: new Map() }));
    const ep = podEndpoint(svc, pod, nodes);
    g.endpoints.set(endpointKey(ep), ep);
  }

  const labels = sliceLabels(svc);
  const plan: SlicePlan = { create: [], update: [], delete: [] };
  const finish = (slice: EndpointSlice, original?: EndpointSlice) => {
    sortEndpoints(slice.endpoints ?? []);
    if (!original) {
      if (triggerTime) slice.metadata.annotations = { [TRIGGER_TIME_ANNOTATION]: triggerTime };
      plan.create.push(slice);
      return;
    }
    const same =
      sameValue(original.endpoints ?? [], slice.endpoints ?? []) &&
      sameValue(original.ports ?? [], slice.ports ?? []) &&
      sameValue(original.metadata.labels ?? {}, labels);
    if (same) return;
    slice.metadata.labels = { ...labels };
    slice.metadata.annotations = { ...(slice.metadata.annotations ?? {}) };
    if (triggerTime) slice.metadata.annotations[TRIGGER_TIME_ANNOTATION] = triggerTime;
    plan.update.push(slice);
  };

  const byPorts = new Map<string, EndpointSlice[]>();
  for (const s of [...existing].sort((a, b) => (a.metadata.name! < b.metadata.name! ? -1 : 1))) {
    const k = slicePortsKey(s.ports);
    const l = byPorts.get(k);
    if (l) l.push(s);
    else byPorts.set(k, [s]);
  }

  const keep: EndpointSlice[] = [];
  for (const [key, g] of groups) {
    const slices = byPorts.get(key) ?? [];
    byPorts.delete(key);
    const placed = new Set<string>();
    const working: Array<{ slice: EndpointSlice; original: EndpointSlice }> = [];
    // Endpoints stay where they are, refreshed.
    for (const s of slices) {
      const copy = structuredClone(s);
      copy.endpoints = [];
      for (const e of s.endpoints ?? []) {
        const k = endpointKey(e);
        const fresh = g.endpoints.get(k);
        if (fresh && !placed.has(k) && copy.endpoints.length < MAX_ENDPOINTS_PER_SLICE) {
          copy.endpoints.push(fresh);
          placed.add(k);
        }
      }
      copy.ports = g.ports.length ? g.ports : undefined;
      if (!copy.ports) delete copy.ports;
      working.push({ slice: copy, original: s });
    }
    // New endpoints fill the slices with room, then new slices.
    const pending = [...g.endpoints.entries()].filter(([k]) => !placed.has(k)).map(([, e]) => e);
    sortEndpoints(pending);
    for (const w of working) {
      while (pending.length && w.slice.endpoints!.length < MAX_ENDPOINTS_PER_SLICE)
        w.slice.endpoints!.push(pending.shift()!);
    }
    while (pending.length) {
      const s = newSlice(svc, g.ports);
      s.endpoints = pending.splice(0, MAX_ENDPOINTS_PER_SLICE);
      finish(s);
      keep.push(s);
    }
    for (const w of working) {
      if (w.slice.endpoints!.length === 0) plan.delete.push(w.original);
      else {
        finish(w.slice, w.original);
        keep.push(w.slice);
      }
    }
  }
  for (const rest of byPorts.values()) plan.delete.push(...rest);

  if (keep.length === 0) {
    // The placeholder: one empty slice so consumers can tell "no endpoints" from "not synced".
    const reuse = plan.delete.shift();
    if (reuse) {
      const copy = structuredClone(reuse);
      copy.endpoints = [];
      delete copy.ports;
      finish(copy, reuse);
    } else finish(newSlice(svc, undefined));
  }
  return plan;
}
