// Server-side Table printing: the columns and cells kube-apiserver 1.32 returns for
// `Accept: application/json;as=Table`, which is what `kubectl get` (and `-o wide`) prints.
import type { ResourceType } from "../resources.ts";
import { labelSelectorToString, mapSelectorToString } from "../selectors/labels.ts";
import type {
  ConfigMap,
  Container,
  DaemonSet,
  Deployment,
  Endpoints,
  EndpointSlice,
  Event,
  Ingress,
  IngressClass,
  KubeObject,
  Lease,
  Namespace,
  NetworkPolicy,
  Node,
  Pod,
  ReplicaSet,
  Secret,
  Service,
  ServiceAccount,
  TableColumnDefinition,
} from "../types.ts";
import { translateTimestampSince } from "./duration.ts";
import { summarizePod } from "./pod.ts";

export interface PrintOptions {
  /** Include priority-1 columns (kube-apiserver always does; kubectl shows them with -o wide). */
  wide?: boolean;
  /** The clock ages are measured against. */
  now?: Date;
}

export interface PrintedRow {
  cells: unknown[];
  conditions?: Array<{ type: string; status: string; reason?: string; message?: string }>;
  object?: unknown;
}

export interface PrintedTable {
  columnDefinitions: TableColumnDefinition[];
  rows: PrintedRow[];
}

const nameDoc =
  "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const ageDoc =
  "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const containersDoc = "Names of each container in the template.";
const imagesDoc = "Images referenced by each container in the template.";

function col(
  name: string,
  description: string,
  priority = 0,
  type = "string",
  format = "",
): TableColumnDefinition {
  return { name, type, format, description, priority };
}
const NAME = col("Name", nameDoc, 0, "string", "name");
const AGE = col("Age", ageDoc);

interface Printer {
  columns: TableColumnDefinition[];
  /** cells for every column, in column order */
  row(obj: KubeObject, now: Date, wide: boolean): PrintedRow;
}

const age = (o: KubeObject, now: Date) => translateTimestampSince(o.metadata?.creationTimestamp, now);

function layoutContainers(containers: Container[] | undefined): [string, string] {
  const cs = containers ?? [];
  return [cs.map((c) => c.name).join(","), cs.map((c) => c.image ?? "").join(",")];
}

/** IPs (or hostnames) of a load balancer status, sorted and deduplicated, cut to 16 chars unless wide. */
function loadBalancerString(
  ingress: Array<{ ip?: string; hostname?: string }> | undefined,
  wide: boolean,
): string {
  const set = new Set<string>();
  for (const i of ingress ?? []) {
    if (i.ip) set.add(i.ip);
    else if (i.hostname) set.add(i.hostname);
  }
  let r = [...set].sort().join(",");
  if (!wide && r.length > 16) r = r.slice(0, 13) + "...";
  return r;
}

function serviceExternalIP(svc: Service, wide: boolean): string {
  const s = svc.spec ?? {};
  const ext = s.externalIPs ?? [];
  switch (s.type) {
    case "ClusterIP":
    case "NodePort":
      return ext.length ? ext.join(",") : "<none>";
    case "LoadBalancer": {
      const lb = loadBalancerString(svc.status?.loadBalancer?.ingress, wide);
      if (ext.length) return [...(lb ? lb.split(",") : []), ...ext].join(",");
      return lb || "<pending>";
    }
    case "ExternalName":
      return s.externalName ?? "";
  }
  return "<unknown>";
}

function servicePorts(svc: Service): string {
  const ports = (svc.spec?.ports ?? []).map((p) =>
    p.nodePort && p.nodePort > 0 ? `${p.port}:${p.nodePort}/${p.protocol}` : `${p.port}/${p.protocol}`,
  );
  return ports.length ? ports.join(",") : "<none>";
}

