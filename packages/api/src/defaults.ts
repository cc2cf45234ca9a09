// Defaulting as kube-apiserver applies it on create and update: the v1 SetDefaults_* functions, plus
// the few values its registry strategies and default admission plugins fill in that every `-o yaml`
// shows (namespace finalizers, pod priority and not-ready/unreachable tolerations, clusterIPs mirroring
// clusterIP, Secret stringData merged into data).
import type {
  Container,
  DaemonSet,
  Deployment,
  Endpoints,
  EndpointSlice,
  Ingress,
  IngressClass,
  KubeObject,
  Namespace,
  NetworkPolicy,
  Node,
  Pod,
  PodSpec,
  PodTemplateSpec,
  Probe,
  ReplicaSet,
  Secret,
  Service,
} from "./types.ts";
import { ipFamilyOf } from "./validation/strings.ts";

function defaultProbe(p: Probe | undefined): void {
  if (!p) return;
  p.timeoutSeconds ??= 1;
  p.periodSeconds ??= 10;
  p.successThreshold ??= 1;
  p.failureThreshold ??= 3;
  if (p.httpGet) {
    p.httpGet.path ??= "/";
    p.httpGet.scheme ??= "HTTP";
  }
}

/** `latest` or no tag (and no digest) means Always, as kubelet must re-check a moving tag. */
function defaultPullPolicy(image: string | undefined): "Always" | "IfNotPresent" {
  if (!image) return "IfNotPresent";
  if (image.includes("@")) return "IfNotPresent";
  const lastSlash = image.lastIndexOf("/");
  const colon = image.indexOf(":", lastSlash + 1);
  const tag = colon < 0 ? "" : image.slice(colon + 1);
  return tag === "" || tag === "latest" ? "Always" : "IfNotPresent";
}

function defaultContainer(c: Container, hostNetwork: boolean): void {
  c.imagePullPolicy ??= defaultPullPolicy(c.image);
  c.terminationMessagePath ??= "/dev/termination-log";
  c.terminationMessagePolicy ??= "File";
  for (const p of c.ports ?? []) {
    p.protocol ??= "TCP";
    // with the host's network the container port is the host port
    if (hostNetwork && !p.hostPort) p.hostPort = p.containerPort;
  }
  for (const e of c.env ?? []) if (e.valueFrom?.fieldRef) e.valueFrom.fieldRef.apiVersion ??= "v1";
  defaultProbe(c.livenessProbe);
  defaultProbe(c.readinessProbe);
  defaultProbe(c.startupProbe);
  if (c.resources === undefined) c.resources = {};
}

function defaultPodSpec(spec: PodSpec): void {
  spec.dnsPolicy ??= "ClusterFirst";
  spec.restartPolicy ??= "Always";
  spec.terminationGracePeriodSeconds ??= 30;
  spec.schedulerName ??= "default-scheduler";
  spec.securityContext ??= {};
  if (spec.serviceAccountName && !spec.serviceAccount) spec.serviceAccount = spec.serviceAccountName;
  if (spec.serviceAccount && !spec.serviceAccountName) spec.serviceAccountName = spec.serviceAccount;
  const hostNetwork = spec.hostNetwork === true;
  for (const c of spec.containers ?? []) defaultContainer(c, hostNetwork);
  for (const c of spec.initContainers ?? []) defaultContainer(c, hostNetwork);
  for (const v of spec.volumes ?? []) {
    const sources = Object.keys(v).filter((k) => k !== "name");
    if (sources.length === 0) v.emptyDir = {};
    if (v.configMap) v.configMap.defaultMode ??= 420;
    if (v.secret) v.secret.defaultMode ??= 420;
    if (v.projected) v.projected.defaultMode ??= 420;
    if (v.downwardAPI) v.downwardAPI.defaultMode ??= 420;
    if (v.hostPath) v.hostPath.type ??= "";
    for (const item of v.downwardAPI?.items ?? []) if (item.fieldRef) item.fieldRef.apiVersion ??= "v1";
  }
}

function defaultTemplate(t: PodTemplateSpec | undefined): void {
  if (!t) return;
  t.metadata ??= {};
  // Go serialises the template's zero creationTimestamp as null; kubectl -o yaml shows it
  if (t.metadata.creationTimestamp === undefined) t.metadata.creationTimestamp = null;
  if (t.spec) defaultPodSpec(t.spec);
}

