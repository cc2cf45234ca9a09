// core/v1 validation with kube-apiserver's field paths and messages (pkg/apis/core/validation).
import {
  duplicate,
  forbidden,
  GoLiteral,
  goQuote,
  invalid,
  notFound,
  notSupported,
  required,
  tooLong,
  type FieldError,
} from "../field.ts";
import type {
  ConfigMap,
  Container,
  ContainerPort,
  EnvVar,
  Event,
  HTTPGetAction,
  IntOrString,
  Node,
  Pod,
  PodSpec,
  Probe,
  ProbeHandler,
  Secret,
  Service,
  ServicePort,
  Toleration,
  Endpoints,
  Volume,
} from "../types.ts";
import { parseQuantity } from "../quantity.ts";
import { fieldImmutable, jsonEqual, validateEnum, validateLabels, validateNonnegative } from "./meta.ts";
import {
  isDNS1123Label,
  isDNS1123Subdomain,
  isQualifiedName,
  isValidLabelValue,
  isValidCIDR,
  isValidIP,
  isValidPortName,
  isValidPortNum,
  maxLenError,
  parseIPv4,
  parseIPv6,
  regexError,
} from "./strings.ts";

export const supportedProtocols = ["SCTP", "TCP", "UDP"];

export function dns1123Label(value: string, path: string): FieldError[] {
  return isDNS1123Label(value).map((m) => invalid(path, value, m));
}

export function dns1123Subdomain(value: string, path: string): FieldError[] {
  return isDNS1123Subdomain(value).map((m) => invalid(path, value, m));
}

export function qualifiedName(value: string, path: string): FieldError[] {
  return isQualifiedName(value).map((m) => invalid(path, value, m));
}

export function portNumOrName(port: IntOrString | undefined, path: string): FieldError[] {
  if (typeof port === "number") return isValidPortNum(port).map((m) => invalid(path, port, m));
  if (typeof port === "string") return isValidPortName(port).map((m) => invalid(path, port, m));
  return [invalid(path, port ?? null, "must be an integer or a string")];
}

// ------------------------------------------------------------------ Pod

const envFieldPaths = [
  "metadata.name",
  "metadata.namespace",
  "metadata.uid",
  "spec.nodeName",
  "spec.serviceAccountName",
  "status.hostIP",
  "status.hostIPs",
  "status.podIP",
  "status.podIPs",
];
const resourceFieldRefs = [
  "limits.cpu",
  "limits.ephemeral-storage",
  "limits.memory",
  "requests.cpu",
  "requests.ephemeral-storage",
  "requests.memory",
];

const configMapKeyFmt = "[-._a-zA-Z0-9]+";
const configMapKeyRe = /^[-._a-zA-Z0-9]+$/;

/** IsConfigMapKey: ConfigMap and Secret data keys. */
export function isConfigMapKey(value: string): string[] {
  const errs: string[] = [];
  if (value.length > 253) errs.push(maxLenError(253));
  if (!configMapKeyRe.test(value))
    errs.push(
      regexError(
        "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
        configMapKeyFmt,
        "key.name",
        "KEY_NAME",
        "key-name",
      ),
    );
  if (value === ".") errs.push("must not be '.'");
  else if (value === "..") errs.push("must not be '..'");
  else if (value.startsWith("..")) errs.push("must not start with '..'");
  return errs;
}

function validateEnv(env: EnvVar[] | undefined, path: string): FieldError[] {
  const errs: FieldError[] = [];
  (env ?? []).forEach((ev, i) => {
    const p = `${path}[${i}]`;
    if (!ev.name) errs.push(required(`${p}.name`, ""));
    else if (!/^[\x20-\x3c\x3e-\x7e]+$/.test(ev.name))
      errs.push(
        invalid(
          `${p}.name`,
          ev.name,
          "a valid environment variable name must consist only of printable ASCII characters other than '='",
        ),
      );
    const from = ev.valueFrom;
    if (!from) return;
    const fp = `${p}.valueFrom`;
    const sources = (["fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef"] as const).filter(
      (k) => from[k] !== undefined,
    );
    if (sources.length === 0)
      errs.push(
        invalid(
          fp,
          "",
          "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
        ),
      );
    else if (sources.length > 1)
      errs.push(invalid(fp, "", "may not have more than one field specified at a time"));
    if (ev.value && sources.length)
      errs.push(invalid(fp, "", "may not be specified when `value` is not empty"));
    if (from.fieldRef) {
      const f = from.fieldRef;
      if (!f.apiVersion) errs.push(required(`${fp}.fieldRef.apiVersion`, ""));
      if (!f.fieldPath) errs.push(required(`${fp}.fieldRef.fieldPath`, ""));
      else if (!envFieldPaths.includes(f.fieldPath)) {
        const m = /^metadata\.(labels|annotations)\['(.*)'\]$/.exec(f.fieldPath);
        if (m) {
          const key = m[1] === "labels" ? m[2] : m[2].toLowerCase();
          for (const msg of isQualifiedName(key)) errs.push(invalid(`${fp}.fieldRef.fieldPath`, m[2], msg));
        } else {
          errs.push(
            notSupported(
              `${fp}.fieldRef.fieldPath`,
              f.fieldPath,
              ["metadata.annotations", "metadata.labels", ...envFieldPaths].sort(),
            ),
          );
        }
      }
    }
    if (from.resourceFieldRef) {
      const r = from.resourceFieldRef;
      if (!r.resource) errs.push(required(`${fp}.resourceFieldRef.resource`, ""));
      else if (!resourceFieldRefs.includes(r.resource))
        errs.push(notSupported(`${fp}.resourceFieldRef.resource`, r.resource, resourceFieldRefs));
    }
    for (const k of ["configMapKeyRef", "secretKeyRef"] as const) {
      const ref = from[k];
      if (!ref) continue;
      if (!ref.name) errs.push(required(`${fp}.${k}.name`, ""));
      if (!ref.key) errs.push(required(`${fp}.${k}.key`, ""));
      else for (const msg of isConfigMapKey(ref.key)) errs.push(invalid(`${fp}.${k}.key`, ref.key, msg));
    }
  });
  return errs;
}

