// ClusterIP and NodePort allocation for Services, run in the apiserver's write path as
// kube-apiserver's service REST storage does it (pkg/registry/core/service/storage/alloc.go):
// allocate on create, allocate/release on type changes, release on delete, and a repair pass that
// rebuilds the bitmaps from the stored Services.
import type { FieldError, KubeObject, Service, ServicePort } from "@klab/api";
import type { AdmissionHooks, HookContext } from "../registry/hooks.ts";
import { errors } from "../registry/errors.ts";
import { type PortRange, NodePortAllocator } from "./node-ports.ts";
import { ServiceIPAllocator } from "./service-ips.ts";
import { parseIPv4 } from "./ipv4.ts";

export interface ServiceAllocationConfig {
  serviceCIDR: string;
  nodePortRange: PortRange;
  random?: () => number;
}

type Undo = () => void;

function invalid(field: string, badValue: unknown, detail: string): FieldError {
  return { type: "FieldValueInvalid", field, badValue, detail } as FieldError;
}

function serviceType(s: Service): string {
  return s.spec?.type ?? "ClusterIP";
}

function needsClusterIP(s: Service): boolean {
  return serviceType(s) !== "ExternalName";
}

function isHeadless(s: Service): boolean {
  return (s.spec?.clusterIPs?.[0] ?? s.spec?.clusterIP) === "None";
}

function needsNodePorts(s: Service): boolean {
  const t = serviceType(s);
  return t === "NodePort" || t === "LoadBalancer";
}

function shouldAllocateNodePorts(s: Service): boolean {
  const t = serviceType(s);
  if (t === "NodePort") return true;
  if (t === "LoadBalancer") return s.spec?.allocateLoadBalancerNodePorts ?? true;
  return false;
}

/** kube's apiservice.NeedsHealthCheck */
export function needsHealthCheck(s: Service): boolean {
  return serviceType(s) === "LoadBalancer" && s.spec?.externalTrafficPolicy === "Local";
}

/** The ClusterIPs a stored Service holds (none for headless and ExternalName). */
export function serviceClusterIPs(s: Service): string[] {
  if (!needsClusterIP(s) || isHeadless(s)) return [];
  const ips = s.spec?.clusterIPs?.length ? s.spec.clusterIPs : s.spec?.clusterIP ? [s.spec.clusterIP] : [];
  return ips.filter((ip) => ip && ip !== "None");
}

/** The node ports a stored Service holds, healthCheckNodePort included. */
export function serviceNodePorts(s: Service): number[] {
  const out = new Set<number>();
  for (const p of s.spec?.ports ?? []) if (p.nodePort) out.add(p.nodePort);
  if (s.spec?.healthCheckNodePort) out.add(s.spec.healthCheckNodePort);
  return [...out];
}

export class ServiceAllocator {
  readonly ips: ServiceIPAllocator;
  readonly ports: NodePortAllocator;

  constructor(config: ServiceAllocationConfig) {
    this.ips = new ServiceIPAllocator(config.serviceCIDR, config.random);
    this.ports = new NodePortAllocator(config.nodePortRange, config.random);
  }

  /** Kube's conversion keeps clusterIP and clusterIPs[0] in step; so do we, before anything else. */
  private syncClusterIPFields(s: Service): void {
    const spec = s.spec!;
    if (!spec.clusterIPs?.length && spec.clusterIP) spec.clusterIPs = [spec.clusterIP];
    if (!spec.clusterIP && spec.clusterIPs?.length) spec.clusterIP = spec.clusterIPs[0];
  }

