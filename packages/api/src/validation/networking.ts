// networking.k8s.io/v1, discovery.k8s.io/v1 and coordination.k8s.io/v1 validation with
// kube-apiserver's paths and messages.
import {
  duplicate,
  forbidden,
  GoLiteral,
  invalid,
  notSupported,
  required,
  tooLong,
  tooMany,
  type FieldError,
} from "../field.ts";
import type {
  EndpointSlice,
  Ingress,
  IngressBackend,
  IngressClass,
  Lease,
  NetworkPolicy,
  NetworkPolicyPeer,
  NetworkPolicyPort,
} from "../types.ts";
import { dns1123Label, dns1123Subdomain, qualifiedName, supportedProtocols } from "./core.ts";
import { fieldImmutable, validateEnum, validateLabelSelector } from "./meta.ts";
import {
  cidrContains,
  ipFamilyOf,
  isDNS1035Label,
  isDNS1123Subdomain,
  isValidCIDR,
  isValidPortName,
  isValidPortNum,
  isWildcardDNS1123Subdomain,
  parseCIDR,
  parseIPv4,
  parseIPv6,
  regexError,
} from "./strings.ts";

// ------------------------------------------------------------------ Ingress

function validateBackend(b: IngressBackend, path: string): FieldError[] {
  const errs: FieldError[] = [];
  const hasResource = b.resource !== undefined && b.resource !== null;
  const hasService = b.service !== undefined && b.service !== null;
  if (hasResource && hasService) return [invalid(path, "", "cannot set both resource and service backends")];
  if (hasResource) {
    const r = b.resource!;
    if (!r.kind) errs.push(required(`${path}.resource.kind`, ""));
    if (!r.name) errs.push(required(`${path}.resource.name`, ""));
    if (r.apiGroup) errs.push(...dns1123Subdomain(r.apiGroup, `${path}.resource.apiGroup`));
    return errs;
  }
  if (hasService) {
    const s = b.service!;
    if (!s.name) errs.push(required(`${path}.service.name`, ""));
    else for (const m of isDNS1035Label(s.name)) errs.push(invalid(`${path}.service.name`, s.name, m));
    const name = s.port?.name ?? "";
    const num = s.port?.number ?? 0;
    if (name && num) errs.push(invalid(path, "", "cannot set both port name & port number"));
    else if (name)
      for (const m of isValidPortName(name)) errs.push(invalid(`${path}.service.port.name`, name, m));
    else if (num)
      for (const m of isValidPortNum(num)) errs.push(invalid(`${path}.service.port.number`, num, m));
    else errs.push(required(path, "port name or number is required"));
    return errs;
  }
  return [invalid(path, "", "resource or service backend is required")];
}

function validateHost(host: string, path: string): FieldError[] {
  if (parseIPv4(host) || parseIPv6(host))
    return [invalid(path, host, "must be a DNS name, not an IP address")];
  const msgs = host.includes("*") ? isWildcardDNS1123Subdomain(host) : isDNS1123Subdomain(host);
  return msgs.map((m) => invalid(path, host, m));
}

const invalidPathSequences = ["//", "/./", "/../", "%2f", "%2F"];
const invalidPathSuffixes = ["/..", "/."];