function validateContainerPorts(ports: ContainerPort[] | undefined, path: string): FieldError[] {
  const errs: FieldError[] = [];
  const names = new Set<string>();
  (ports ?? []).forEach((p, i) => {
    const ip = `${path}[${i}]`;
    if (p.name) {
      for (const m of isValidPortName(p.name)) errs.push(invalid(`${ip}.name`, p.name, m));
      if (names.has(p.name)) errs.push(duplicate(`${ip}.name`, p.name));
      else names.add(p.name);
    }
    if (!p.containerPort) errs.push(required(`${ip}.containerPort`, ""));
    else
      for (const m of isValidPortNum(p.containerPort))
        errs.push(invalid(`${ip}.containerPort`, p.containerPort, m));
    if (p.hostPort)
      for (const m of isValidPortNum(p.hostPort)) errs.push(invalid(`${ip}.hostPort`, p.hostPort, m));
    errs.push(...validateEnum(p.protocol, `${ip}.protocol`, supportedProtocols));
  });
  return errs;
}

function validateHTTPGet(h: HTTPGetAction, path: string): FieldError[] {
  const errs: FieldError[] = [];
  if (!h.path) errs.push(required(`${path}.path`, ""));
  errs.push(...portNumOrName(h.port, `${path}.port`));
  if (h.scheme !== undefined && !["HTTP", "HTTPS"].includes(h.scheme))
    errs.push(notSupported(`${path}.scheme`, h.scheme, ["HTTP", "HTTPS"]));
  return errs;
}

function validateHandler(h: ProbeHandler, path: string): FieldError[] {
  const errs: FieldError[] = [];
  const kinds = (["exec", "httpGet", "tcpSocket", "grpc"] as const).filter((k) => h[k] !== undefined);
  if (kinds.length === 0) return [required(path, "must specify a handler type")];
  for (const k of kinds.slice(1))
    errs.push(forbidden(`${path}.${k}`, "may not specify more than 1 handler type"));
  const k = kinds[0];
  if (k === "exec" && !h.exec?.command?.length) errs.push(required(`${path}.exec.command`, ""));
  if (k === "httpGet") errs.push(...validateHTTPGet(h.httpGet!, `${path}.httpGet`));
  if (k === "tcpSocket") errs.push(...portNumOrName(h.tcpSocket!.port, `${path}.tcpSocket.port`));
  if (k === "grpc")
    for (const m of isValidPortNum(h.grpc!.port)) errs.push(invalid(`${path}.grpc.port`, h.grpc!.port, m));
  return errs;
}

function validateProbe(p: Probe | undefined, path: string): FieldError[] {
  if (!p) return [];
  return [
    ...validateHandler(p, path),
    ...validateNonnegative(p.initialDelaySeconds, `${path}.initialDelaySeconds`),
    ...validateNonnegative(p.timeoutSeconds, `${path}.timeoutSeconds`),
    ...validateNonnegative(p.periodSeconds, `${path}.periodSeconds`),
    ...validateNonnegative(p.successThreshold, `${path}.successThreshold`),
    ...validateNonnegative(p.failureThreshold, `${path}.failureThreshold`),
  ];
}

const standardResources = ["cpu", "memory", "ephemeral-storage"];

/** Requests and limits: known names, non-negative, requests no larger than limits. */
function validateResources(c: Container, path: string): FieldError[] {
  const errs: FieldError[] = [];
  const req = c.resources?.requests ?? {};
  const lim = c.resources?.limits ?? {};
  for (const [kind, list] of [
    ["limits", lim],
    ["requests", req],
  ] as const) {
    for (const [name, q] of Object.entries(list)) {
      const p = `${path}.${kind}[${name}]`;
      if (!standardResources.includes(name) && !name.startsWith("hugepages-") && !name.includes("/"))
        errs.push(invalid(p, name, "must be a standard resource type or fully qualified"));
      const v = parseQuantity(q);
      if (v === undefined) errs.push(invalid(p, String(q), "must be a valid quantity"));
      else if (v < 0) errs.push(invalid(p, String(q), "must be greater than or equal to 0"));
    }
  }
  for (const [name, q] of Object.entries(req)) {
    const r = parseQuantity(q);
    const l = parseQuantity(lim[name]);
    if (r !== undefined && l !== undefined && lim[name] !== undefined && r > l)
      errs.push(
        invalid(
          `${path}.requests[${name}]`,
          String(q),
          `must be less than or equal to ${name} limit of ${String(lim[name])}`,
        ),
      );
  }
  return errs;
}