  /** kube's initIPFamilyFields, single-stack IPv4 cluster. */
  private initIPFamilyFields(s: Service, old?: Service): FieldError[] {
    const spec = s.spec!;
    if (serviceType(s) === "ExternalName") return [];
    if (!spec.ipFamilyPolicy) {
      if (old?.spec?.ipFamilyPolicy) spec.ipFamilyPolicy = old.spec.ipFamilyPolicy;
      else if (isHeadless(s) && !Object.keys(spec.selector ?? {}).length)
        spec.ipFamilyPolicy = "RequireDualStack";
      else spec.ipFamilyPolicy = "SingleStack";
    }
    const errs: FieldError[] = [];
    (spec.ipFamilies ?? []).forEach((f, i) => {
      if (f !== "IPv4" && !(isHeadless(s) && f === "IPv6")) {
        errs.push(invalid(`spec.ipFamilies[${i}]`, f, "not configured on this cluster"));
      }
    });
    if (errs.length) return errs;
    if (isHeadless(s) && !Object.keys(spec.selector ?? {}).length) {
      // Headless without selector is the one case a single-stack cluster lets carry two families.
      if (!spec.ipFamilies?.length) spec.ipFamilies = ["IPv4"];
      if (spec.ipFamilies.length < 2 && spec.ipFamilyPolicy !== "SingleStack") {
        spec.ipFamilies = [...spec.ipFamilies, spec.ipFamilies[0] === "IPv4" ? "IPv6" : "IPv4"];
      }
      return [];
    }
    if (spec.ipFamilyPolicy === "RequireDualStack") {
      return [
        invalid(
          "spec.ipFamilyPolicy",
          spec.ipFamilyPolicy,
          "this cluster is not configured for dual-stack services",
        ),
      ];
    }
    if (!spec.ipFamilies?.length) spec.ipFamilies = ["IPv4"];
    return [];
  }

  private allocClusterIPs(s: Service, undo: Undo[]): FieldError[] {
    if (!needsClusterIP(s) || isHeadless(s)) return [];
    const spec = s.spec!;
    const requested = spec.clusterIPs?.[0] ?? "";
    if (requested === "") {
      const ip = this.ips.allocateNext();
      if (!ip) throw errors.internal("failed to allocate a serviceIP: range is full");
      undo.push(() => this.ips.release(ip));
      spec.clusterIP = ip;
      spec.clusterIPs = [ip];
      return [];
    }
    if (parseIPv4(requested) === undefined) {
      return [
        invalid(
          "spec.clusterIPs[0]",
          requested,
          "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
        ),
      ];
    }
    const r = this.ips.allocate(requested);
    if (!r.ok) {
      return [invalid("spec.clusterIPs", spec.clusterIPs, `failed to allocate IP ${requested}: ${r.error}`)];
    }
    undo.push(() => this.ips.release(requested));
    spec.clusterIP = requested;
    return [];
  }

  private allocPort(port: number, undo: Undo[]): string | undefined {
    const r = this.ports.allocate(port);
    if (!r.ok) return r.error;
    undo.push(() => this.ports.release(port));
    return undefined;
  }

  private nextPort(undo: Undo[]): number {
    const p = this.ports.allocateNext();
    if (p === undefined) throw errors.internal("failed to allocate a nodePort: range is full");
    undo.push(() => this.ports.release(p));
    return p;
  }

  /** Node ports for a Service's ports; `held` are ports the stored object already owns. */
  private allocNodePorts(s: Service, held: Set<number>, undo: Undo[]): FieldError[] {
    if (!needsNodePorts(s)) return [];
    const byPortNumber = new Map<number, number>();
    const taken = new Set<number>();
    const ports: ServicePort[] = s.spec!.ports ?? [];
    for (let i = 0; i < ports.length; i++) {
      const sp = ports[i]!;
      if (!sp.nodePort && !shouldAllocateNodePorts(s)) continue;
      if (sp.nodePort) {
        // TCP and UDP on the same port number may share one node port.
        if (held.has(sp.nodePort) || taken.has(sp.nodePort)) continue;
        const err = this.allocPort(sp.nodePort, undo);
        if (err) return [invalid(`spec.ports[${i}].nodePort`, sp.nodePort, err)];
        taken.add(sp.nodePort);
        byPortNumber.set(sp.port, sp.nodePort);
        continue;
      }
      const shared = byPortNumber.get(sp.port) ?? this.requestedLater(sp.port, ports, i);
      if (shared !== undefined) {
        if (!held.has(shared) && !taken.has(shared)) {
          const err = this.allocPort(shared, undo);
          if (err) return [invalid(`spec.ports[${i}].nodePort`, shared, err)];
          taken.add(shared);
        }
        sp.nodePort = shared;
      } else {
        sp.nodePort = this.nextPort(undo);
        taken.add(sp.nodePort);
      }
      byPortNumber.set(sp.port, sp.nodePort);
    }
    return [];
  }

