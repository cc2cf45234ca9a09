/**
 * The kubernetes plugin's answers as a function of data: a question and the cluster index in,
 * the response sections out. Follows the Kubernetes DNS-Based Service Discovery specification
 * (schema 1.1.0) and CoreDNS's choices where the specification leaves them open (NXDOMAIN against
 * NODATA, SRV weights, SOA fields, pod records, endpoint names).
 */
import type { Answer, RecordType } from "dns-packet";
import { canonicalIP, type ClusterIndex, type EndpointInfo, type PortInfo } from "./cluster.ts";
import { inZone, matchZone, rrOf } from "../message.ts";

export const DNS_SCHEMA_VERSION = "1.1.0";

export type PodMode = "disabled" | "insecure" | "verified";

export interface KubernetesOptions {
  /** Zones served (FQDN, lower case): the cluster domain and reverse zones. */
  zones: string[];
  ttl: number;
  pods: PodMode;
  /** Only these namespaces are exposed; empty exposes all. */
  namespaces: string[];
  endpointPodNames: boolean;
  /** Zones whose NXDOMAIN goes to the next plugin; `[]` means all; undefined means never. */
  fallthrough?: string[];
  noEndpoints: boolean;
  ignoreEmptyService: boolean;
}

export const defaultKubernetesOptions: KubernetesOptions = {
  zones: ["cluster.local."],
  ttl: 5,
  pods: "disabled",
  namespaces: [],
  endpointPodNames: false,
  noEndpoints: false,
  ignoreEmptyService: false,
};

export interface Question {
  name: string;
  type: RecordType | string;
}

export interface AnswerContext {
  index: ClusterIndex;
  synced: boolean;
  /** This server's own addresses (the NS records name the Service whose endpoints they are). */
  localIPs: string[];
}

export interface KubeAnswer {
  rcode: "NOERROR" | "NXDOMAIN" | "SERVFAIL" | "REFUSED";
  answers: Answer[];
  authorities: Answer[];
  additionals: Answer[];
  /** NXDOMAIN that the `fallthrough` option hands to the next plugin. */
  fallthrough: boolean;
  /** An ExternalName CNAME whose target lies outside the zones: resolve it upstream and append. */
  chase?: { target: string; type: "A" | "AAAA" };
}

/** One candidate record, as CoreDNS's msg.Service: an address or a CNAME target, a port, an owner path. */
interface Item {
  host: string;
  port: number;
  /** Name of the object the item stands for (SRV target), without the zone. */
  key: string;
  text?: string;
  ttl: number;
}

type Found = { items: Item[]; nameError: boolean };
const found = (items: Item[]): Found => ({ items, nameError: false });
const nameError: Found = { items: [], nameError: true };