function joinHostPort(ip: string, port: number): string {
  return ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** The ENDPOINTS cell: at most three, then "+ N more...". */
export function formatEndpoints(ep: Endpoints): string {
  const subsets = ep.subsets ?? [];
  if (subsets.length === 0) return "<none>";
  const list: string[] = [];
  const max = 3;
  let more = false;
  let count = 0;
  for (const ss of subsets) {
    const addrs = ss.addresses ?? [];
    if (!(ss.ports ?? []).length) {
      count += addrs.length;
      for (const a of addrs) {
        if (list.length === max) {
          more = true;
          break;
        }
        list.push(a.ip ?? "");
      }
      continue;
    }
    for (const port of ss.ports ?? []) {
      count += addrs.length;
      for (const a of addrs) {
        if (list.length === max) {
          more = true;
          break;
        }
        list.push(joinHostPort(a.ip ?? "", port.port ?? 0));
      }
    }
  }
  const ret = list.join(",");
  if (more) return `${ret} + ${count - max} more...`;
  return ret || "<none>";
}

function listWithMore(list: string[], more: boolean, count: number, max: number): string {
  const ret = list.join(",");
  if (more) return `${ret} + ${count - max} more...`;
  return ret || "<unset>";
}

function sliceCells(es: EndpointSlice): [string, string] {
  const max = 3;
  const ports: string[] = [];
  let pMore = false;
  let pCount = 0;
  for (const p of es.ports ?? []) {
    if (ports.length < max)
      ports.push(p.port !== undefined && p.port !== null ? String(p.port) : p.name ? p.name : "*");
    else if (ports.length === max) pMore = true;
    pCount++;
  }
  const addrs: string[] = [];
  let aMore = false;
  let aCount = 0;
  for (const e of es.endpoints ?? [])
    for (const a of e.addresses ?? []) {
      if (addrs.length < max) addrs.push(a);
      else if (addrs.length === max) aMore = true;
      aCount++;
    }
  return [listWithMore(ports, pMore, pCount, max), listWithMore(addrs, aMore, aCount, max)];
}

function nodeRoles(node: Node): string {
  const roles = new Set<string>();
  for (const [k, v] of Object.entries(node.metadata.labels ?? {})) {
    if (k.startsWith("node-role.kubernetes.io/")) {
      const role = k.slice("node-role.kubernetes.io/".length);
      if (role) roles.add(role);
    } else if (k === "kubernetes.io/role" && v) {
      roles.add(v);
    }
  }
  return roles.size ? [...roles].sort().join(",") : "<none>";
}

function nodeStatus(node: Node): string {
  const status: string[] = [];
  const ready = (node.status?.conditions ?? []).find((c) => c.type === "Ready");
  if (ready) status.push(ready.status === "True" ? "Ready" : "NotReady");
  if (status.length === 0) status.push("Unknown");
  if (node.spec?.unschedulable) status.push("SchedulingDisabled");
  return status.join(",");
}

function nodeAddress(node: Node, type: string): string {
  return (node.status?.addresses ?? []).find((a) => a.type === type)?.address ?? "<none>";
}

function ingressHosts(ing: Ingress): string {
  const rules = ing.spec?.rules ?? [];
  const list: string[] = [];
  const max = 4;
  let more = false;
  for (const r of rules) {
    if (list.length === max) more = true;
    if (!more && r.host) list.push(r.host);
  }
  if (list.length === 0) return "*";
  const ret = list.join(",");
  return more ? `${ret} + ${rules.length - max} more...` : ret;
}

function eventTime(ev: Event, now: Date): { first: string; last: string; count: number } {
  const first = ev.firstTimestamp
    ? translateTimestampSince(ev.firstTimestamp, now)
    : translateTimestampSince(ev.eventTime ?? undefined, now);
  let last = ev.lastTimestamp ? translateTimestampSince(ev.lastTimestamp, now) : first;
  let count = ev.count ?? 0;
  if (ev.series) {
    last = translateTimestampSince(ev.series.lastObservedTime, now);
    count = ev.series.count ?? 0;
  } else if (count === 0) {
    count = 1;
  }
  return { first, last, count };
}

const printers: Record<string, Printer> = {
  "/Pod": {
    columns: [
      NAME,
      col("Ready", "The aggregate readiness state of this pod for accepting traffic."),
      col("Status", "The aggregate status of the containers in this pod."),
      col(
        "Restarts",
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
      ),
      AGE,
      col(
        "IP",
        "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
        1,
      ),
      col(
        "Node",
        "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this node becomes responsible for the lifecycle of this pod. This field should not be used to express a desire for the pod to be scheduled on a specific node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename",
        1,
      ),
      col(
        "Nominated Node",
        "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled.",
        1,
      ),
      col(
        "Readiness Gates",
        'If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to "True" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates',
        1,
      ),
    ],
    row(o, now) {
      const pod = o as Pod;
      const s = summarizePod(pod, now);
      const gates = pod.spec?.readinessGates ?? [];
      let readinessGates = "<none>";
      if (gates.length) {
        let trueCount = 0;
        for (const g of gates) {
          const c = (pod.status?.conditions ?? []).find((x) => x.type === g.conditionType);
          if (c?.status === "True") trueCount++;
        }
        readinessGates = `${trueCount}/${gates.length}`;
      }
      const row: PrintedRow = {
        cells: [
          pod.metadata.name,
          s.ready,
          s.status,
          s.restarts,
          age(pod, now),
          pod.status?.podIPs?.[0]?.ip || "<none>",
          pod.spec?.nodeName || "<none>",
          pod.status?.nominatedNodeName || "<none>",
          readinessGates,
        ],
      };
      if (s.conditions) row.conditions = s.conditions;
      return row;
    },
  },
  "/Service": {
    columns: [
      NAME,
      col(
        "Type",
        "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer.",
      ),
      col("Cluster-IP", "clusterIP is the IP address of the service and is usually assigned randomly."),
      col(
        "External-IP",
        "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.",
      ),
      col("Port(s)", "The list of ports that are exposed by this service."),
      AGE,
      col("Selector", "Route service traffic to pods with label keys and values matching this selector.", 1),
    ],
    row(o, now, wide) {
      const svc = o as Service;
      return {
        cells: [
          svc.metadata.name,
          svc.spec?.type ?? "",
          svc.spec?.clusterIPs?.[0] ?? "<none>",
          serviceExternalIP(svc, wide),
          servicePorts(svc),
          age(svc, now),
          mapSelectorToString(svc.spec?.selector),
        ],
      };
    },
  },
  "/Endpoints": {
    columns: [NAME, col("Endpoints", "The set of all endpoints is the union of all subsets."), AGE],
    row: (o, now) => ({ cells: [o.metadata.name, formatEndpoints(o as Endpoints), age(o, now)] }),
  },
  "/Namespace": {
    columns: [NAME, col("Status", "The status of the namespace"), AGE],
    row: (o, now) => ({ cells: [o.metadata.name, (o as Namespace).status?.phase ?? "", age(o, now)] }),
  },
  "/Node": {
    columns: [
      NAME,
      col("Status", "The status of the node"),
      col("Roles", "The roles of the node"),
      AGE,
      col("Version", "Kubelet Version reported by the node."),
      col("Internal-IP", "List of addresses reachable to the node.", 1),
      col("External-IP", "List of addresses reachable to the node.", 1),
      col(
        "OS-Image",
        "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
        1,
      ),
      col(
        "Kernel-Version",
        "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
        1,
      ),
      col(
        "Container-Runtime",
        "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
        1,
      ),
    ],
    row(o, now) {
      const n = o as Node;
      const info = n.status?.nodeInfo;
      return {
        cells: [
          n.metadata.name,
          nodeStatus(n),
          nodeRoles(n),
          age(n, now),
          info?.kubeletVersion ?? "",
          nodeAddress(n, "InternalIP"),
          nodeAddress(n, "ExternalIP"),
          info?.osImage || "<unknown>",
          info?.kernelVersion || "<unknown>",
          info?.containerRuntimeVersion || "<unknown>",
        ],
      };
    },
  },
  "/ConfigMap": {
    columns: [NAME, col("Data", "Data contains the configuration data."), AGE],
    row(o, now) {
      const cm = o as ConfigMap;
      return {
        cells: [
          cm.metadata.name,
          Object.keys(cm.data ?? {}).length + Object.keys(cm.binaryData ?? {}).length,
          age(cm, now),
        ],
      };
    },
  },
  "/Secret": {
    columns: [
      NAME,
      col("Type", "Used to facilitate programmatic handling of secret data."),
      col("Data", "Data contains the secret data."),
      AGE,
    ],
    row(o, now) {
      const s = o as Secret;
      return { cells: [s.metadata.name, s.type ?? "", Object.keys(s.data ?? {}).length, age(s, now)] };
    },
  },
  "/ServiceAccount": {
    columns: [
      NAME,
      col(
        "Secrets",
        "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use.",
      ),
      AGE,
    ],
    row: (o, now) => ({
      cells: [o.metadata.name, ((o as ServiceAccount).secrets ?? []).length, age(o, now)],
    }),
  },
  "/Event": {
    columns: [
      col("Last Seen", "The time at which the most recent occurrence of this event was recorded."),
      col("Type", "Type of this event (Normal, Warning), new types could be added in the future"),
      col(
        "Reason",
        "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
      ),
      col("Object", "The object that this event is about."),
      col(
        "Subobject",
        "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2].",
        1,
      ),
      col(
        "Source",
        "The component reporting this event. Should be a short machine understandable string.",
        1,
      ),
      col("Message", "A human-readable description of the status of this operation."),
      col(
        "First Seen",
        "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
        1,
      ),
      col("Count", "The number of times this event has occurred.", 1),
      { ...NAME, priority: 1 },
    ],
    row(o, now) {
      const ev = o as Event;
      const t = eventTime(ev, now);
      const io = ev.involvedObject ?? {};
      const target = io.name ? `${(io.kind ?? "").toLowerCase()}/${io.name}` : (io.kind ?? "").toLowerCase();
      const component = ev.source?.component || ev.reportingComponent || "";
      const instance = ev.source?.host || ev.reportingInstance || "";
      return {
        cells: [
          t.last,
          ev.type ?? "",
          ev.reason ?? "",
          target,
          io.fieldPath ?? "",
          instance ? `${component}, ${instance}` : component,
          (ev.message ?? "").trim(),
          t.first,
          t.count,
          ev.metadata.name,
        ],
      };
    },
  },
  "apps/Deployment": {
    columns: [
      NAME,
      col("Ready", "Number of the pod with ready state"),
      col(
        "Up-to-date",
        "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
      ),
      col(
        "Available",
        "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
      ),
      AGE,
      col("Containers", containersDoc, 1),
      col("Images", imagesDoc, 1),
      col(
        "Selector",
        "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.",
        1,
      ),
    ],
    row(o, now) {
      const d = o as Deployment;
      const [containers, images] = layoutContainers(d.spec?.template?.spec?.containers);
      const sel = labelSelectorToString(d.spec?.selector);
      return {
        cells: [
          d.metadata.name,
          `${d.status?.readyReplicas ?? 0}/${d.spec?.replicas ?? 0}`,
          d.status?.updatedReplicas ?? 0,
          d.status?.availableReplicas ?? 0,
          age(d, now),
          containers,
          images,
          sel === "<none>" ? "" : sel === "<error>" ? "<invalid>" : sel,
        ],
      };
    },
  },
  "apps/ReplicaSet": {
    columns: [
      NAME,
      col("Desired", "Replicas is the number of desired replicas.", 0, "integer"),
      col("Current", "Replicas is the most recently observed number of replicas.", 0, "integer"),
      col("Ready", "The number of ready replicas for this replica set.", 0, "integer"),
      AGE,
      col("Containers", containersDoc, 1),
      col("Images", imagesDoc, 1),
      col("Selector", "Selector is a label query over pods that should match the replica count.", 1),
    ],
    row(o, now) {
      const rs = o as ReplicaSet;
      const [containers, images] = layoutContainers(rs.spec?.template?.spec?.containers);
      return {
        cells: [
          rs.metadata.name,
          rs.spec?.replicas ?? 0,
          rs.status?.replicas ?? 0,
          rs.status?.readyReplicas ?? 0,
          age(rs, now),
          containers,
          images,
          labelSelectorToString(rs.spec?.selector),
        ],
      };
    },
  },
  "apps/DaemonSet": {
    columns: [
      NAME,
      col(
        "Desired",
        "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod).",
        0,
        "integer",
      ),
      col(
        "Current",
        "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod.",
        0,
        "integer",
      ),
      col(
        "Ready",
        "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready.",
        0,
        "integer",
      ),
      col("Up-to-date", "The total number of nodes that are running updated daemon pod", 0, "integer"),
      col(
        "Available",
        "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)",
        0,
        "integer",
      ),
      col(
        "Node Selector",
        "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which must match a node's labels for the pod to be scheduled on that node. More info: https://kubernetes.io/docs/concepts/configuration/assign-pod-node/",
      ),
      AGE,
      col("Containers", containersDoc, 1),
      col("Images", imagesDoc, 1),
      col(
        "Selector",
        "A label query over pods that are managed by the daemon set. Must match in order to be controlled. It must match the pod template's labels. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
        1,
      ),
    ],
    row(o, now) {
      const ds = o as DaemonSet;
      const st = ds.status;
      const [containers, images] = layoutContainers(ds.spec?.template?.spec?.containers);
      return {
        cells: [
          ds.metadata.name,
          st?.desiredNumberScheduled ?? 0,
          st?.currentNumberScheduled ?? 0,
          st?.numberReady ?? 0,
          st?.updatedNumberScheduled ?? 0,
          st?.numberAvailable ?? 0,
          mapSelectorToString(ds.spec?.template?.spec?.nodeSelector),
          age(ds, now),
          containers,
          images,
          labelSelectorToString(ds.spec?.selector),
        ],
      };
    },
  },
  "discovery.k8s.io/EndpointSlice": {
    columns: [
      NAME,
      col(
        "AddressType",
        "addressType specifies the type of address carried by this EndpointSlice. All addresses in this slice must be the same type.",
      ),
      col("Ports", "ports specifies the list of network ports exposed by each endpoint in this slice."),
      col("Endpoints", "endpoints is a list of unique endpoints in this slice."),
      AGE,
    ],
    row(o, now) {
      const es = o as EndpointSlice;
      const [ports, endpoints] = sliceCells(es);
      return { cells: [es.metadata.name, es.addressType ?? "", ports, endpoints, age(es, now)] };
    },
  },
  "networking.k8s.io/Ingress": {
    columns: [
      NAME,
      col("Class", "The name of the IngressClass resource that should be used for additional configuration"),
      col("Hosts", "Hosts that incoming requests are matched against before the ingress rule"),
      col("Address", "Address is a list containing ingress points for the load-balancer"),
      col("Ports", "Ports of TLS configurations that open"),
      AGE,
    ],
    row(o, now, wide) {
      const ing = o as Ingress;
      return {
        cells: [
          ing.metadata.name,
          ing.spec?.ingressClassName ?? "<none>",
          ingressHosts(ing),
          loadBalancerString(ing.status?.loadBalancer?.ingress, wide),
          (ing.spec?.tls ?? []).length ? "80, 443" : "80",
          age(ing, now),
        ],
      };
    },
  },
  "networking.k8s.io/IngressClass": {
    columns: [
      NAME,
      col("Controller", "Controller that is responsible for handling this class"),
      col("Parameters", "A reference to a resource with additional parameters"),
      AGE,
    ],
    row(o, now) {
      const ic = o as IngressClass;
      const p = ic.spec?.parameters;
      const params = p ? `${p.kind}${p.apiGroup ? "." + p.apiGroup : ""}/${p.name}` : "<none>";
      return { cells: [ic.metadata.name, ic.spec?.controller ?? "", params, age(ic, now)] };
    },
  },
  "networking.k8s.io/NetworkPolicy": {
    columns: [
      NAME,
      col(
        "Pod-Selector",
        "Selects the pods to which this NetworkPolicy object applies. The array of ingress rules is applied to any pods selected by this field. Multiple network policies can select the same set of pods. In this case, the ingress rules for each are combined additively. This field is NOT optional and follows standard label selector semantics. An empty podSelector matches all pods in this namespace.",
      ),
      AGE,
    ],
    row: (o, now) => ({
      cells: [
        o.metadata.name,
        labelSelectorToString((o as NetworkPolicy).spec?.podSelector ?? {}),
        age(o, now),
      ],
    }),
  },
  "coordination.k8s.io/Lease": {
    columns: [
      NAME,
      col(
        "Holder",
        "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field.",
      ),
      AGE,
    ],
    row: (o, now) => ({
      cells: [o.metadata.name, (o as Lease).spec?.holderIdentity || "<unknown>", age(o, now)],
    }),
  },
};

/** What kube-apiserver prints for a kind without a printer: name and creation time. */
const defaultPrinter: Printer = {
  columns: [NAME, col("Created At", ageDoc, 0, "date")],
  row: (o) => ({ cells: [o.metadata.name, o.metadata.creationTimestamp ?? null] }),
};

/** Go reads a JSON null as the zero value; a null list element becomes an empty struct. */
function zeroNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.map((x) => (x === null ? {} : zeroNulls(x)));
  if (v && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== null) out[k] = zeroNulls(x);
    return out;
  }
  return v;
}

