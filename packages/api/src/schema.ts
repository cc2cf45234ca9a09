// The wire schema of every kind, used to decode request bodies as kube-apiserver's JSON decoder
// does: wrong JSON types are refused with Go's encoding/json message, and unknown fields are
// reported for fieldValidation=Strict (an error) or Warn (warnings).

/**
 * A field type: a scalar ("string", "int32", "int64", "float64", "bool", "time", "quantity",
 * "intstr", "any"), a map ("map[string]string", "map[string]quantity", "map[string]any"),
 * a list ("[]<type>") or the name of a struct below.
 */
type FieldType = string;
type Struct = Record<string, FieldType>;

const structs: Record<string, Struct> = {
  ObjectMeta: {
    name: "string",
    generateName: "string",
    namespace: "string",
    selfLink: "string",
    uid: "string",
    resourceVersion: "string",
    generation: "int64",
    creationTimestamp: "time",
    deletionTimestamp: "time",
    deletionGracePeriodSeconds: "int64",
    labels: "map[string]string",
    annotations: "map[string]string",
    ownerReferences: "[]OwnerReference",
    finalizers: "[]string",
    managedFields: "[]any",
  },
  OwnerReference: {
    apiVersion: "string",
    kind: "string",
    name: "string",
    uid: "string",
    controller: "bool",
    blockOwnerDeletion: "bool",
  },
  LabelSelector: { matchLabels: "map[string]string", matchExpressions: "[]LabelSelectorRequirement" },
  LabelSelectorRequirement: { key: "string", operator: "string", values: "[]string" },
  ObjectReference: {
    kind: "string",
    namespace: "string",
    name: "string",
    uid: "string",
    apiVersion: "string",
    resourceVersion: "string",
    fieldPath: "string",
  },
  LocalObjectReference: { name: "string" },
  Condition: {
    type: "string",
    status: "string",
    observedGeneration: "int64",
    lastProbeTime: "time",
    lastHeartbeatTime: "time",
    lastTransitionTime: "time",
    lastUpdateTime: "time",
    reason: "string",
    message: "string",
  },
  // core/v1
  Namespace: {
    apiVersion: "string",
    kind: "string",
    metadata: "ObjectMeta",
    spec: "NamespaceSpec",
    status: "NamespaceStatus",
  },
  NamespaceSpec: { finalizers: "[]string" },
  NamespaceStatus: { phase: "string", conditions: "[]Condition" },
  Pod: { apiVersion: "string", kind: "string", metadata: "ObjectMeta", spec: "PodSpec", status: "PodStatus" },
  PodTemplateSpec: { metadata: "ObjectMeta", spec: "PodSpec" },
  PodSpec: {
    volumes: "[]Volume",
    initContainers: "[]Container",
    containers: "[]Container",
    ephemeralContainers: "[]any",
    restartPolicy: "string",
    terminationGracePeriodSeconds: "int64",
    activeDeadlineSeconds: "int64",
    dnsPolicy: "string",
    nodeSelector: "map[string]string",
    serviceAccountName: "string",
    serviceAccount: "string",
    automountServiceAccountToken: "bool",
    nodeName: "string",
    hostNetwork: "bool",
    hostPID: "bool",
    hostIPC: "bool",
    shareProcessNamespace: "bool",
    securityContext: "any",
    imagePullSecrets: "[]LocalObjectReference",
    hostname: "string",
    subdomain: "string",
    affinity: "any",
    schedulerName: "string",
    tolerations: "[]Toleration",
    hostAliases: "[]HostAlias",
    priorityClassName: "string",
    priority: "int32",
    dnsConfig: "PodDNSConfig",
    readinessGates: "[]PodReadinessGate",
    runtimeClassName: "string",
    enableServiceLinks: "bool",
    preemptionPolicy: "string",
    overhead: "map[string]quantity",
    topologySpreadConstraints: "[]any",
    setHostnameAsFQDN: "bool",
    os: "any",
    hostUsers: "bool",
    schedulingGates: "[]any",
    resourceClaims: "[]any",
    resources: "ResourceRequirements",
  },
  PodReadinessGate: { conditionType: "string" },
  HostAlias: { ip: "string", hostnames: "[]string" },
  PodDNSConfig: { nameservers: "[]string", searches: "[]string", options: "[]PodDNSConfigOption" },
  PodDNSConfigOption: { name: "string", value: "string" },
  Toleration: {
    key: "string",
    operator: "string",
    value: "string",
    effect: "string",
    tolerationSeconds: "int64",
  },
  Volume: {
    name: "string",
    hostPath: "any",
    emptyDir: "any",
    secret: "any",
    configMap: "any",
    projected: "any",
    downwardAPI: "any",
    persistentVolumeClaim: "any",
    nfs: "any",
    csi: "any",
    ephemeral: "any",
    image: "any",
  },
  Container: {
    name: "string",
    image: "string",
    command: "[]string",
    args: "[]string",
    workingDir: "string",
    ports: "[]ContainerPort",
    envFrom: "[]EnvFromSource",
    env: "[]EnvVar",
    resources: "ResourceRequirements",
    resizePolicy: "[]any",
    restartPolicy: "string",
    volumeMounts: "[]VolumeMount",
    volumeDevices: "[]any",
    livenessProbe: "Probe",
    readinessProbe: "Probe",
    startupProbe: "Probe",
    lifecycle: "any",
    terminationMessagePath: "string",
    terminationMessagePolicy: "string",
    imagePullPolicy: "string",
    securityContext: "any",
    stdin: "bool",
    stdinOnce: "bool",
    tty: "bool",
  },
  ContainerPort: {
    name: "string",
    hostPort: "int32",
    containerPort: "int32",
    protocol: "string",
    hostIP: "string",
  },
  EnvFromSource: { prefix: "string", configMapRef: "any", secretRef: "any" },
  EnvVar: { name: "string", value: "string", valueFrom: "EnvVarSource" },
  EnvVarSource: {
    fieldRef: "ObjectFieldSelector",
    resourceFieldRef: "ResourceFieldSelector",
    configMapKeyRef: "KeySelector",
    secretKeyRef: "KeySelector",
  },
  ObjectFieldSelector: { apiVersion: "string", fieldPath: "string" },
  ResourceFieldSelector: { containerName: "string", resource: "string", divisor: "quantity" },
  KeySelector: { name: "string", key: "string", optional: "bool" },
  ResourceRequirements: { limits: "map[string]quantity", requests: "map[string]quantity", claims: "[]any" },
  VolumeMount: {
    name: "string",
    readOnly: "bool",
    recursiveReadOnly: "string",
    mountPath: "string",
    subPath: "string",
    mountPropagation: "string",
    subPathExpr: "string",
  },
  Probe: {
    exec: "ExecAction",
    httpGet: "HTTPGetAction",
    tcpSocket: "TCPSocketAction",
    grpc: "GRPCAction",
    initialDelaySeconds: "int32",
    timeoutSeconds: "int32",
    periodSeconds: "int32",
    successThreshold: "int32",
    failureThreshold: "int32",
    terminationGracePeriodSeconds: "int64",
  },
  ExecAction: { command: "[]string" },
  HTTPGetAction: {
    path: "string",
    port: "intstr",
    host: "string",
    scheme: "string",
    httpHeaders: "[]HTTPHeader",
  },
  HTTPHeader: { name: "string", value: "string" },
  TCPSocketAction: { port: "intstr", host: "string" },
  GRPCAction: { port: "int32", service: "string" },
  PodStatus: {
    phase: "string",
    conditions: "[]Condition",
    message: "string",
    reason: "string",
    nominatedNodeName: "string",
    hostIP: "string",
    hostIPs: "[]PodIP",
    podIP: "string",
    podIPs: "[]PodIP",
    startTime: "time",
    initContainerStatuses: "[]ContainerStatus",
    containerStatuses: "[]ContainerStatus",
    ephemeralContainerStatuses: "[]ContainerStatus",
    qosClass: "string",
    resize: "string",
    resourceClaimStatuses: "[]any",
  },
  PodIP: { ip: "string" },
  ContainerStatus: {
    name: "string",
    state: "ContainerState",
    lastState: "ContainerState",
    ready: "bool",
    restartCount: "int32",
    image: "string",
    imageID: "string",
    containerID: "string",
    started: "bool",
    allocatedResources: "map[string]quantity",
    resources: "ResourceRequirements",
    volumeMounts: "[]any",
    user: "any",
    allocatedResourcesStatus: "[]any",
  },
  ContainerState: {
    waiting: "ContainerStateWaiting",
    running: "ContainerStateRunning",
    terminated: "ContainerStateTerminated",
  },
  ContainerStateWaiting: { reason: "string", message: "string" },
  ContainerStateRunning: { startedAt: "time" },
  ContainerStateTerminated: {
    exitCode: "int32",
    signal: "int32",
    reason: "string",
    message: "string",
    startedAt: "time",
    finishedAt: "time",
    containerID: "string",
  },
  Service: {
    apiVersion: "string",
    kind: "string",
    metadata: "ObjectMeta",
    spec: "ServiceSpec",
    status: "ServiceStatus",
  },
  ServiceSpec: {
    ports: "[]ServicePort",
    selector: "map[string]string",
    clusterIP: "string",
    clusterIPs: "[]string",
    type: "string",
    externalIPs: "[]string",
    sessionAffinity: "string",
    loadBalancerIP: "string",
    loadBalancerSourceRanges: "[]string",
    externalName: "string",
    externalTrafficPolicy: "string",
    healthCheckNodePort: "int32",
    publishNotReadyAddresses: "bool",
    sessionAffinityConfig: "SessionAffinityConfig",
    ipFamilies: "[]string",
    ipFamilyPolicy: "string",
    allocateLoadBalancerNodePorts: "bool",
    loadBalancerClass: "string",
    internalTrafficPolicy: "string",
    trafficDistribution: "string",
  },
  ServicePort: {
    name: "string",
    protocol: "string",
    appProtocol: "string",
    port: "int32",
    targetPort: "intstr",
    nodePort: "int32",
  },
  SessionAffinityConfig: { clientIP: "ClientIPConfig" },
  ClientIPConfig: { timeoutSeconds: "int32" },
  ServiceStatus: { loadBalancer: "LoadBalancerStatus", conditions: "[]Condition" },
  LoadBalancerStatus: { ingress: "[]LoadBalancerIngress" },
  LoadBalancerIngress: { ip: "string", hostname: "string", ipMode: "string", ports: "[]PortStatus" },
  PortStatus: { port: "int32", protocol: "string", error: "string" },
  Endpoints: { apiVersion: "string", kind: "string", metadata: "ObjectMeta", subsets: "[]EndpointSubset" },
  EndpointSubset: {
    addresses: "[]EndpointAddress",
    notReadyAddresses: "[]EndpointAddress",
    ports: "[]EndpointPort",
  },
  EndpointAddress: { ip: "string", hostname: "string", nodeName: "string", targetRef: "ObjectReference" },
  EndpointPort: { name: "string", port: "int32", protocol: "string", appProtocol: "string" },
  Node: {
    apiVersion: "string",
    kind: "string",
    metadata: "ObjectMeta",
    spec: "NodeSpec",
    status: "NodeStatus",
  },
  NodeSpec: {
    podCIDR: "string",
    podCIDRs: "[]string",
    providerID: "string",
    unschedulable: "bool",
    taints: "[]Taint",
    configSource: "any",
    externalID: "string",
  },
  Taint: { key: "string", value: "string", effect: "string", timeAdded: "time" },
  NodeStatus: {
    capacity: "map[string]quantity",
    allocatable: "map[string]quantity",
    phase: "string",
    conditions: "[]Condition",
    addresses: "[]NodeAddress",
    daemonEndpoints: "any",
    nodeInfo: "NodeSystemInfo",
    images: "[]any",
    volumesInUse: "[]string",
    volumesAttached: "[]any",
    config: "any",
    runtimeHandlers: "[]any",
    features: "any",
  },
  NodeAddress: { type: "string", address: "string" },
  NodeSystemInfo: {
    machineID: "string",
    systemUUID: "string",
    bootID: "string",
    kernelVersion: "string",
    osImage: "string",
    containerRuntimeVersion: "string",
    kubeletVersion: "string",
    kubeProxyVersion: "string",
    operatingSystem: "string",
    architecture: "string",
  },
  ConfigMap: {
    apiVersion: "string",
    kind: "string",
    metadata: "ObjectMeta",
    immutable: "bool",
    data: "map[string]string",
    binaryData: "map[string]bytes",
  },
  Secret: {
    apiVersion: "string",
    kind: "string",
    metadata: "ObjectMeta",
    immutable: "bool",
    data: "map[string]bytes",
    stringData: "map[string]string",
    type: "string",
  },
  ServiceAccount: {
    apiVersion: "string",
    kind: "string",
    metadata: "ObjectMeta",
    secrets: "[]ObjectReference",
    imagePullSecrets: "[]LocalObjectReference",
    automountServiceAccountToken: "bool",
  },
  Event: {
    apiVersion: "string",
    kind: "string",
    metadata: "ObjectMeta",
    involvedObject: "ObjectReference",
    reason: "string",
    message: "string",
    source: "EventSource",
    firstTimestamp: "time",
    lastTimestamp: "time",
    count: "int32",
    type: "string",
    eventTime: "time",
    series: "EventSeries",
    action: "string",
    related: "ObjectReference",
    reportingComponent: "string",
    reportingInstance: "string",
  },
  EventSource: { component: "string", host: "string" },
  EventSeries: { count: "int32", lastObservedTime: "time" },
  // apps/v1
  Deployment: {
    apiVersion: "string",
    kind: "string",
    metadata: "ObjectMeta",
    spec: "DeploymentSpec",
    status: "DeploymentStatus",
  },
  DeploymentSpec: {
    replicas: "int32",
    selector: "LabelSelector",
    template: "PodTemplateSpec",
    strategy: "DeploymentStrategy",
    minReadySeconds: "int32",
    revisionHistoryLimit: "int32",
    paused: "bool",
    progressDeadlineSeconds: "int32",
  },
  DeploymentStrategy: { type: "string", rollingUpdate: "RollingUpdate" },
  RollingUpdate: { maxUnavailable: "intstr", maxSurge: "intstr", partition: "int32" },
  DeploymentStatus: {
    observedGeneration: "int64",
    replicas: "int32",
    updatedReplicas: "int32",
    readyReplicas: "int32",
    availableReplicas: "int32",
    unavailableReplicas: "int32",
    terminatingReplicas: "int32",
    conditions: "[]Condition",
    collisionCount: "int32",
  },
  ReplicaSet: {
    apiVersion: "string",
    kind: "string",
    metadata: "ObjectMeta",
    spec: "ReplicaSetSpec",
    status: "ReplicaSetStatus",
  },
  ReplicaSetSpec: {
    replicas: "int32",
    minReadySeconds: "int32",
    selector: "LabelSelector",
    template: "PodTemplateSpec",
  },
  ReplicaSetStatus: {
    replicas: "int32",
    fullyLabeledReplicas: "int32",
    readyReplicas: "int32",
    availableReplicas: "int32",
    terminatingReplicas: "int32",
    observedGeneration: "int64",
    conditions: "[]Condition",
  },
  DaemonSet: {
    apiVersion: "string",
    kind: "string",
    metadata: "ObjectMeta",
    spec: "DaemonSetSpec",
    status: "DaemonSetStatus",
  },
  DaemonSetSpec: {
    selector: "LabelSelector",
    template: "PodTemplateSpec",
    updateStrategy: "DaemonSetUpdateStrategy",
    minReadySeconds: "int32",
    revisionHistoryLimit: "int32",
  },
  DaemonSetUpdateStrategy: { type: "string", rollingUpdate: "RollingUpdate" },
  DaemonSetStatus: {
    currentNumberScheduled: "int32",
    numberMisscheduled: "int32",
    desiredNumberScheduled: "int32",
    numberReady: "int32",
    observedGeneration: "int64",
    updatedNumberScheduled: "int32",
    numberAvailable: "int32",
    numberUnavailable: "int32",
    collisionCount: "int32",
    conditions: "[]Condition",
  },
  // discovery.k8s.io/v1
  EndpointSlice: {
    apiVersion: "string",
    kind: "string",
    metadata: "ObjectMeta",
    addressType: "string",
    endpoints: "[]Endpoint",
    ports: "[]EndpointSlicePort",
  },
  Endpoint: {
    addresses: "[]string",
    conditions: "EndpointConditions",
    hostname: "string",
    targetRef: "ObjectReference",
    deprecatedTopology: "map[string]string",
    nodeName: "string",
    zone: "string",
    hints: "any",
  },
  EndpointConditions: { ready: "bool", serving: "bool", terminating: "bool" },
  EndpointSlicePort: { name: "string", protocol: "string", port: "int32", appProtocol: "string" },
  // networking.k8s.io/v1
  Ingress: {
    apiVersion: "string",
    kind: "string",
    metadata: "ObjectMeta",
    spec: "IngressSpec",
    status: "IngressStatus",
  },
  IngressSpec: {
    ingressClassName: "string",
    defaultBackend: "IngressBackend",
    tls: "[]IngressTLS",
    rules: "[]IngressRule",
  },
  IngressBackend: { service: "IngressServiceBackend", resource: "TypedLocalObjectReference" },
  IngressServiceBackend: { name: "string", port: "ServiceBackendPort" },
  ServiceBackendPort: { name: "string", number: "int32" },
  TypedLocalObjectReference: { apiGroup: "string", kind: "string", name: "string" },
  IngressTLS: { hosts: "[]string", secretName: "string" },
  IngressRule: { host: "string", http: "HTTPIngressRuleValue" },
  HTTPIngressRuleValue: { paths: "[]HTTPIngressPath" },
  HTTPIngressPath: { path: "string", pathType: "string", backend: "IngressBackend" },
  IngressStatus: { loadBalancer: "IngressLoadBalancerStatus" },
  IngressLoadBalancerStatus: { ingress: "[]IngressLoadBalancerIngress" },
  IngressLoadBalancerIngress: { ip: "string", hostname: "string", ports: "[]PortStatus" },
  IngressClass: { apiVersion: "string", kind: "string", metadata: "ObjectMeta", spec: "IngressClassSpec" },
  IngressClassSpec: { controller: "string", parameters: "IngressClassParametersReference" },
  IngressClassParametersReference: {
    apiGroup: "string",
    kind: "string",
    name: "string",
    scope: "string",
    namespace: "string",
  },
  NetworkPolicy: { apiVersion: "string", kind: "string", metadata: "ObjectMeta", spec: "NetworkPolicySpec" },
  NetworkPolicySpec: {
    podSelector: "LabelSelector",
    ingress: "[]NetworkPolicyIngressRule",
    egress: "[]NetworkPolicyEgressRule",
    policyTypes: "[]string",
  },
  NetworkPolicyIngressRule: { ports: "[]NetworkPolicyPort", from: "[]NetworkPolicyPeer" },
  NetworkPolicyEgressRule: { ports: "[]NetworkPolicyPort", to: "[]NetworkPolicyPeer" },
  NetworkPolicyPort: { protocol: "string", port: "intstr", endPort: "int32" },
  NetworkPolicyPeer: { podSelector: "LabelSelector", namespaceSelector: "LabelSelector", ipBlock: "IPBlock" },
  IPBlock: { cidr: "string", except: "[]string" },
  // coordination.k8s.io/v1
  Lease: { apiVersion: "string", kind: "string", metadata: "ObjectMeta", spec: "LeaseSpec" },
  LeaseSpec: {
    holderIdentity: "string",
    leaseDurationSeconds: "int32",
    acquireTime: "time",
    renewTime: "time",
    leaseTransitions: "int32",
    strategy: "string",
    preferredHolder: "string",
  },
};