/** undefined: the question is outside the plugin's zones (the next plugin handles it). */
export function answer(q: Question, ctx: AnswerContext, opts: KubernetesOptions): KubeAnswer | undefined {
  const qname = q.name.endsWith(".") ? q.name : `${q.name}.`;
  const lname = qname.toLowerCase();
  const zoneL = matchZone(lname, opts.zones);
  if (zoneL === undefined) return undefined;
  // Owner names echo the query's case, zone included.
  const zone = zoneL === "." ? "." : qname.slice(qname.length - zoneL.length);
  const r = new Resolver(ctx, opts, zone, zoneL);
  const result: KubeAnswer = {
    rcode: "NOERROR",
    answers: [],
    authorities: [],
    additionals: [],
    fallthrough: false,
  };
  let err = false;
  switch (q.type) {
    case "A":
    case "AAAA": {
      const a = r.address(qname, q.type, []);
      err = a.nameError;
      result.answers = a.records;
      if (a.chase) result.chase = a.chase;
      break;
    }
    case "TXT": {
      const f = r.txt(qname);
      err = f.nameError;
      result.answers = f.items.map((i) => rr(qname, "TXT", i.ttl, i.text!));
      break;
    }
    case "CNAME": {
      const f = r.services(qname, "CNAME");
      err = f.nameError;
      const cname = f.items.find((i) => isName(i.host));
      if (cname) result.answers = [rr(qname, "CNAME", cname.ttl, fqdn(cname.host))];
      break;
    }
    case "PTR": {
      const f = r.reverse(qname);
      err = f.nameError;
      result.answers = f.items.map((i) => rr(qname, "PTR", i.ttl, i.host));
      break;
    }
    case "SRV": {
      const s = r.srv(qname);
      err = s.nameError;
      result.answers = s.records;
      result.additionals = s.extra;
      break;
    }
    case "MX": {
      // Kubernetes has no mail records: the name either exists (NODATA) or not.
      err = r.services(qname, "MX").nameError;
      break;
    }
    case "SOA":
      if (lname === zoneL) result.answers = [r.soa()];
      break;
    case "AXFR":
    case "IXFR":
      result.rcode = "REFUSED";
      return result;
    case "NS":
      if (lname === zoneL) {
        for (const ns of r.nsAddrs()) {
          if (!result.answers.some((a) => rrOf(a).data === ns.name))
            result.answers.push(rr(zone, "NS", opts.ttl, ns.name));
          result.additionals.push(rr(ns.name, ns.ip.includes(":") ? "AAAA" : "A", opts.ttl, ns.ip));
        }
        break;
      }
      err = r.address(qname, "A", []).nameError;
      break;
    default:
      // A "fake" A lookup tells NXDOMAIN from NODATA for types Kubernetes never has.
      err = r.address(qname, "A", []).nameError;
  }
  if (err) {
    const fall =
      opts.fallthrough !== undefined &&
      (opts.fallthrough.length === 0 || matchZone(lname, opts.fallthrough) !== undefined);
    result.fallthrough = fall;
    result.rcode = ctx.synced ? "NXDOMAIN" : "SERVFAIL";
    result.answers = [];
    result.additionals = [];
    result.authorities = [r.soa()];
    delete result.chase;
    return result;
  }
  if (result.answers.length === 0 && !result.chase) result.authorities = [r.soa()];
  return result;
}

function rr(name: string, type: string, ttl: number, data: unknown): Answer {
  return { name, type, ttl, class: "IN", data } as Answer;
}

function fqdn(name: string): string {
  return name.endsWith(".") ? name : `${name}.`;
}

function isName(host: string): boolean {
  return !/^[\d.]+$/.test(host) && !host.includes(":");
}

function ipFamily(host: string): "A" | "AAAA" | "CNAME" {
  if (host.includes(":")) return "AAAA";
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(host)) return "A";
  return "CNAME";
}

/** `172-0-0-2`; IPv6 `5678:abcd::1` → `5678-abcd--1`, a trailing `-` gets a `0`. */
export function dashedIP(ip: string): string {
  if (ip.includes(".")) return ip.replace(/\./g, "-");
  const d = ip.replace(/:/g, "-");
  return d.endsWith("-") ? `${d}0` : d;
}

export function endpointHostname(ep: EndpointInfo, endpointPodNames: boolean): string {
  if (ep.hostname) return ep.hostname;
  if (endpointPodNames && ep.targetRefName && ep.targetRefName.length <= 63) return ep.targetRefName;
  return dashedIP(ep.ip);
}

/** The IP a reverse name stands for, or "" when it is not a complete reverse name. */
export function addressFromReverse(name: string): string {
  const lname = name.toLowerCase().replace(/\.$/, "");
  if (lname.endsWith(".in-addr.arpa")) {
    const labels = lname.slice(0, -".in-addr.arpa".length).split(".");
    if (labels.length !== 4 || !labels.every((l) => /^\d{1,3}$/.test(l) && Number(l) < 256)) return "";
    return labels.reverse().map(Number).join(".");
  }
  if (lname.endsWith(".ip6.arpa")) {
    const labels = lname.slice(0, -".ip6.arpa".length).split(".");
    if (labels.length !== 32 || !labels.every((l) => /^[0-9a-f]$/.test(l))) return "";
    const hex = labels.reverse().join("");
    const groups = hex.match(/.{4}/g)!.join(":");
    return canonicalIP(groups);
  }
  return "";
}