export function validateIngress(ing: Ingress, old?: Ingress): FieldError[] {
  void old;
  const s = ing.spec ?? {};
  const errs: FieldError[] = [];
  const rules = s.rules ?? [];
  if (rules.length === 0 && !s.defaultBackend)
    errs.push(
      invalid(
        "spec",
        new GoLiteral(
          rules.length === 0 && !s.rules ? "[]networking.IngressRule(nil)" : "[]networking.IngressRule{}",
          s.rules ?? null,
        ),
        "either `defaultBackend` or `rules` must be specified",
      ),
    );
  if (s.defaultBackend) errs.push(...validateBackend(s.defaultBackend, "spec.defaultBackend"));
  rules.forEach((r, i) => {
    const p = `spec.rules[${i}]`;
    if (r.host) errs.push(...validateHost(r.host, `${p}.host`));
    if (!r.http) return;
    const paths = r.http.paths ?? [];
    if (paths.length === 0) errs.push(required(`${p}.http.paths`, ""));
    paths.forEach((hp, j) => {
      const pp = `${p}.http.paths[${j}]`;
      if (!hp.pathType) {
        errs.push(required(`${pp}.pathType`, "pathType must be specified"));
        return;
      }
      const path = hp.path ?? "";
      switch (hp.pathType) {
        case "Exact":
        case "Prefix":
          if (!path.startsWith("/")) errs.push(invalid(`${pp}.path`, path, "must be an absolute path"));
          if (path.length > 0) {
            for (const seq of invalidPathSequences)
              if (path.includes(seq)) errs.push(invalid(`${pp}.path`, path, `must not contain '${seq}'`));
            for (const suf of invalidPathSuffixes)
              if (path.endsWith(suf)) errs.push(invalid(`${pp}.path`, path, `cannot end with '${suf}'`));
          }
          break;
        case "ImplementationSpecific":
          if (path.length > 0 && !path.startsWith("/"))
            errs.push(invalid(`${pp}.path`, path, "must be an absolute path"));
          break;
        default:
          errs.push(
            notSupported(`${pp}.pathType`, hp.pathType, ["Exact", "ImplementationSpecific", "Prefix"]),
          );
      }
      if (!hp.backend) errs.push(invalid(`${pp}.backend`, "", "resource or service backend is required"));
      else errs.push(...validateBackend(hp.backend, `${pp}.backend`));
    });
  });
  (s.tls ?? []).forEach((t, i) => {
    (t.hosts ?? []).forEach((h, j) => {
      const msgs = h.includes("*") ? isWildcardDNS1123Subdomain(h) : isDNS1123Subdomain(h);
      for (const m of msgs) errs.push(invalid(`spec.tls[${i}].hosts[${j}]`, h, m));
    });
    if (t.secretName) errs.push(...dns1123Subdomain(t.secretName, `spec.tls[${i}].secretName`));
  });
  if (s.ingressClassName !== undefined)
    errs.push(...dns1123Subdomain(s.ingressClassName, "spec.ingressClassName"));
  const ann = ing.metadata.annotations?.["kubernetes.io/ingress.class"];
  if (!old && ann !== undefined && s.ingressClassName !== undefined && ann !== s.ingressClassName)
    errs.push(
      invalid(
        "annotations.kubernetes.io/ingress.class",
        ann,
        "must match `ingressClassName` when both are specified",
      ),
    );
  return errs;
}

const httpPathFmt = "[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+";
const httpPathRe = new RegExp(`^${httpPathFmt}$`);

export function validateIngressClass(ic: IngressClass, old?: IngressClass): FieldError[] {
  const errs: FieldError[] = [];
  const c = ic.spec?.controller ?? "";
  if (c.length > 250) errs.push(tooLong("spec.controller", 250));
  if (!c) errs.push(required("spec.controller", ""));
  else {
    const seg = c.split("/");
    const host = seg[0];
    const rest = seg.slice(1).join("/");
    if (seg.length < 2 || !host || !rest)
      errs.push(invalid("spec.controller", c, 'must be a domain-prefixed path (such as "acme.io/foo")'));
    else {
      for (const m of isDNS1123Subdomain(host)) errs.push(invalid("spec.controller", host, m));
      if (!httpPathRe.test(rest))
        errs.push(invalid("spec.controller", rest, regexError("Invalid path", httpPathFmt)));
    }
  }
  const p = ic.spec?.parameters;
  if (p) {
    const pp = "spec.parameters";
    if (p.apiGroup) errs.push(...dns1123Subdomain(p.apiGroup, `${pp}.apiGroup`));
    if (!p.kind) errs.push(required(`${pp}.kind`, ""));
    if (!p.name) errs.push(required(`${pp}.name`, ""));
    if (p.scope === undefined) errs.push(required(`${pp}.scope`, ""));
    else if (p.scope !== "Cluster" && p.scope !== "Namespace")
      errs.push(notSupported(`${pp}.scope`, p.scope, ["Cluster", "Namespace"]));
    if (p.scope === "Namespace" && !p.namespace)
      errs.push(required(`${pp}.namespace`, "`parameters.scope` is set to 'Namespace'"));
    if (p.scope === "Cluster" && p.namespace)
      errs.push(forbidden(`${pp}.namespace`, "`parameters.scope` is set to 'Cluster'"));
  }
  if (old && (old.spec?.controller ?? "") !== c) errs.push(invalid("spec.controller", c, fieldImmutable));
  return errs;
}