function printRow(p: Printer, o: KubeObject, now: Date, wide: boolean): PrintedRow {
  try {
    return p.row(o, now, wide);
  } catch {
    try {
      return p.row(zeroNulls(o) as KubeObject, now, wide);
    } catch {
      // a stored object of the wrong shape still gets a row rather than failing the whole list
      return { cells: p.columns.map((c) => (c.format === "name" ? (o?.metadata?.name ?? "") : "<unknown>")) };
    }
  }
}

/** The column definitions for a resource (all of them when wide, else only priority 0). */
export function tableColumns(resource: ResourceType, wide = true): TableColumnDefinition[] {
  const p = printers[`${resource.group}/${resource.kind}`] ?? defaultPrinter;
  return wide ? p.columns : p.columns.filter((c) => c.priority === 0);
}

/**
 * The Table kube-apiserver 1.32 answers for these objects: column definitions and one row per
 * object, cells formatted as `kubectl get` prints them. `object` on each row is the source object
 * (the API server replaces it with the PartialObjectMetadata kubectl asked for).
 */
export function printTable(
  resource: ResourceType,
  objects: KubeObject[],
  opts: PrintOptions = {},
): PrintedTable {
  const p = printers[`${resource.group}/${resource.kind}`] ?? defaultPrinter;
  const wide = opts.wide ?? false;
  const now = opts.now ?? new Date();
  const keep = p.columns.map((c) => wide || c.priority === 0);
  const rows = objects.map((o) => {
    const r = printRow(p, o, now, wide);
    const out: PrintedRow = { cells: r.cells.filter((_, i) => keep[i]), object: o };
    if (r.conditions) out.conditions = r.conditions;
    return out;
  });
  return { columnDefinitions: p.columns.filter((_, i) => keep[i]), rows };
}