interface ParsedName {
  podOrSvc: "" | "svc" | "pod";
  namespace: string;
  service: string;
  endpoint: string;
  port: string;
  protocol: string;
}

class Resolver {
  constructor(
    private readonly ctx: AnswerContext,
    private readonly opts: KubernetesOptions,
    /** The zone as the query spelled it. */
    private readonly zone: string,
    private readonly zoneL: string,
  ) {}

  soa(): Answer {
    const zone = this.zone;
    const join = (label: string) => (zone === "." ? `${label}.` : `${label}.${zone}`);
    return rr(zone, "SOA", Math.min(this.opts.ttl, 300), {
      mname: join("ns.dns"),
      rname: join("hostmaster"),
      serial: this.ctx.index.serial >>> 0,
      refresh: 7200,
      retry: 1800,
      expire: 86400,
      minimum: this.opts.ttl,
    });
  }

  private exposed(ns: string): boolean {
    if (this.opts.namespaces.length > 0 && !this.opts.namespaces.includes(ns)) return false;
    return this.ctx.index.namespaces.has(ns);
  }

  private parse(lname: string): ParsedName | undefined {
    const base =
      lname === this.zoneL
        ? ""
        : this.zoneL === "."
          ? lname.slice(0, -1)
          : lname.slice(0, -(this.zoneL.length + 1));
    const p: ParsedName = { podOrSvc: "", namespace: "", service: "", endpoint: "", port: "", protocol: "" };
    if (base === "") return p;
    const segs = base.split(".");
    let last = segs.length - 1;
    const kind = segs[last]!;
    if (kind !== "svc" && kind !== "pod") return undefined;
    p.podOrSvc = kind;
    if (--last < 0) return p;
    p.namespace = segs[last]!;
    if (--last < 0) return p;
    p.service = segs[last]!;
    if (--last < 0) return p;
    if (last === 0) p.endpoint = segs[0]!;
    else if (last === 1) {
      p.protocol = strip(segs[1]!);
      p.port = strip(segs[0]!);
    } else return undefined;
    return p;
  }

  /** CoreDNS's Records(): the items a name stands for, before picking the record type. */
  records(lname: string): Found {
    const p = this.parse(lname);
    if (!p) return nameError;
    if (p.podOrSvc === "") return found([]);
    if (p.podOrSvc === "pod") return this.pods(p);
    return this.findServices(p);
  }

  private pods(p: ParsedName): Found {
    if (p.namespace === "") return found([]);
    if (this.opts.pods === "disabled") return nameError;
    if (!this.exposed(p.namespace)) return nameError;
    if (p.service === "") return found([]);
    if (p.endpoint !== "" || p.port !== "") return nameError;
    const label = p.service;
    const ip =
      label.split("-").length - 1 === 3 && !label.includes("--")
        ? label.replace(/-/g, ".")
        : label.replace(/-/g, ":");
    if (ipFamily(ip) === "CNAME" || !validIP(ip)) return nameError;
    const key = `${label}.${p.namespace}.pod`;
    if (this.opts.pods === "insecure")
      return found([{ host: canonicalIP(ip), port: -1, key, ttl: this.opts.ttl }]);
    const pods = this.ctx.index.podsByIP.get(canonicalIP(ip)) ?? [];
    const items = pods
      .filter((pod) => pod.namespace === p.namespace)
      .map(() => ({ host: canonicalIP(ip), port: -1, key, ttl: this.opts.ttl }));
    return items.length > 0 ? found(items.slice(0, 1)) : nameError;
  }