// ------------------------------------------------------------------ NetworkPolicy

function validatePolicyPort(port: NetworkPolicyPort, path: string): FieldError[] {
  const errs: FieldError[] = [];
  if (port.protocol !== undefined && !["TCP", "UDP", "SCTP"].includes(port.protocol))
    errs.push(notSupported(`${path}.protocol`, port.protocol, ["TCP", "UDP", "SCTP"]));
  if (port.port !== undefined && port.port !== null) {
    if (typeof port.port === "number") {
      for (const m of isValidPortNum(port.port)) errs.push(invalid(`${path}.port`, port.port, m));
      if (port.endPort !== undefined) {
        // kube reports the start port as the bad value here
        if (port.endPort < port.port)
          errs.push(invalid(`${path}.endPort`, port.port, "must be greater than or equal to `port`"));
        for (const m of isValidPortNum(port.endPort)) errs.push(invalid(`${path}.endPort`, port.endPort, m));
      }
    } else {
      if (port.endPort !== undefined)
        errs.push(
          invalid(`${path}.endPort`, port.endPort, "may not be specified when `port` is non-numeric"),
        );
      for (const m of isValidPortName(String(port.port))) errs.push(invalid(`${path}.port`, port.port, m));
    }
  } else if (port.endPort !== undefined) {
    errs.push(invalid(`${path}.endPort`, port.endPort, "may not be specified when `port` is not specified"));
  }
  return errs;
}

function validatePeer(peer: NetworkPolicyPeer, path: string): FieldError[] {
  const errs: FieldError[] = [];
  let n = 0;
  if (peer.podSelector) {
    n++;
    errs.push(...validateLabelSelector(peer.podSelector, `${path}.podSelector`));
  }
  if (peer.namespaceSelector) {
    n++;
    errs.push(...validateLabelSelector(peer.namespaceSelector, `${path}.namespaceSelector`));
  }
  if (peer.ipBlock) {
    n++;
    const b = peer.ipBlock;
    const bp = `${path}.ipBlock`;
    if (!b.cidr) errs.push(required(`${bp}.cidr`, ""));
    else {
      const m = isValidCIDR(b.cidr);
      errs.push(...m.map((x) => invalid(`${bp}.cidr`, b.cidr, x)));
      const outer = parseCIDR(b.cidr);
      if (outer)
        (b.except ?? []).forEach((e, i) => {
          const ep = `${bp}.except[${i}]`;
          const em = isValidCIDR(e);
          errs.push(...em.map((x) => invalid(ep, e, x)));
          const inner = parseCIDR(e);
          if (!inner) return;
          if (!cidrContains(outer, inner) || outer.prefix >= inner.prefix)
            errs.push(invalid(ep, e, "must be a strict subset of `cidr`"));
        });
    }
  }
  if (n === 0) errs.push(required(path, "must specify a peer"));
  else if (n > 1 && peer.ipBlock) errs.push(forbidden(path, "may not specify both ipBlock and another peer"));
  return errs;
}

