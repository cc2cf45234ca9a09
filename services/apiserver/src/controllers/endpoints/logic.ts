// Which pods back a Service and on which ports, as the Endpoints and EndpointSlice controllers
// decide it (pkg/controller/util/endpoint, pkg/api/v1/pod FindPort): functions of data only.
import type { Condition, Node, Pod, Service, ServicePort } from "@klab/api";
import { mapSelectorMatches } from "../labels.ts";
import { canonicalJSON } from "../names.ts";

export const SERVICE_NAME_LABEL = "kubernetes.io/service-name";
export const MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by";
export const SLICE_CONTROLLER_NAME = "endpointslice-controller.k8s.io";
export const HEADLESS_LABEL = "service.kubernetes.io/headless";
export const TRIGGER_TIME_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time";
export const OVER_CAPACITY_ANNOTATION = "endpoints.kubernetes.io/over-capacity";
export const ZONE_LABEL = "topology.kubernetes.io/zone";

/** A Service whose endpoints these controllers manage: it has a selector and is not ExternalName. */
export function managesEndpoints(svc: Service): boolean {
  return (
    !!svc.spec?.selector && Object.keys(svc.spec.selector).length > 0 && svc.spec.type !== "ExternalName"
  );
}

export function isHeadless(svc: Service): boolean {
  return svc.spec?.clusterIP === "None";
}

/** podutil.FindPort: a numeric targetPort as is, a named one looked up in the pod's containers. */
export function findPort(pod: Pod, sp: ServicePort): number | undefined {
  const tp = sp.targetPort;
  if (tp === undefined || tp === "" || tp === 0) return sp.port;
  if (typeof tp === "number") return tp;
  if (/^\d+$/.test(tp)) return Number(tp);
  const proto = sp.protocol ?? "TCP";
  for (const c of pod.spec?.containers ?? []) {
    for (const p of c.ports ?? [])
      if (p.name === tp && (p.protocol ?? "TCP") === proto) return p.containerPort;
  }
  return undefined;
}

/** ShouldPodBeInEndpoints */
export function shouldPodBeInEndpoints(pod: Pod, includeTerminating: boolean): boolean {
  if (!pod.status?.podIP && !pod.status?.podIPs?.length) return false;
  const phase = pod.status?.phase;
  const restart = pod.spec?.restartPolicy ?? "Always";
  if (restart === "Never" && (phase === "Failed" || phase === "Succeeded")) return false;
  if (restart === "OnFailure" && phase === "Succeeded") return false;
  if (phase === "Failed" || phase === "Succeeded") return false;
  if (!includeTerminating && pod.metadata.deletionTimestamp) return false;
  return true;
}

export function podIP(pod: Pod): string {
  return pod.status?.podIP ?? pod.status?.podIPs?.[0]?.ip ?? "";
}

export function isPodReady(pod: Pod): boolean {
  return pod.status?.conditions?.some((c: Condition) => c.type === "Ready" && c.status === "True") ?? false;
}

export interface ResolvedPort {
  name: string;
  port: number;
  protocol: string;
  appProtocol?: string;
}

/** The Service's ports as they resolve for one pod (ports that do not resolve are left out). */
export function podPorts(svc: Service, pod: Pod): ResolvedPort[] {
  const out: ResolvedPort[] = [];
  for (const sp of svc.spec?.ports ?? []) {
    const port = findPort(pod, sp);
    if (port === undefined) continue;
    const r: ResolvedPort = { name: sp.name ?? "", port, protocol: sp.protocol ?? "TCP" };
    if (sp.appProtocol) r.appProtocol = sp.appProtocol;
    out.push(r);
  }
  return out;
}

export function portsKey(ports: ResolvedPort[]): string {
  return JSON.stringify(ports.map((p) => [p.name, p.port, p.protocol, p.appProtocol ?? ""]));
}

export function selectedPods(svc: Service, pods: Pod[]): Pod[] {
  const ns = svc.metadata.namespace;
  return pods.filter(
    (p) => p.metadata.namespace === ns && mapSelectorMatches(svc.spec?.selector, p.metadata.labels),
  );
}

/** The hostname a pod publishes through this Service (hostname + subdomain == service name). */
export function endpointHostname(svc: Service, pod: Pod): string | undefined {
  const h = pod.spec?.hostname;
  return h && pod.spec?.subdomain === svc.metadata.name ? h : undefined;
}

export function nodeZone(nodes: Map<string, Node>, nodeName: string | undefined): string | undefined {
  return nodeName ? nodes.get(nodeName)?.metadata.labels?.[ZONE_LABEL] : undefined;
}

/** The latest change among the Service and its pods: what triggered this endpoints change. */
export function lastChangeTriggerTime(svc: Service, pods: Pod[]): string | undefined {
  let latest = svc.metadata.creationTimestamp ?? "";
  for (const p of pods) {
    const times = [
      p.metadata.creationTimestamp,
      p.metadata.deletionTimestamp,
      ...(p.status?.conditions ?? []).map((c) => c.lastTransitionTime),
    ];
    for (const t of times) if (t && t > latest) latest = t;
  }
  return latest || undefined;
}

const ipNumbers = new Map<string, number>();

function ipNumber(ip: string): number {
  let n = ipNumbers.get(ip);
  if (n === undefined) {
    n = ip.split(".").reduce((acc, o) => acc * 256 + Number(o), 0);
    if (ipNumbers.size > 200_000) ipNumbers.clear();
    ipNumbers.set(ip, n);
  }
  return n;
}

export function compareIPs(a: string, b: string): number {
  return ipNumber(a) - ipNumber(b) || (a < b ? -1 : a > b ? 1 : 0);
}

/** Deep equality of API values whatever their key order; the common equal case costs one stringify. */
export function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b) || canonicalJSON(a) === canonicalJSON(b);
}

/** Labels Endpoints and EndpointSlices carry: the Service's own, plus the headless marker. */
export function inheritedLabels(svc: Service): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(svc.metadata.labels ?? {})) {
    if (k !== SERVICE_NAME_LABEL && k !== MANAGED_BY_LABEL) out[k] = v;
  }
  if (isHeadless(svc)) out[HEADLESS_LABEL] = "";
  return out;
}