  private findServices(p: ParsedName): Found {
    if (p.namespace === "") return found([]);
    if (!this.exposed(p.namespace)) return nameError;
    if (p.service === "") return found([]);
    const svc = this.ctx.index.services.get(`${p.namespace}/${p.service}`);
    if (!svc) return nameError;
    const items: Item[] = [];
    const ttl = this.opts.ttl;
    const base = `${svc.name}.${svc.namespace}.svc`;
    const endpoints = this.opts.noEndpoints
      ? []
      : (this.ctx.index.endpoints.get(`${svc.namespace}/${svc.name}`) ?? []);
    if (this.opts.ignoreEmptyService && svc.kind === "ClusterIP" && endpoints.length === 0) return nameError;
    if (svc.kind === "ExternalName") {
      if (p.endpoint !== "") return nameError;
      if (ipFamily(svc.externalName) !== "CNAME" || svc.externalName === "") return nameError;
      return found([{ host: svc.externalName, port: -1, key: base, ttl }]);
    }
    if (svc.kind === "Headless" || p.endpoint !== "") {
      for (const ep of endpoints) {
        const hostname = endpointHostname(ep, this.opts.endpointPodNames);
        if (p.endpoint !== "" && p.endpoint !== hostname) continue;
        for (const port of ep.ports) {
          if (!matchPort(p, port)) continue;
          items.push({ host: ep.ip, port: port.port, key: `${hostname}.${base}`, ttl });
        }
      }
      return items.length > 0 ? found(items) : nameError;
    }
    for (const port of svc.ports) {
      if (!matchPort(p, port)) continue;
      for (const ip of svc.clusterIPs) items.push({ host: ip, port: port.port, key: base, ttl });
    }
    return items.length > 0 || (svc.ports.some((port) => matchPort(p, port)) && svc.clusterIPs.length === 0)
      ? found(items)
      : nameError;
  }

  /** CoreDNS's Services(): Records() plus the names only the plugin itself has. */
  services(qname: string, type: string): Found {
    const lname = qname.toLowerCase();
    if (this.isDefaultNS(lname)) {
      const want = type === "AAAA" ? "AAAA" : "A";
      return found(
        this.nsAddrs()
          .filter((n) => ipFamily(n.ip) === want)
          .map((n) => ({ host: n.ip, port: -1, key: n.name, ttl: this.opts.ttl })),
      );
    }
    const f = this.records(lname);
    if (type !== "SRV") return f;
    // ExternalName services have no SRV records.
    return { items: f.items.filter((i) => !isName(i.host)), nameError: f.nameError };
  }

  txt(qname: string): Found {
    const lname = qname.toLowerCase();
    if (lname === `dns-version.${this.zoneL}`) {
      return found([{ host: "", port: -1, key: "dns-version", text: DNS_SCHEMA_VERSION, ttl: 28800 }]);
    }
    const f = this.records(lname);
    if (f.items.length > 0) return found([]);
    return f.nameError ? nameError : found([]);
  }

  private isDefaultNS(lname: string): boolean {
    return lname === `ns.dns.${this.zoneL}`;
  }

  /** Names and addresses of this DNS server: the Service whose endpoints carry our IPs. */
  nsAddrs(): { name: string; ip: string }[] {
    const out: { name: string; ip: string }[] = [];
    const zone = this.zone;
    for (const local of this.ctx.localIPs) {
      const eps = this.ctx.index.endpointsByIP.get(canonicalIP(local)) ?? [];
      for (const e of eps) {
        const svc = this.ctx.index.services.get(`${e.namespace}/${e.service}`);
        if (!svc) continue;
        const name = `${svc.name}.${svc.namespace}.svc.${zone}`;
        if (svc.kind === "Headless") out.push({ name, ip: local });
        else for (const ip of svc.clusterIPs) out.push({ name, ip });
      }
    }
    if (out.length === 0) {
      const name = zone === "." ? "ns.dns." : `ns.dns.${zone}`;
      for (const ip of this.ctx.localIPs) out.push({ name, ip });
    }
    const seen = new Set<string>();
    return out.filter((n) => (seen.has(`${n.name}|${n.ip}`) ? false : (seen.add(`${n.name}|${n.ip}`), true)));
  }