function qosClassOf(spec: PodSpec): "Guaranteed" | "Burstable" | "BestEffort" {
  const all = [...(spec.containers ?? []), ...(spec.initContainers ?? [])];
  let any = false;
  let guaranteed = all.length > 0;
  for (const c of all) {
    const req = c.resources?.requests ?? {};
    const lim = c.resources?.limits ?? {};
    const cpuMem = (r: Record<string, unknown>) => ["cpu", "memory"].filter((k) => r[k] !== undefined);
    if (cpuMem(req).length || cpuMem(lim).length) any = true;
    for (const k of ["cpu", "memory"]) {
      if (lim[k] === undefined || String(req[k] ?? lim[k]) !== String(lim[k])) guaranteed = false;
    }
  }
  if (!any) return "BestEffort";
  return guaranteed ? "Guaranteed" : "Burstable";
}

function defaultPod(pod: Pod): void {
  pod.spec ??= { containers: [] };
  const spec = pod.spec;
  // requests default to limits for each resource the container limits
  for (const c of [...(spec.containers ?? []), ...(spec.initContainers ?? [])]) {
    const lim = c.resources?.limits;
    if (lim && Object.keys(lim).length) {
      c.resources!.requests ??= {};
      for (const [k, v] of Object.entries(lim)) c.resources!.requests[k] ??= v;
    }
  }
  defaultPodSpec(spec);
  // only pods, not templates, carry it (SetDefaults_Pod)
  spec.enableServiceLinks ??= true;
  spec.serviceAccountName ??= "default";
  spec.serviceAccount ??= spec.serviceAccountName;
  // admission: Priority and DefaultTolerationSeconds
  spec.priority ??= 0;
  spec.preemptionPolicy ??= "PreemptLowerPriority";
  spec.tolerations ??= [];
  for (const key of ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"]) {
    const has = spec.tolerations.some(
      (t) =>
        (t.key === key || (t.key ?? "") === "") &&
        (t.effect === "NoExecute" || !t.effect) &&
        t.operator === "Exists",
    );
    if (!has) spec.tolerations.push({ key, operator: "Exists", effect: "NoExecute", tolerationSeconds: 300 });
  }
  pod.status ??= {};
  pod.status.phase ??= "Pending";
  pod.status.qosClass ??= qosClassOf(spec);
}

function defaultService(svc: Service): void {
  svc.spec ??= {};
  const s = svc.spec;
  s.type ??= "ClusterIP";
  s.sessionAffinity ??= "None";
  if (s.sessionAffinity === "ClientIP") {
    s.sessionAffinityConfig ??= {};
    s.sessionAffinityConfig.clientIP ??= {};
    s.sessionAffinityConfig.clientIP.timeoutSeconds ??= 10800;
  }
  for (const p of s.ports ?? []) {
    p.protocol ??= "TCP";
    if (p.targetPort === undefined || p.targetPort === 0 || p.targetPort === "") p.targetPort = p.port;
  }
  if ((s.type === "NodePort" || s.type === "LoadBalancer") && !s.externalTrafficPolicy)
    s.externalTrafficPolicy = "Cluster";
  if (s.type !== "ExternalName") s.internalTrafficPolicy ??= "Cluster";
  if (s.type === "LoadBalancer") s.allocateLoadBalancerNodePorts ??= true;
  if (s.type !== "ExternalName") {
    // the registry keeps clusterIP and clusterIPs in step and fills the IP families
    if (s.clusterIP && (!s.clusterIPs || s.clusterIPs.length === 0)) s.clusterIPs = [s.clusterIP];
    if (!s.clusterIP && s.clusterIPs?.length) s.clusterIP = s.clusterIPs[0];
    if (!s.ipFamilies || s.ipFamilies.length === 0) {
      const fam = s.clusterIP && s.clusterIP !== "None" ? ipFamilyOf(s.clusterIP) : undefined;
      s.ipFamilies = [fam ?? "IPv4"];
    }
    s.ipFamilyPolicy ??= s.ipFamilies.length > 1 ? "RequireDualStack" : "SingleStack";
  }
  svc.status ??= { loadBalancer: {} };
  svc.status.loadBalancer ??= {};
}

function base64(s: string): string {
  return Buffer.from(s, "utf8").toString("base64");
}

/**
 * Fills in every default kube-apiserver would, in place. Safe to call again on an already defaulted
 * object (updates are defaulted too).
 */
export function applyDefaults(obj: KubeObject): void {
  if (typeof obj !== "object" || obj === null) return;
  try {
    defaultObject(obj);
  } catch {
    // a body of the wrong JSON shape: decodeObject/validateObject report it, defaulting leaves it be
  }
}