  private requestedLater(port: number, ports: ServicePort[], from: number): number | undefined {
    for (let j = from + 1; j < ports.length; j++) {
      if (ports[j]!.port === port && ports[j]!.nodePort) return ports[j]!.nodePort;
    }
    return undefined;
  }

  private allocHealthCheckNodePort(s: Service, held: Set<number>, undo: Undo[]): FieldError[] {
    if (!needsHealthCheck(s)) return [];
    const spec = s.spec!;
    if (spec.healthCheckNodePort) {
      if (held.has(spec.healthCheckNodePort)) return [];
      const err = this.allocPort(spec.healthCheckNodePort, undo);
      if (err) {
        throw errors.internal(
          `failed to allocate requested HealthCheck NodePort ${spec.healthCheckNodePort}: ${err}`,
        );
      }
      return [];
    }
    spec.healthCheckNodePort = this.nextPort(undo);
    return [];
  }

  /** Runs fn as one transaction: on errors (returned or thrown) or a dry run, every allocation is undone. */
  private transaction(dryRun: boolean, fn: (undo: Undo[]) => FieldError[]): FieldError[] | void {
    const undo: Undo[] = [];
    let errs: FieldError[];
    try {
      errs = fn(undo);
    } catch (e) {
      for (const u of undo.reverse()) u();
      throw e;
    }
    if (errs.length || dryRun) for (const u of undo.reverse()) u();
    return errs.length ? errs : undefined;
  }

  admitCreate(s: Service, ctx: HookContext): FieldError[] | void {
    if (!s.spec) s.spec = {};
    if (serviceType(s) === "ExternalName") return;
    this.syncClusterIPFields(s);
    const fam = this.initIPFamilyFields(s);
    if (fam.length) return fam;
    return this.transaction(ctx.dryRun, (undo) => {
      const e1 = this.allocClusterIPs(s, undo);
      if (e1.length) return e1;
      const e2 = this.allocNodePorts(s, new Set(), undo);
      if (e2.length) return e2;
      return this.allocHealthCheckNodePort(s, new Set(), undo);
    });
  }

  admitUpdate(s: Service, old: Service, ctx: HookContext): FieldError[] | void {
    if (!s.spec) s.spec = {};
    const spec = s.spec;
    const oldSpec = old.spec ?? {};
    this.dropTypeDependentFields(s, old);
    this.patchAllocatedValues(s, old);
    this.syncClusterIPFields(s);
    const fam = this.initIPFamilyFields(s, old);
    if (fam.length) return fam;

    const errs: FieldError[] = [];
    const oldIPs = serviceClusterIPs(old);
    if (needsClusterIP(old) && needsClusterIP(s) && !isHeadless(old) && oldIPs.length) {
      if ((spec.clusterIPs?.[0] ?? "") !== oldIPs[0]) {
        errs.push(invalid("spec.clusterIPs[0]", spec.clusterIPs ?? [], "may not change once set"));
      }
    }
    if (needsClusterIP(old) && needsClusterIP(s) && isHeadless(old) !== isHeadless(s) && oldSpec.clusterIP) {
      errs.push(invalid("spec.clusterIPs[0]", spec.clusterIPs ?? [], "may not change once set"));
    }
    if (errs.length) return errs;

    const oldPorts = new Set(serviceNodePorts(old));
    const result = this.transaction(ctx.dryRun, (undo) => {
      if (!needsClusterIP(old) && needsClusterIP(s)) {
        const e = this.allocClusterIPs(s, undo);
        if (e.length) return e;
      }
      const e2 = this.allocNodePorts(s, oldPorts, undo);
      if (e2.length) return e2;
      return this.allocHealthCheckNodePort(s, oldPorts, undo);
    });
    if (result || ctx.dryRun) return result;

    // Release what the old object held and the new one no longer does.
    const keepIPs = new Set(serviceClusterIPs(s));
    for (const ip of oldIPs) if (!keepIPs.has(ip)) this.ips.release(ip);
    const keepPorts = new Set(serviceNodePorts(s));
    for (const p of oldPorts) if (!keepPorts.has(p)) this.ports.release(p);
  }