export function validateNetworkPolicy(np: NetworkPolicy): FieldError[] {
  const s = np.spec;
  if (!s) return [required("spec", "")];
  const errs: FieldError[] = [];
  if (!s.podSelector) errs.push(required("spec.podSelector", ""));
  errs.push(...validateLabelSelector(s.podSelector, "spec.podSelector"));
  (s.ingress ?? []).forEach((r, i) => {
    (r.ports ?? []).forEach((p, j) => errs.push(...validatePolicyPort(p, `spec.ingress[${i}].ports[${j}]`)));
    (r.from ?? []).forEach((p, j) => errs.push(...validatePeer(p, `spec.ingress[${i}].from[${j}]`)));
  });
  (s.egress ?? []).forEach((r, i) => {
    (r.ports ?? []).forEach((p, j) => errs.push(...validatePolicyPort(p, `spec.egress[${i}].ports[${j}]`)));
    (r.to ?? []).forEach((p, j) => errs.push(...validatePeer(p, `spec.egress[${i}].to[${j}]`)));
  });
  const types = s.policyTypes ?? [];
  if (types.length > 2) {
    errs.push(invalid("spec.policyTypes", types, "may not specify more than two policyTypes"));
    return errs;
  }
  types.forEach((t, i) => {
    if (t !== "Ingress" && t !== "Egress")
      errs.push(notSupported(`spec.policyTypes[${i}]`, t, ["Ingress", "Egress"]));
  });
  return errs;
}

// ------------------------------------------------------------------ EndpointSlice

export function validateEndpointSlice(es: EndpointSlice, old?: EndpointSlice): FieldError[] {
  const errs: FieldError[] = [];
  const types = ["FQDN", "IPv4", "IPv6"];
  errs.push(...validateEnum(es.addressType, "addressType", types));
  const eps = es.endpoints ?? [];
  if (eps.length > 1000) errs.push(tooMany("endpoints", eps.length, 1000));
  eps.forEach((ep, i) => {
    const p = `endpoints[${i}]`;
    const addrs = ep.addresses ?? [];
    if (addrs.length === 0) errs.push(required(`${p}.addresses`, "must contain at least 1 address"));
    else if (addrs.length > 100) errs.push(tooMany(`${p}.addresses`, addrs.length, 100));
    addrs.forEach((a, j) => {
      const ap = `${p}.addresses[${j}]`;
      if (es.addressType === "IPv4" && ipFamilyOf(a) !== "IPv4")
        errs.push(invalid(ap, a, "must be a valid IPv4 address"));
      if (es.addressType === "IPv6" && ipFamilyOf(a) !== "IPv6")
        errs.push(invalid(ap, a, "must be a valid IPv6 address"));
      if (es.addressType === "FQDN") errs.push(...dns1123Subdomain(a, ap));
    });
    if (ep.nodeName) errs.push(...dns1123Subdomain(ep.nodeName, `${p}.nodeName`));
    if (ep.hostname) errs.push(...dns1123Label(ep.hostname, `${p}.hostname`));
  });
  const ports = es.ports ?? [];
  if (ports.length > 20000) errs.push(tooMany("ports", ports.length, 20000));
  const names = new Set<string>();
  ports.forEach((port, i) => {
    const p = `ports[${i}]`;
    const name = port.name ?? "";
    if (name) errs.push(...dns1123Label(name, `${p}.name`));
    if (names.has(name)) errs.push(duplicate(`${p}.name`, name));
    names.add(name);
    if (port.port !== undefined && port.port !== null)
      for (const m of isValidPortNum(port.port)) errs.push(invalid(`${p}.port`, port.port, m));
    errs.push(...validateEnum(port.protocol, `${p}.protocol`, supportedProtocols));
    if (port.appProtocol !== undefined) errs.push(...qualifiedName(port.appProtocol, `${p}.appProtocol`));
  });
  if (old && old.addressType !== es.addressType)
    errs.push(invalid("addressType", es.addressType, fieldImmutable));
  return errs;
}

// ------------------------------------------------------------------ Lease

export function validateLease(l: Lease): FieldError[] {
  const errs: FieldError[] = [];
  const s = l.spec ?? {};
  if (s.leaseDurationSeconds !== undefined && s.leaseDurationSeconds <= 0)
    errs.push(invalid("spec.leaseDurationSeconds", s.leaseDurationSeconds, "must be greater than 0"));
  if (s.leaseTransitions !== undefined && s.leaseTransitions < 0)
    errs.push(invalid("spec.leaseTransitions", s.leaseTransitions, "must be greater than or equal to 0"));
  return errs;
}