function validateContainers(
  containers: Container[] | undefined,
  path: string,
  volumes: Set<string>,
  allNames: Set<string>,
  hostNetwork: boolean,
  requireOne: boolean,
): FieldError[] {
  const errs: FieldError[] = [];
  if (requireOne && (!containers || containers.length === 0)) return [required(path, "")];
  (containers ?? []).forEach((c, i) => {
    const p = `${path}[${i}]`;
    if (!c.name) errs.push(required(`${p}.name`, ""));
    else {
      errs.push(...dns1123Label(c.name, `${p}.name`));
      if (allNames.has(c.name)) errs.push(duplicate(`${p}.name`, c.name));
      else allNames.add(c.name);
    }
    if (!c.image) errs.push(required(`${p}.image`, ""));
    else if (c.image.trim() !== c.image)
      errs.push(invalid(`${p}.image`, c.image, "must not have leading or trailing whitespace"));
    errs.push(...validateContainerPorts(c.ports, `${p}.ports`));
    if (hostNetwork)
      (c.ports ?? []).forEach((port, j) => {
        if (port.hostPort !== port.containerPort)
          errs.push(
            invalid(
              `${p}.ports[${j}].containerPort`,
              port.containerPort,
              "must match `hostPort` when `hostNetwork` is true",
            ),
          );
      });
    errs.push(...validateEnv(c.env, `${p}.env`));
    errs.push(...validateProbe(c.livenessProbe, `${p}.livenessProbe`));
    errs.push(...validateProbe(c.readinessProbe, `${p}.readinessProbe`));
    errs.push(...validateProbe(c.startupProbe, `${p}.startupProbe`));
    if (
      c.livenessProbe &&
      c.livenessProbe.successThreshold !== undefined &&
      c.livenessProbe.successThreshold !== 1
    )
      errs.push(
        invalid(`${p}.livenessProbe.successThreshold`, c.livenessProbe.successThreshold, "must be 1"),
      );
    if (
      c.startupProbe &&
      c.startupProbe.successThreshold !== undefined &&
      c.startupProbe.successThreshold !== 1
    )
      errs.push(invalid(`${p}.startupProbe.successThreshold`, c.startupProbe.successThreshold, "must be 1"));
    (c.volumeMounts ?? []).forEach((m, j) => {
      const mp = `${p}.volumeMounts[${j}]`;
      if (!m.name) errs.push(required(`${mp}.name`, ""));
      else if (!volumes.has(m.name)) errs.push(notFound(`${mp}.name`, m.name));
      if (!m.mountPath) errs.push(required(`${mp}.mountPath`, ""));
    });
    errs.push(...validateResources(c, `${p}.resources`));
    if (c.imagePullPolicy !== undefined && !["Always", "IfNotPresent", "Never"].includes(c.imagePullPolicy))
      errs.push(notSupported(`${p}.imagePullPolicy`, c.imagePullPolicy, ["Always", "IfNotPresent", "Never"]));
    if (
      c.terminationMessagePolicy !== undefined &&
      !["File", "FallbackToLogsOnError"].includes(c.terminationMessagePolicy)
    )
      errs.push(
        notSupported(`${p}.terminationMessagePolicy`, c.terminationMessagePolicy, [
          "File",
          "FallbackToLogsOnError",
        ]),
      );
  });
  return errs;
}

function validateVolumes(
  volumes: Volume[] | undefined,
  path: string,
): { errs: FieldError[]; names: Set<string> } {
  const errs: FieldError[] = [];
  const names = new Set<string>();
  (volumes ?? []).forEach((v, i) => {
    const p = `${path}[${i}]`;
    if (!v.name) errs.push(required(`${p}.name`, ""));
    else {
      errs.push(...dns1123Label(v.name, `${p}.name`));
      if (names.has(v.name)) errs.push(duplicate(`${p}.name`, v.name));
      else names.add(v.name);
    }
    const sources = Object.keys(v).filter(
      (k) => k !== "name" && (v as unknown as Record<string, unknown>)[k] !== undefined,
    );
    if (sources.length === 0) errs.push(required(p, "must specify a volume type"));
    for (const s of sources.slice(1))
      errs.push(forbidden(`${p}.${s}`, "may not specify more than 1 volume type"));
  });
  return { errs, names };
}

function validateTolerations(tols: Toleration[] | undefined, path: string): FieldError[] {
  const errs: FieldError[] = [];
  (tols ?? []).forEach((t, i) => {
    const p = `${path}[${i}]`;
    if (t.key) errs.push(...qualifiedName(t.key, `${p}.key`));
    if (!t.key && t.operator !== "Exists")
      errs.push(
        invalid(
          `${p}.operator`,
          t.operator ?? "",
          'operator must be Exists when `key` is empty, which means "match all values and all keys"',
        ),
      );
    if (t.tolerationSeconds !== undefined && t.effect !== "NoExecute")
      errs.push(
        invalid(`${p}.effect`, t.effect ?? "", "effect must be 'NoExecute' when `tolerationSeconds` is set"),
      );
    switch (t.operator ?? "Equal") {
      case "Equal":
        for (const m of isValidLabelValue(t.value ?? ""))
          errs.push(invalid(`${p}.operator`, t.value ?? "", m));
        break;
      case "Exists":
        if (t.value)
          errs.push(invalid(`${p}.operator`, t.value, "value must be empty when `operator` is 'Exists'"));
        break;
      default:
        errs.push(notSupported(`${p}.operator`, t.operator, ["Equal", "Exists"]));
    }
    if (t.effect && !["NoExecute", "NoSchedule", "PreferNoSchedule"].includes(t.effect))
      errs.push(notSupported(`${p}.effect`, t.effect, ["NoExecute", "NoSchedule", "PreferNoSchedule"]));
  });
  return errs;
}