function defaultObject(obj: KubeObject): void {
  if (typeof obj.metadata !== "object" || obj.metadata === null) obj.metadata = {};
  const group = obj.apiVersion?.includes("/") ? obj.apiVersion.split("/")[0] : "";
  switch (`${group}/${obj.kind}`) {
    case "/Pod":
      defaultPod(obj as Pod);
      break;
    case "/Service":
      defaultService(obj as Service);
      break;
    case "/Namespace": {
      const ns = obj as Namespace;
      if (ns.metadata.name) {
        ns.metadata.labels ??= {};
        ns.metadata.labels["kubernetes.io/metadata.name"] = ns.metadata.name;
      }
      ns.spec ??= {};
      ns.spec.finalizers ??= ["kubernetes"];
      ns.status ??= {};
      ns.status.phase ??= "Active";
      break;
    }
    case "/Secret": {
      const s = obj as Secret;
      s.type ??= "Opaque";
      if (s.stringData) {
        s.data ??= {};
        for (const [k, v] of Object.entries(s.stringData)) s.data[k] = base64(v);
        delete s.stringData;
      }
      break;
    }
    case "/Endpoints":
      for (const ss of (obj as Endpoints).subsets ?? []) for (const p of ss.ports ?? []) p.protocol ??= "TCP";
      break;
    case "/Node": {
      const n = obj as Node;
      n.spec ??= {};
      if (n.spec.podCIDR && !n.spec.podCIDRs?.length) n.spec.podCIDRs = [n.spec.podCIDR];
      if (!n.spec.podCIDR && n.spec.podCIDRs?.length) n.spec.podCIDR = n.spec.podCIDRs[0];
      if (n.status?.capacity && !n.status.allocatable) n.status.allocatable = { ...n.status.capacity };
      break;
    }
    case "apps/Deployment": {
      const d = obj as Deployment;
      if (!d.spec) break;
      d.spec.replicas ??= 1;
      d.spec.strategy ??= {};
      d.spec.strategy.type ??= "RollingUpdate";
      if (d.spec.strategy.type === "RollingUpdate") {
        d.spec.strategy.rollingUpdate ??= {};
        d.spec.strategy.rollingUpdate.maxUnavailable ??= "25%";
        d.spec.strategy.rollingUpdate.maxSurge ??= "25%";
      }
      d.spec.revisionHistoryLimit ??= 10;
      d.spec.progressDeadlineSeconds ??= 600;
      defaultTemplate(d.spec.template);
      d.status ??= {};
      break;
    }
    case "apps/ReplicaSet": {
      const rs = obj as ReplicaSet;
      if (!rs.spec) break;
      rs.spec.replicas ??= 1;
      defaultTemplate(rs.spec.template);
      rs.status ??= { replicas: 0 };
      break;
    }
    case "apps/DaemonSet": {
      const ds = obj as DaemonSet;
      if (!ds.spec) break;
      ds.spec.updateStrategy ??= {};
      ds.spec.updateStrategy.type ??= "RollingUpdate";
      if (ds.spec.updateStrategy.type === "RollingUpdate") {
        ds.spec.updateStrategy.rollingUpdate ??= {};
        ds.spec.updateStrategy.rollingUpdate.maxUnavailable ??= 1;
        ds.spec.updateStrategy.rollingUpdate.maxSurge ??= 0;
      }
      ds.spec.revisionHistoryLimit ??= 10;
      defaultTemplate(ds.spec.template);
      ds.status ??= {
        currentNumberScheduled: 0,
        numberMisscheduled: 0,
        desiredNumberScheduled: 0,
        numberReady: 0,
      };
      break;
    }
    case "discovery.k8s.io/EndpointSlice":
      for (const p of (obj as EndpointSlice).ports ?? []) {
        p.protocol ??= "TCP";
        p.name ??= "";
      }
      break;
    case "networking.k8s.io/NetworkPolicy": {
      const np = obj as NetworkPolicy;
      if (!np.spec) break;
      for (const r of [...(np.spec.ingress ?? []), ...(np.spec.egress ?? [])])
        for (const p of r.ports ?? []) p.protocol ??= "TCP";
      if (!np.spec.policyTypes || np.spec.policyTypes.length === 0) {
        // any policy implies Ingress; Egress only when it has egress rules
        np.spec.policyTypes = ["Ingress"];
        if (np.spec.egress?.length) np.spec.policyTypes.push("Egress");
      }
      break;
    }
    case "networking.k8s.io/Ingress": {
      const ing = obj as Ingress;
      // Go serialises the empty status struct; kubectl -o yaml shows it
      ing.status ??= {};
      ing.status.loadBalancer ??= {};
      break;
    }
    case "networking.k8s.io/IngressClass": {
      const p = (obj as IngressClass).spec?.parameters;
      if (p) p.scope ??= "Cluster";
      break;
    }
  }
}