  /**
   * kube's patchAllocatedValues: an update that omits allocated values (kubectl replace of a file
   * without clusterIP) keeps those already allocated.
   */
  private patchAllocatedValues(s: Service, old: Service): void {
    const spec = s.spec!;
    const oldSpec = old.spec ?? {};
    if (needsClusterIP(old) && needsClusterIP(s)) {
      if (!spec.clusterIP && !spec.clusterIPs?.length && oldSpec.clusterIP) {
        spec.clusterIP = oldSpec.clusterIP;
        spec.clusterIPs = oldSpec.clusterIPs ? [...oldSpec.clusterIPs] : [oldSpec.clusterIP];
      }
    }
    if (needsNodePorts(old) && needsNodePorts(s)) {
      const oldByPort = new Map<string, number>();
      for (const p of oldSpec.ports ?? []) {
        if (p.nodePort) oldByPort.set(`${p.port}/${p.protocol ?? "TCP"}`, p.nodePort);
      }
      for (const p of spec.ports ?? []) {
        if (!p.nodePort) {
          const np = oldByPort.get(`${p.port}/${p.protocol ?? "TCP"}`);
          if (np) p.nodePort = np;
        }
      }
    }
    if (
      needsHealthCheck(old) &&
      needsHealthCheck(s) &&
      !spec.healthCheckNodePort &&
      oldSpec.healthCheckNodePort
    ) {
      spec.healthCheckNodePort = oldSpec.healthCheckNodePort;
    }
  }

  /** kube's dropTypeDependentFields: a type change clears values that were only there for the old type. */
  private dropTypeDependentFields(s: Service, old: Service): void {
    const spec = s.spec!;
    const oldSpec = old.spec ?? {};
    if (needsClusterIP(old) && !needsClusterIP(s)) {
      if (sameStrings(spec.clusterIPs, oldSpec.clusterIPs) || spec.clusterIP === oldSpec.clusterIP) {
        delete spec.clusterIP;
        delete spec.clusterIPs;
      }
      if (sameStrings(spec.ipFamilies, oldSpec.ipFamilies)) delete spec.ipFamilies;
      if (spec.ipFamilyPolicy === oldSpec.ipFamilyPolicy) delete spec.ipFamilyPolicy;
    }
    if (needsNodePorts(old) && !needsNodePorts(s)) {
      const oldPorts = new Set((oldSpec.ports ?? []).map((p) => p.nodePort).filter(Boolean));
      for (const p of spec.ports ?? []) if (p.nodePort && oldPorts.has(p.nodePort)) delete p.nodePort;
    }
    if (
      needsHealthCheck(old) &&
      !needsHealthCheck(s) &&
      spec.healthCheckNodePort === oldSpec.healthCheckNodePort
    ) {
      delete spec.healthCheckNodePort;
    }
  }

  release(s: Service): void {
    for (const ip of serviceClusterIPs(s)) this.ips.release(ip);
    for (const p of serviceNodePorts(s)) this.ports.release(p);
  }