/** ValidatePodSpec. */
export function validatePodSpec(spec: PodSpec | undefined, path: string): FieldError[] {
  if (!spec) return [required(path, "")];
  const errs: FieldError[] = [];
  const vol = validateVolumes(spec.volumes, `${path}.volumes`);
  errs.push(...vol.errs);
  const names = new Set<string>();
  const hostNetwork = spec.hostNetwork === true;
  errs.push(
    ...validateContainers(spec.containers, `${path}.containers`, vol.names, names, hostNetwork, true),
  );
  errs.push(
    ...validateContainers(
      spec.initContainers,
      `${path}.initContainers`,
      vol.names,
      names,
      hostNetwork,
      false,
    ),
  );
  switch (spec.restartPolicy ?? "") {
    case "Always":
    case "OnFailure":
    case "Never":
      break;
    case "":
      errs.push(required(`${path}.restartPolicy`, ""));
      break;
    default:
      errs.push(notSupported(`${path}.restartPolicy`, spec.restartPolicy, ["Always", "OnFailure", "Never"]));
  }
  const dnsPolicies = ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
  if (!spec.dnsPolicy) errs.push(required(`${path}.dnsPolicy`, ""));
  else if (!dnsPolicies.includes(spec.dnsPolicy))
    errs.push(notSupported(`${path}.dnsPolicy`, spec.dnsPolicy, dnsPolicies));
  if (spec.dnsPolicy === "None" && !spec.dnsConfig)
    errs.push(required(`${path}.dnsConfig`, "must provide `dnsConfig` when `dnsPolicy` is None"));
  if (spec.dnsConfig) {
    const dc = spec.dnsConfig;
    const ns = dc.nameservers ?? [];
    if (ns.length > 3)
      errs.push(invalid(`${path}.dnsConfig.nameservers`, ns, "must not have more than 3 nameservers"));
    ns.forEach((n, i) => {
      for (const m of isValidIP(n)) errs.push(invalid(`${path}.dnsConfig.nameservers[${i}]`, n, m));
    });
    if (spec.dnsPolicy === "None" && ns.length === 0)
      errs.push(
        required(
          `${path}.dnsConfig.nameservers`,
          "must provide at least one DNS nameserver when `dnsPolicy` is None",
        ),
      );
    const searches = dc.searches ?? [];
    if (searches.length > 32)
      errs.push(invalid(`${path}.dnsConfig.searches`, searches, "must not have more than 32 search paths"));
    searches.forEach((s, i) => {
      const d = s === "." ? "" : s.replace(/\.$/, "");
      if (d)
        errs.push(
          ...dns1123Subdomain(d, `${path}.dnsConfig.searches[${i}]`).map((e) => ({ ...e, badValue: d })),
        );
    });
    (dc.options ?? []).forEach((o, i) => {
      if (!o.name) errs.push(required(`${path}.dnsConfig.options[${i}]`, "Option.Name must not be empty"));
    });
  }
  if (spec.hostname) errs.push(...dns1123Label(spec.hostname, `${path}.hostname`));
  if (spec.subdomain) errs.push(...dns1123Label(spec.subdomain, `${path}.subdomain`));
  if (spec.nodeName) errs.push(...dns1123Subdomain(spec.nodeName, `${path}.nodeName`));
  if (spec.serviceAccountName)
    errs.push(...dns1123Subdomain(spec.serviceAccountName, `${path}.serviceAccountName`));
  errs.push(...validateLabels(spec.nodeSelector, `${path}.nodeSelector`));
  errs.push(...validateTolerations(spec.tolerations, `${path}.tolerations`));
  if (
    spec.activeDeadlineSeconds !== undefined &&
    (spec.activeDeadlineSeconds < 1 || spec.activeDeadlineSeconds > 2147483647)
  )
    errs.push(
      invalid(
        `${path}.activeDeadlineSeconds`,
        spec.activeDeadlineSeconds,
        "must be between 1 and 2147483647, inclusive",
      ),
    );
  (spec.readinessGates ?? []).forEach((g, i) =>
    errs.push(...qualifiedName(g.conditionType ?? "", `${path}.readinessGates[${i}].conditionType`)),
  );
  return errs;
}

const podUpdateForbidden =
  "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/** ValidatePodUpdate: only images, activeDeadlineSeconds, added tolerations and the binding may change. */
export function validatePodSpecUpdate(pod: Pod, old: Pod): FieldError[] {
  const spec = pod.spec;
  const oldSpec = old.spec;
  if (!spec || !oldSpec) return [];
  const munged = JSON.parse(JSON.stringify(oldSpec)) as PodSpec;
  for (const k of ["containers", "initContainers"] as const) {
    const now = spec[k] ?? [];
    const was = munged[k] ?? [];
    if (now.length === was.length) was.forEach((c, i) => (c.image = now[i].image));
  }
  munged.activeDeadlineSeconds = spec.activeDeadlineSeconds;
  const oldTols = oldSpec.tolerations ?? [];
  const newTols = spec.tolerations ?? [];
  if (oldTols.every((t) => newTols.some((n) => jsonEqual(n, t)))) munged.tolerations = spec.tolerations;
  if ((oldSpec.terminationGracePeriodSeconds ?? 0) < 0 && spec.terminationGracePeriodSeconds === 1)
    munged.terminationGracePeriodSeconds = 1;
  // binding a pending pod to a node is the scheduler's one spec change (pods/binding)
  if (!oldSpec.nodeName && spec.nodeName) munged.nodeName = spec.nodeName;
  const errs: FieldError[] = [];
  if (!jsonEqual(spec, munged)) errs.push(forbidden("spec", podUpdateForbidden));
  return errs;
}

export function validatePod(pod: Pod, old?: Pod): FieldError[] {
  const errs = validatePodSpec(pod.spec, "spec");
  if (old) errs.push(...validatePodSpecUpdate(pod, old));
  return errs;
}

// ------------------------------------------------------------------ Service

function isHeadless(svc: Service): boolean {
  return svc.spec?.clusterIP === "None";
}

function goServicePort(p: ServicePort): GoLiteral {
  return new GoLiteral(
    `core.ServicePort{Name:"", Protocol:${goQuote(p.protocol ?? "")}, AppProtocol:(*string)(nil), Port:${p.port}, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}`,
    { protocol: p.protocol, port: p.port },
  );
}

function validateServicePort(
  sp: ServicePort,
  requireName: boolean,
  names: Set<string>,
  path: string,
): FieldError[] {
  const errs: FieldError[] = [];
  if (requireName && !sp.name) errs.push(required(`${path}.name`, ""));
  else if (sp.name) {
    errs.push(...dns1123Label(sp.name, `${path}.name`));
    if (names.has(sp.name)) errs.push(duplicate(`${path}.name`, sp.name));
    else names.add(sp.name);
  }
  for (const m of isValidPortNum(sp.port)) errs.push(invalid(`${path}.port`, sp.port ?? 0, m));
  errs.push(...validateEnum(sp.protocol, `${path}.protocol`, supportedProtocols));
  errs.push(...portNumOrName(sp.targetPort, `${path}.targetPort`));
  if (sp.appProtocol !== undefined) errs.push(...qualifiedName(sp.appProtocol, `${path}.appProtocol`));
  if (sp.nodePort !== undefined && sp.nodePort !== 0)
    for (const m of isValidPortNum(sp.nodePort)) errs.push(invalid(`${path}.nodePort`, sp.nodePort, m));
  return errs;
}