/** Go's name for a field type, as encoding/json prints it. */
function goTypeName(t: FieldType): string {
  if (t.startsWith("[]")) return "[]" + goTypeName(t.slice(2));
  switch (t) {
    case "string":
    case "int32":
    case "int64":
    case "float64":
    case "bool":
      return t;
    case "time":
      return "v1.Time";
    case "quantity":
      return "resource.Quantity";
    case "intstr":
      return "intstr.IntOrString";
    case "any":
      return "interface {}";
    case "map[string]string":
      return t;
    case "map[string]quantity":
      return "v1.ResourceList";
    case "map[string]bytes":
      return "map[string][]uint8";
    case "map[string]any":
      return "map[string]interface {}";
  }
  return `v1.${t}`;
}

function jsonKind(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "boolean") return "bool";
  if (typeof v === "number") return "number";
  if (typeof v === "string") return "string";
  return "object";
}

const quantityRe = /^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$/;

class DecodeError extends Error {}

/** Where Go's base64.StdEncoding stops on this input, or undefined if it decodes (CR/LF are skipped). */
function base64Error(s: string): number | undefined {
  const alphabet = /[A-Za-z0-9+/]/;
  let quantum = 0;
  let quantumStart = 0;
  let padding = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "\r" || c === "\n") continue;
    if (padding > 0) {
      if (c === "=" && quantum + padding < 4) {
        padding++;
        continue;
      }
      return i;
    }
    if (c === "=") {
      if (quantum < 2) return i;
      padding = 1;
      continue;
    }
    if (!alphabet.test(c)) return i;
    if (quantum === 0) quantumStart = i;
    quantum++;
    if (quantum === 4) quantum = 0;
  }
  if (padding > 0 && quantum + padding !== 4) return s.length;
  if (padding === 0 && quantum !== 0) return quantumStart;
  return undefined;
}