  /** Marks everything a stored Service holds as taken; returns what was already taken by someone. */
  claim(s: Service): void {
    for (const ip of serviceClusterIPs(s)) this.ips.allocate(ip);
    for (const p of serviceNodePorts(s)) this.ports.allocate(p);
  }

  /**
   * kube's repair controller: every value a stored Service holds is marked taken (healing a lost
   * allocation at once), and a value no stored Service holds is released only after it has been
   * seen leaked on `leakChecks` consecutive passes, since the list may lag a create in flight.
   */
  repair(services: Service[], leakChecks = 3): RepairResult {
    const result: RepairResult = { claimed: 0, released: 0, conflicts: [], outOfRange: [] };
    const ipOwner = new Map<string, string>();
    const portOwner = new Map<number, string>();
    for (const s of services) {
      const key = `${s.metadata.namespace ?? ""}/${s.metadata.name ?? ""}`;
      for (const ip of serviceClusterIPs(s)) {
        const other = ipOwner.get(ip);
        if (other) result.conflicts.push(`ClusterIP ${ip} is held by both ${other} and ${key}`);
        ipOwner.set(ip, key);
        if (this.ips.allocate(ip).ok) result.claimed++;
        else if (!this.ips.has(ip))
          result.outOfRange.push(`${key}: ClusterIP ${ip} is not in ${this.ips.cidr.text}`);
      }
      for (const p of serviceNodePorts(s)) {
        const other = portOwner.get(p);
        if (other && other !== key)
          result.conflicts.push(`NodePort ${p} is held by both ${other} and ${key}`);
        portOwner.set(p, key);
        if (this.ports.allocate(p).ok) result.claimed++;
        else if (!this.ports.has(p))
          result.outOfRange.push(`${key}: NodePort ${p} is not in the node port range`);
      }
    }
    const sweep = <T>(
      allocated: Iterable<T>,
      owned: Map<T, string>,
      leaks: Map<T, number>,
      free: (v: T) => void,
    ) => {
      const seen = new Set<T>();
      for (const v of allocated) {
        if (owned.has(v)) continue;
        seen.add(v);
        const n = (leaks.get(v) ?? 0) + 1;
        if (n >= leakChecks) {
          free(v);
          leaks.delete(v);
          result.released++;
        } else leaks.set(v, n);
      }
      for (const v of [...leaks.keys()]) if (!seen.has(v)) leaks.delete(v);
    };
    sweep(this.ips.allocated(), ipOwner, this.ipLeaks, (ip) => this.ips.release(ip));
    sweep(this.ports.allocated(), portOwner, this.portLeaks, (p) => this.ports.release(p));
    return result;
  }

  private readonly ipLeaks = new Map<string, number>();
  private readonly portLeaks = new Map<number, number>();

  hooks(): AdmissionHooks {
    return {
      beforeCreate: (obj: KubeObject, ctx: HookContext) => this.admitCreate(obj as Service, ctx),
      beforeUpdate: (obj: KubeObject, old: KubeObject, ctx: HookContext) =>
        this.admitUpdate(obj as Service, old as Service, ctx),
      afterDelete: (old: KubeObject) => this.release(old as Service),
    };
  }
}

export interface RepairResult {
  /** values a stored Service held that the bitmaps had lost */
  claimed: number;
  /** leaked values given back */
  released: number;
  conflicts: string[];
  outOfRange: string[];
}

function sameStrings(a: string[] | undefined, b: string[] | undefined): boolean {
  const x = a ?? [];
  const y = b ?? [];
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

export function createServiceAllocationHooks(config: ServiceAllocationConfig): {
  allocator: ServiceAllocator;
  hooks: AdmissionHooks;
} {
  const allocator = new ServiceAllocator(config);
  return { allocator, hooks: allocator.hooks() };
}