  /** A/AAAA records for a name, following CNAMEs inside the zone (at most 8 deep). */
  address(
    qname: string,
    type: "A" | "AAAA",
    previous: Answer[],
  ): { records: Answer[]; nameError: boolean; chase?: KubeAnswer["chase"] } {
    const f = this.services(qname, type);
    if (f.nameError) return { records: [], nameError: true };
    const records: Answer[] = [];
    let chase: KubeAnswer["chase"];
    const dup = new Set<string>();
    for (const item of f.items) {
      const what = ipFamily(item.host);
      if (what === "CNAME") {
        const target = fqdn(item.host);
        if (target.toLowerCase() === qname.toLowerCase()) continue;
        if (previous.length > 7) continue;
        const cname = rr(qname, "CNAME", item.ttl, target);
        if (
          previous.some(
            (p) => p.type === "CNAME" && String(rrOf(p).data).toLowerCase() === target.toLowerCase(),
          )
        )
          continue;
        if (inZone(target.toLowerCase(), this.zoneL)) {
          const next = this.address(target, type, [...previous, cname]);
          if (!next.nameError && next.records.length > 0) records.push(cname, ...next.records);
          if (next.chase) chase = next.chase;
          continue;
        }
        records.push(cname);
        chase = { target, type };
        continue;
      }
      if (what !== type) continue;
      if (dup.has(item.host)) continue;
      dup.add(item.host);
      records.push(rr(qname, type, item.ttl, item.host));
    }
    return { records, nameError: false, chase };
  }

  srv(qname: string): { records: Answer[]; extra: Answer[]; nameError: boolean } {
    const f = this.services(qname, "SRV");
    if (f.nameError) return { records: [], extra: [], nameError: true };
    const records: Answer[] = [];
    const extra: Answer[] = [];
    const dup = new Set<string>();
    // Priority 0 for all; the weight splits 100 over the candidates, at least 1.
    const weight = Math.max(1, Math.floor(100 / Math.max(1, f.items.length)));
    for (const item of f.items) {
      if (item.port === -1) continue;
      const target = `${item.key}.${this.zone}`;
      const srvKey = `${target.toLowerCase()}|${item.port}`;
      if (!dup.has(srvKey)) {
        dup.add(srvKey);
        records.push(rr(qname, "SRV", item.ttl, { priority: 0, weight, port: item.port, target }));
      }
      const addrKey = `${target.toLowerCase()}|${item.host}`;
      if (!dup.has(addrKey)) {
        dup.add(addrKey);
        extra.push(rr(target, ipFamily(item.host), item.ttl, item.host));
      }
    }
    return { records, extra, nameError: false };
  }

  reverse(qname: string): Found {
    const lname = qname.toLowerCase();
    const ip = addressFromReverse(lname);
    if (ip === "") return this.records(lname);
    const primary =
      this.opts.zones.find((z) => !z.endsWith("in-addr.arpa.") && !z.endsWith("ip6.arpa.")) ??
      this.opts.zones[0]!;
    const ttl = this.opts.ttl;
    const onlyExposed = (ns: string) => this.opts.namespaces.length === 0 || this.exposed(ns);
    for (const svc of this.ctx.index.servicesByIP.get(ip) ?? []) {
      if (!onlyExposed(svc.namespace)) continue;
      return found([{ host: `${svc.name}.${svc.namespace}.svc.${primary}`, port: -1, key: "", ttl }]);
    }
    const items: Item[] = [];
    const seen = new Set<string>();
    for (const e of this.ctx.index.endpointsByIP.get(ip) ?? []) {
      if (!onlyExposed(e.namespace)) continue;
      const host = `${endpointHostname(e.endpoint, this.opts.endpointPodNames)}.${e.service}.${e.namespace}.svc.${primary}`;
      if (seen.has(host)) continue;
      seen.add(host);
      items.push({ host, port: -1, key: "", ttl });
    }
    return items.length > 0 ? found(items) : nameError;
  }
}

function strip(label: string): string {
  return label.startsWith("_") ? label.slice(1) : label;
}

function matchPort(p: ParsedName, port: PortInfo): boolean {
  if (p.port !== "" && p.port !== port.name) return false;
  if (p.protocol !== "" && p.protocol !== port.protocol) return false;
  return true;
}

function validIP(ip: string): boolean {
  if (ip.includes("."))
    return /^\d{1,3}(\.\d{1,3}){3}$/.test(ip) && ip.split(".").every((o) => Number(o) < 256);
  try {
    new URL(`http://[${ip}]/`);
    return true;
  } catch {
    return false;
  }
}

export type { PortInfo };