interface Walk {
  unknown: string[];
}

/** Checks one value against its type; `struct` and `dotted` name the enclosing Go struct and JSON path. */
function check(v: unknown, t: FieldType, struct: string, dotted: string, indexed: string, w: Walk): void {
  if (v === null || v === undefined) return;
  const fail = (what = jsonKind(v)) => {
    throw new DecodeError(
      `json: cannot unmarshal ${what} into Go struct field ${struct}.${dotted} of type ${goTypeName(t)}`,
    );
  };
  if (t.startsWith("[]")) {
    if (!Array.isArray(v)) fail();
    (v as unknown[]).forEach((x, i) => check(x, t.slice(2), struct, dotted, `${indexed}[${i}]`, w));
    return;
  }
  switch (t) {
    case "any":
      return;
    case "string":
    case "time":
      if (typeof v !== "string") fail();
      return;
    case "bool":
      if (typeof v !== "boolean") fail();
      return;
    case "int32":
    case "int64":
    case "float64": {
      if (typeof v !== "number") fail();
      const n = v as number;
      if (t === "float64") return;
      const lim = t === "int32" ? 2 ** 31 : 2 ** 63;
      if (!Number.isInteger(n) || n < -lim || n >= lim) fail(`number ${n}`);
      return;
    }
    case "intstr":
      if (typeof v === "string") return;
      if (typeof v !== "number" || !Number.isInteger(v)) fail();
      return;
    case "quantity":
      if (typeof v === "number") return;
      if (typeof v !== "string") fail();
      if (!quantityRe.test((v as string).trim()))
        throw new DecodeError(
          "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
        );
      return;
    case "map[string]string":
    case "map[string]quantity":
    case "map[string]bytes":
    case "map[string]any": {
      if (jsonKind(v) !== "object") fail();
      const elem = t.slice("map[string]".length);
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
        if (elem === "string" && x !== null && typeof x !== "string")
          throw new DecodeError(
            `json: cannot unmarshal ${jsonKind(x)} into Go struct field ${struct}.${dotted} of type string`,
          );
        if (elem === "quantity") check(x, "quantity", struct, dotted, `${indexed}[${k}]`, w);
        if (elem === "bytes" && x !== null) {
          if (typeof x !== "string")
            throw new DecodeError(
              `json: cannot unmarshal ${jsonKind(x)} into Go struct field ${struct}.${dotted} of type []uint8`,
            );
          const bad = base64Error(x);
          if (bad !== undefined) throw new DecodeError(`illegal base64 data at input byte ${bad}`);
        }
      }
      return;
    }
  }
  const def = structs[t];
  if (!def) return;
  if (jsonKind(v) !== "object") fail();
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    const ft = def[k];
    const childDotted = dotted ? `${dotted}.${k}` : k;
    const childIndexed = indexed ? `${indexed}.${k}` : k;
    if (ft === undefined) {
      w.unknown.push(childIndexed);
      continue;
    }
    check(x, ft, t, childDotted, childIndexed, w);
  }
}