function validateClusterIPs(svc: Service): FieldError[] {
  const s = svc.spec ?? {};
  if (s.type === "ExternalName") return [];
  const errs: FieldError[] = [];
  const ips = s.clusterIPs ?? [];
  if (s.clusterIP) {
    if (ips.length === 0) errs.push(required("spec.clusterIPs", ""));
    else if (ips[0] !== s.clusterIP)
      errs.push(invalid("spec.clusterIPs", ips, "first value must match `clusterIP`"));
  } else if (ips.length) {
    errs.push(invalid("spec.clusterIPs", ips, "must be empty when `clusterIP` is not specified"));
  }
  const seen = new Set<string>();
  (s.ipFamilies ?? []).forEach((f, i) => {
    if (f !== "IPv4" && f !== "IPv6") errs.push(notSupported(`spec.ipFamilies[${i}]`, f, ["IPv4", "IPv6"]));
    if (seen.has(f)) errs.push(duplicate(`spec.ipFamilies[${i}]`, f));
    seen.add(f);
  });
  if (
    s.ipFamilyPolicy !== undefined &&
    !["PreferDualStack", "RequireDualStack", "SingleStack"].includes(s.ipFamilyPolicy)
  )
    errs.push(
      notSupported("spec.ipFamilyPolicy", s.ipFamilyPolicy, [
        "PreferDualStack",
        "RequireDualStack",
        "SingleStack",
      ]),
    );
  ips.forEach((ip, i) => {
    if (i === 0 && (ip === "None" || ip === "")) return;
    if (ip === "None") {
      errs.push(invalid(`spec.clusterIPs[${i}]`, ip, "must be a valid IP address"));
      return;
    }
    for (const m of isValidIP(ip)) errs.push(invalid(`spec.clusterIPs[${i}]`, ip, m));
  });
  if (ips.length > 2) errs.push(invalid("spec.clusterIPs", ips, "may only hold up to 2 values"));
  if (ips[0] === "None" && ips.length > 1)
    errs.push(
      invalid("spec.clusterIPs", ips, "must not have more than one value when the first value is 'None'"),
    );
  if (ips.length === 2 && ips.every((ip) => isValidIP(ip).length === 0)) {
    const fam = (ip: string) => (parseIPv4(ip) ? 4 : parseIPv6(ip) ? 6 : 0);
    if (fam(ips[0]) === fam(ips[1]))
      errs.push(invalid("spec.clusterIPs", ips, "may specify no more than one IP for each IP family"));
  }
  if (s.ipFamilyPolicy === "SingleStack" && (s.ipFamilies ?? []).length > 1)
    errs.push(
      invalid(
        "spec.ipFamilies",
        s.ipFamilies,
        "must contain exactly one entry when `ipFamilyPolicy` is 'SingleStack'",
      ),
    );
  return errs;
}