export interface DecodeResult {
  /** Set when kube-apiserver would answer 400 BadRequest; the full message it gives. */
  error?: string;
  /** Unknown fields, as `unknown field "spec.foo"`, for fieldValidation=Warn (Warning headers). */
  warnings: string[];
}

/**
 * Checks a request body of the given kind the way kube-apiserver decodes it. `fieldValidation`
 * is the request's query parameter: Strict turns unknown fields into an error, Warn into warnings,
 * Ignore drops them silently. Kinds without a schema pass unchecked.
 */
export function decodeObject(
  body: unknown,
  kind: string,
  version: string,
  fieldValidation: "Strict" | "Warn" | "Ignore" = "Strict",
): DecodeResult {
  const prefix = `${kind} in version "${version}" cannot be handled as a ${kind}: `;
  if (!structs[kind]) return { warnings: [] };
  if (jsonKind(body) !== "object")
    return {
      error: `${prefix}json: cannot unmarshal ${jsonKind(body)} into Go value of type v1.${kind}`,
      warnings: [],
    };
  const w: Walk = { unknown: [] };
  try {
    check(body, kind, kind, "", "", w);
  } catch (e) {
    if (e instanceof DecodeError) return { error: prefix + e.message, warnings: [] };
    throw e;
  }
  const msgs = w.unknown.map((f) => `unknown field ${JSON.stringify(f)}`);
  if (fieldValidation === "Strict" && msgs.length)
    return { error: `${prefix}strict decoding error: ${msgs.join(", ")}`, warnings: [] };
  return { warnings: fieldValidation === "Warn" ? msgs : [] };
}

/** Removes fields the schema does not know, as decoding into Go structs does (fieldValidation=Ignore/Warn). */
export function pruneUnknownFields<T>(body: T, kind: string): T {
  const prune = (v: unknown, t: FieldType): void => {
    if (v === null || typeof v !== "object") return;
    if (t.startsWith("[]")) {
      if (Array.isArray(v)) v.forEach((x) => prune(x, t.slice(2)));
      return;
    }
    const def = structs[t];
    if (!def || Array.isArray(v)) return;
    for (const k of Object.keys(v as Record<string, unknown>)) {
      if (def[k] === undefined) delete (v as Record<string, unknown>)[k];
      else prune((v as Record<string, unknown>)[k], def[k]);
    }
  };
  prune(body, kind);
  return body;
}