/** ValidateService (create) plus ValidateServiceUpdate when `old` is given. */
export function validateService(svc: Service, old?: Service): FieldError[] {
  const s = svc.spec ?? {};
  const errs: FieldError[] = [];
  const ports = s.ports ?? [];
  if (old?.spec) {
    const o = old.spec;
    if (
      s.type !== "ExternalName" &&
      o.type !== "ExternalName" &&
      !(o.clusterIP === "None" && s.clusterIP === "None")
    ) {
      const was = o.clusterIPs ?? (o.clusterIP ? [o.clusterIP] : []);
      const now = s.clusterIPs ?? [];
      // an update that leaves clusterIPs out keeps the allocated ones (see preserveAllocatedServiceFields)
      if (now.length && was.length && now[0] !== was[0])
        errs.push(invalid("spec.clusterIPs[0]", now, "may not change once set"));
      else if (now.length && was.length > 1 && now.length > 1 && now[1] !== was[1])
        errs.push(invalid("spec.clusterIPs[1]", now, "may not change once set"));
    }
  }
  if (ports.length === 0 && !isHeadless(svc) && s.type !== "ExternalName")
    errs.push(required("spec.ports", ""));
  switch (s.type) {
    case "LoadBalancer":
      if (isHeadless(svc))
        errs.push(
          invalid("spec.clusterIPs[0]", "None", "may not be set to 'None' for LoadBalancer services"),
        );
      break;
    case "NodePort":
      if (isHeadless(svc))
        errs.push(invalid("spec.clusterIPs[0]", "None", "may not be set to 'None' for NodePort services"));
      break;
    case "ExternalName": {
      if ((s.clusterIPs ?? []).length || s.clusterIP)
        errs.push(forbidden("spec.clusterIPs", "may not be set for ExternalName services"));
      if ((s.ipFamilies ?? []).length)
        errs.push(forbidden("spec.ipFamilies", "may not be set for ExternalName services"));
      if (s.ipFamilyPolicy !== undefined)
        errs.push(forbidden("spec.ipFamilyPolicy", "may not be set for ExternalName services"));
      const cname = (s.externalName ?? "").replace(/\.$/, "");
      if (cname) errs.push(...dns1123Subdomain(cname, "spec.externalName"));
      else errs.push(required("spec.externalName", ""));
      break;
    }
  }
  const names = new Set<string>();
  ports.forEach((p, i) => errs.push(...validateServicePort(p, ports.length > 1, names, `spec.ports[${i}]`)));
  if (s.selector) errs.push(...validateLabels(s.selector, "spec.selector"));
  if (!s.sessionAffinity) errs.push(required("spec.sessionAffinity", ""));
  else if (!["ClientIP", "None"].includes(s.sessionAffinity))
    errs.push(notSupported("spec.sessionAffinity", s.sessionAffinity, ["ClientIP", "None"]));
  if (s.sessionAffinity === "ClientIP") {
    const c = s.sessionAffinityConfig;
    const when = "when session affinity type is ClientIP";
    if (!c) errs.push(required("spec.sessionAffinityConfig", when));
    else if (!c.clientIP) errs.push(required("spec.sessionAffinityConfig.clientIP", when));
    else if (c.clientIP.timeoutSeconds === undefined)
      errs.push(required("spec.sessionAffinityConfig.clientIP.timeoutSeconds", when));
    else if (c.clientIP.timeoutSeconds <= 0 || c.clientIP.timeoutSeconds > 86400)
      errs.push(
        invalid(
          "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
          c.clientIP.timeoutSeconds,
          "must be greater than 0 and less than 86400",
        ),
      );
  } else if (s.sessionAffinity === "None" && s.sessionAffinityConfig) {
    errs.push(forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None"));
  }
  errs.push(...validateClusterIPs(svc));
  (s.externalIPs ?? []).forEach((ip, i) => {
    const m = isValidIP(ip);
    if (m.length) errs.push(...m.map((x) => invalid(`spec.externalIPs[${i}]`, ip, x)));
  });
  const types = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
  if (!s.type) errs.push(required("spec.type", ""));
  else if (!types.includes(s.type)) errs.push(notSupported("spec.type", s.type, types));
  if (s.type === "ClusterIP")
    ports.forEach((p, i) => {
      if (p.nodePort)
        errs.push(forbidden(`spec.ports[${i}].nodePort`, "may not be used when `type` is 'ClusterIP'"));
    });
  const nodePorts = new Set<string>();
  ports.forEach((p, i) => {
    if (!p.nodePort) return;
    const key = `${p.protocol}/${p.nodePort}`;
    if (nodePorts.has(key)) errs.push(duplicate(`spec.ports[${i}].nodePort`, p.nodePort));
    nodePorts.add(key);
  });
  const seenPorts = new Set<string>();
  ports.forEach((p, i) => {
    const key = `${p.protocol}/${p.port}`;
    if (seenPorts.has(key)) errs.push(duplicate(`spec.ports[${i}]`, goServicePort(p)));
    seenPorts.add(key);
  });
  if ((s.loadBalancerSourceRanges ?? []).length) {
    if (s.type !== "LoadBalancer")
      errs.push(forbidden("spec.LoadBalancerSourceRanges", "may only be used when `type` is 'LoadBalancer'"));
    s.loadBalancerSourceRanges!.forEach((r, i) => {
      const v = r.trim();
      for (const m of isValidCIDR(v)) errs.push(invalid(`spec.LoadBalancerSourceRanges[${i}]`, v, m));
    });
  }
  if (s.allocateLoadBalancerNodePorts !== undefined && s.type !== "LoadBalancer")
    errs.push(
      forbidden("spec.allocateLoadBalancerNodePorts", "may only be used when `type` is 'LoadBalancer'"),
    );
  if (s.type === "LoadBalancer" && s.allocateLoadBalancerNodePorts === undefined)
    errs.push(required("allocateLoadBalancerNodePorts", ""));
  // external traffic policy
  const externallyAccessible =
    s.type === "LoadBalancer" ||
    s.type === "NodePort" ||
    (s.type === "ClusterIP" && (s.externalIPs ?? []).length > 0);
  if (!externallyAccessible) {
    if (s.externalTrafficPolicy)
      errs.push(
        invalid(
          "spec.externalTrafficPolicy",
          s.externalTrafficPolicy,
          "may only be set for externally-accessible services",
        ),
      );
  } else if (!s.externalTrafficPolicy) {
    errs.push(required("spec.externalTrafficPolicy", ""));
  } else if (!["Cluster", "Local"].includes(s.externalTrafficPolicy)) {
    errs.push(notSupported("spec.externalTrafficPolicy", s.externalTrafficPolicy, ["Cluster", "Local"]));
  }
  const needsHealthCheck = s.type === "LoadBalancer" && s.externalTrafficPolicy === "Local";
  if (!needsHealthCheck) {
    if (s.healthCheckNodePort)
      errs.push(
        invalid(
          "spec.healthCheckNodePort",
          s.healthCheckNodePort,
          "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
        ),
      );
  } else if (s.healthCheckNodePort) {
    // 0 here means "not allocated yet": kube allocates it before validating
    for (const m of isValidPortNum(s.healthCheckNodePort))
      errs.push(invalid("spec.healthCheckNodePort", s.healthCheckNodePort, m));
  }
  if (s.internalTrafficPolicy === undefined) {
    if (s.type !== "ExternalName") errs.push(required("spec.internalTrafficPolicy", ""));
  } else if (!["Cluster", "Local"].includes(s.internalTrafficPolicy)) {
    errs.push(notSupported("spec.internalTrafficPolicy", s.internalTrafficPolicy, ["Cluster", "Local"]));
  }
  if (s.trafficDistribution !== undefined && s.trafficDistribution !== "PreferClose")
    errs.push(notSupported("spec.trafficDistribution", s.trafficDistribution, ["PreferClose"]));
  return errs;
}

const sameList = (a: unknown[] | undefined, b: unknown[] | undefined) => jsonEqual(a ?? [], b ?? []);
const nodePortsOf = (svc: Service) =>
  (svc.spec?.ports ?? [])
    .map((p) => p.nodePort ?? 0)
    .filter((n) => n !== 0)
    .sort((a, b) => a - b);
const needsNodePorts = (svc: Service) =>
  svc.spec?.type === "NodePort" ||
  (svc.spec?.type === "LoadBalancer" && svc.spec.allocateLoadBalancerNodePorts !== false);
const needsHealthCheckNodePort = (svc: Service) =>
  svc.spec?.type === "LoadBalancer" && svc.spec.externalTrafficPolicy === "Local";
const externallyAccessible = (svc: Service) =>
  svc.spec?.type === "LoadBalancer" ||
  svc.spec?.type === "NodePort" ||
  (svc.spec?.type === "ClusterIP" && (svc.spec.externalIPs ?? []).length > 0);

/**
 * kube's dropTypeDependentFields (run on update, before validation): when the type changes, values
 * that only the old type needed and that the user left as they were are cleared, so `kubectl apply`
 * of a NodePort Service turned ClusterIP does not trip over the old nodePorts.
 */
export function dropTypeDependentServiceFields(svc: Service, old: Service): void {
  const s = svc.spec;
  const o = old.spec;
  if (!s || !o) return;
  if (o.type !== "ExternalName" && s.type === "ExternalName") {
    if (sameList(s.clusterIPs, o.clusterIPs) && (s.clusterIP ?? "") === (o.clusterIP ?? "")) {
      delete s.clusterIP;
      delete s.clusterIPs;
    }
    if (sameList(s.ipFamilies, o.ipFamilies)) delete s.ipFamilies;
    if (s.ipFamilyPolicy === o.ipFamilyPolicy) delete s.ipFamilyPolicy;
  }
  if (needsNodePorts(old) && !needsNodePorts(svc) && jsonEqual(nodePortsOf(svc), nodePortsOf(old)))
    for (const p of s.ports ?? []) delete p.nodePort;
  if (
    needsHealthCheckNodePort(old) &&
    !needsHealthCheckNodePort(svc) &&
    s.healthCheckNodePort === o.healthCheckNodePort
  )
    delete s.healthCheckNodePort;
  if (o.type === "LoadBalancer" && s.type !== "LoadBalancer") {
    if (
      s.allocateLoadBalancerNodePorts !== undefined &&
      o.allocateLoadBalancerNodePorts !== undefined &&
      s.allocateLoadBalancerNodePorts === o.allocateLoadBalancerNodePorts
    )
      delete s.allocateLoadBalancerNodePorts;
    if (s.loadBalancerClass === o.loadBalancerClass) delete s.loadBalancerClass;
  }
  if (
    externallyAccessible(old) &&
    !externallyAccessible(svc) &&
    s.externalTrafficPolicy === o.externalTrafficPolicy
  )
    delete s.externalTrafficPolicy;
  // the load balancer is gone as soon as the type says so
  if (s.type !== "LoadBalancer" && svc.status) svc.status.loadBalancer = {};
}

/**
 * What kube's service registry does on update before validating: a PUT that leaves out the allocated
 * clusterIP(s), nodePorts or healthCheckNodePort keeps the old ones (patchAllocatedValues).
 */
export function preserveAllocatedServiceFields(svc: Service, old: Service): void {
  const s = svc.spec;
  const o = old.spec;
  if (!s || !o) return;
  dropTypeDependentServiceFields(svc, old);
  const needsClusterIP = (t?: string) => t !== "ExternalName";
  if (needsClusterIP(s.type) && needsClusterIP(o.type)) {
    if (!s.clusterIP && o.clusterIP) s.clusterIP = o.clusterIP;
    if ((!s.clusterIPs || s.clusterIPs.length === 0) && o.clusterIPs?.length && s.clusterIP === o.clusterIP)
      s.clusterIPs = [...o.clusterIPs];
  }
  const needsNodePort = (t?: string) => t === "NodePort" || t === "LoadBalancer";
  if (needsNodePort(s.type) && needsNodePort(o.type)) {
    for (const p of s.ports ?? []) {
      if (p.nodePort) continue;
      const match = (o.ports ?? []).find(
        (q) => q.port === p.port && (q.protocol ?? "TCP") === (p.protocol ?? "TCP"),
      );
      if (match?.nodePort) p.nodePort = match.nodePort;
    }
  }
  if (
    s.type === "LoadBalancer" &&
    s.externalTrafficPolicy === "Local" &&
    !s.healthCheckNodePort &&
    o.healthCheckNodePort
  )
    s.healthCheckNodePort = o.healthCheckNodePort;
}

// ------------------------------------------------------------------ Endpoints, Node, ConfigMap, Secret, Event

export function validateEndpoints(ep: Endpoints): FieldError[] {
  const errs: FieldError[] = [];
  (ep.subsets ?? []).forEach((ss, i) => {
    const p = `subsets[${i}]`;
    if (!(ss.addresses ?? []).length && !(ss.notReadyAddresses ?? []).length)
      errs.push(required(p, "must specify `addresses` or `notReadyAddresses`"));
    for (const kind of ["addresses", "notReadyAddresses"] as const)
      (ss[kind] ?? []).forEach((a, j) => {
        const ap = `${p}.${kind}[${j}]`;
        for (const m of isValidIP(a.ip ?? "")) errs.push(invalid(`${ap}.ip`, a.ip ?? "", m));
        if (a.hostname) errs.push(...dns1123Label(a.hostname, `${ap}.hostname`));
        if (a.nodeName) errs.push(...dns1123Subdomain(a.nodeName, `${ap}.nodeName`));
      });
    const ports = ss.ports ?? [];
    ports.forEach((port, j) => {
      const pp = `${p}.ports[${j}]`;
      if (ports.length > 1 && !port.name) errs.push(required(`${pp}.name`, ""));
      else if (port.name) errs.push(...dns1123Label(port.name, `${pp}.name`));
      for (const m of isValidPortNum(port.port)) errs.push(invalid(`${pp}.port`, port.port ?? 0, m));
      errs.push(...validateEnum(port.protocol, `${pp}.protocol`, supportedProtocols));
      if (port.appProtocol !== undefined) errs.push(...qualifiedName(port.appProtocol, `${pp}.appProtocol`));
    });
  });
  return errs;
}

export function validateNode(node: Node, old?: Node): FieldError[] {
  const errs: FieldError[] = [];
  const cidrs = node.spec?.podCIDRs ?? [];
  cidrs.forEach((c, i) => {
    for (const m of isValidCIDR(c)) errs.push(invalid(`spec.podCIDRs[${i}]`, c, m));
  });
  if (cidrs.length > 2)
    errs.push(invalid("spec.podCIDRs", cidrs, "may specify no more than one CIDR for each IP family"));
  (node.spec?.taints ?? []).forEach((t, i) => {
    const p = `spec.taints[${i}]`;
    errs.push(...qualifiedName(t.key ?? "", `${p}.key`));
    const vm = isValidLabelValue(t.value ?? "");
    if (vm.length) errs.push(invalid(`${p}.value`, t.value ?? "", vm.join(";")));
    errs.push(...validateEnum(t.effect, `${p}.effect`, ["NoExecute", "NoSchedule", "PreferNoSchedule"]));
  });
  const seen = new Set<string>();
  (node.spec?.taints ?? []).forEach((t, i) => {
    const k = `${t.key}:${t.effect}`;
    if (seen.has(k))
      errs.push(
        duplicate(
          `spec.taints[${i}]`,
          new GoLiteral(
            `core.Taint{Key:${goQuote(t.key ?? "")}, Value:${goQuote(t.value ?? "")}, Effect:${goQuote(t.effect ?? "")}, TimeAdded:(*v1.Time)(nil)}`,
            t,
          ),
        ),
      );
    seen.add(k);
  });
  if (old) {
    const was = old.spec?.podCIDRs ?? [];
    if (was.length && !jsonEqual(was, cidrs))
      errs.push(forbidden("spec.podCIDRs", 'node updates may not change podCIDR except from "" to valid'));
    if (old.spec?.providerID && old.spec.providerID !== node.spec?.providerID)
      errs.push(
        forbidden("spec.providerID", 'node updates may not change providerID except from "" to valid'),
      );
  }
  return errs;
}

function dataSize(...maps: Array<Record<string, string> | undefined>): number {
  let n = 0;
  for (const m of maps) for (const [k, v] of Object.entries(m ?? {})) n += k.length + String(v).length;
  return n;
}

const maxDataSize = 1024 * 1024;

export function validateConfigMap(cm: ConfigMap, old?: ConfigMap): FieldError[] {
  const errs: FieldError[] = [];
  for (const k of Object.keys(cm.data ?? {})) {
    for (const m of isConfigMapKey(k)) errs.push(invalid(`data[${k}]`, k, m));
    if (typeof cm.data![k] !== "string") errs.push(invalid(`data[${k}]`, cm.data![k], "must be a string"));
  }
  for (const k of Object.keys(cm.binaryData ?? {})) {
    for (const m of isConfigMapKey(k)) errs.push(invalid(`binaryData[${k}]`, k, m));
    if (cm.data && k in cm.data)
      errs.push(invalid(`binaryData[${k}]`, k, "duplicate of key present in data"));
  }
  if (dataSize(cm.data, cm.binaryData) > maxDataSize) errs.push(tooLong("", maxDataSize));
  if (old?.immutable) {
    if (!cm.immutable) errs.push(forbidden("immutable", "field is immutable when `immutable` is set"));
    if (!jsonEqual(cm.data ?? {}, old.data ?? {}))
      errs.push(forbidden("data", "field is immutable when `immutable` is set"));
    if (!jsonEqual(cm.binaryData ?? {}, old.binaryData ?? {}))
      errs.push(forbidden("binaryData", "field is immutable when `immutable` is set"));
  }
  return errs;
}

export function validateSecret(sec: Secret, old?: Secret): FieldError[] {
  const errs: FieldError[] = [];
  const data = sec.data ?? {};
  for (const k of Object.keys(data)) {
    for (const m of isConfigMapKey(k)) errs.push(invalid(`data[${k}]`, k, m));
  }
  const need = (key: string) => {
    if (!(key in data)) errs.push(required(`data[${key}]`, ""));
  };
  switch (sec.type) {
    case "kubernetes.io/tls":
      need("tls.crt");
      need("tls.key");
      break;
    case "kubernetes.io/dockerconfigjson":
      need(".dockerconfigjson");
      break;
    case "kubernetes.io/dockercfg":
      need(".dockercfg");
      break;
    case "kubernetes.io/ssh-auth":
      need("ssh-privatekey");
      break;
    case "kubernetes.io/basic-auth":
      if (!("username" in data) && !("password" in data)) errs.push(required("data[username]", ""));
      break;
    case "kubernetes.io/service-account-token":
      if (!sec.metadata.annotations?.["kubernetes.io/service-account.name"])
        errs.push(required("metadata.annotations[kubernetes.io/service-account.name]", ""));
      break;
  }
  // the limit is on decoded bytes
  let size = 0;
  for (const [k, v] of Object.entries(data)) {
    const b64 = String(v ?? "").replace(/[\r\n]/g, "");
    size += k.length + Math.floor((b64.length * 3) / 4) - (b64.match(/=+$/)?.[0].length ?? 0);
  }
  if (size > maxDataSize) errs.push(tooLong("data", maxDataSize));
  if (old) {
    if ((sec.type ?? "") !== (old.type ?? "")) errs.push(invalid("type", sec.type ?? "", fieldImmutable));
    if (old.immutable) {
      if (!sec.immutable) errs.push(forbidden("immutable", "field is immutable when `immutable` is set"));
      if (!jsonEqual(data, old.data ?? {}))
        errs.push(forbidden("data", "field is immutable when `immutable` is set"));
    }
  }
  return errs;
}

export function validateEvent(ev: Event): FieldError[] {
  const errs: FieldError[] = [];
  const ns = ev.metadata.namespace ?? "";
  const io = ev.involvedObject ?? {};
  if (!ev.involvedObject) errs.push(required("involvedObject", ""));
  if (!io.namespace) {
    if (ns !== "" && ns !== "default")
      errs.push(invalid("involvedObject.namespace", io.namespace ?? "", "does not match event.namespace"));
  } else if (io.namespace !== ns) {
    errs.push(invalid("involvedObject.namespace", io.namespace, "does not match event.namespace"));
  }
  if (ev.type !== undefined && ev.type !== "" && !["Normal", "Warning"].includes(ev.type))
    errs.push(notSupported("type", ev.type, ["Normal", "Warning"]));
  return errs;
}
