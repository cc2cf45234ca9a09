import { formatIPv4, parseIPv4 } from "../ip.ts";
import {
  createScheduler,
  isSchedulerName,
  type Dest,
  type Scheduler,
  type SchedulerName,
} from "./schedulers.ts";

// The IPVS table of a node: virtual servers looked up by (protocol, address, port) in a hash
// map, so the cost of a decision does not depend on how many Services exist; real servers with
// the kernel's connection counters; persistence templates; and kube-proxy's graceful removal
// (a real server that disappears is kept at weight 0 until its last connection ends).

export type IpvsProtocol = "TCP" | "UDP" | "SCTP";

/** What kube-proxy loads for one Service IP:port (the loader socket's wire format). */
export interface VirtualServer {
  protocol: IpvsProtocol;
  address: string;
  port: number;
  scheduler: string;
  /** seconds; set for sessionAffinity ClientIP (ipvsadm -p) */
  persistentTimeout?: number;
  /** ipvsadm -b flags: sh-port, sh-fallback, mh-port, mh-fallback */
  flags?: string[];
  /** "ns/svc:port", for logs and traces */
  service?: string;
  /** which Service address this is, which decides masquerade as kube-proxy's ipsets do */
  kind?: "ClusterIP" | "NodePort" | "ExternalIP" | "LoadBalancer";
  /** externalTrafficPolicy Local: the real servers are this node's endpoints and the client IP is kept */
  local?: boolean;
  realServers: RealServer[];
}

export interface RealServer {
  address: string;
  port: number;
  weight: number;
}

export class IpvsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "IpvsError";
  }
}

const PROTO_INDEX: Record<IpvsProtocol, number> = { TCP: 0, UDP: 1, SCTP: 2 };
export const PROTO_NUMBER: Record<IpvsProtocol, number> = { TCP: 6, UDP: 17, SCTP: 132 };

export function serviceKey(proto: number, addr: number, port: number): number {
  const p = proto === 6 ? 0 : proto === 17 ? 1 : proto === 132 ? 2 : 3;
  return (p * 0x100000000 + (addr >>> 0)) * 0x10000 + port;
}

export class IpvsDest implements Dest {
  activeConns = 0;
  inactConns = 0;
  conns = 0;
  inPkts = 0;
  outPkts = 0;
  inBytes = 0;
  outBytes = 0;
  /** removed by kube-proxy, kept at weight 0 while connections drain */
  draining = false;
  constructor(
    readonly addr: number,
    readonly port: number,
    public weight: number,
  ) {}
  get address(): string {
    return formatIPv4(this.addr);
  }
}

interface Template {
  dest: IpvsDest;
  expires: number;
  /** connections it controls; the template outlives its timeout while any are open */
  controlled: number;
}

export class IpvsService {
  dests: IpvsDest[] = [];
  conns = 0;
  inPkts = 0;
  outPkts = 0;
  inBytes = 0;
  outBytes = 0;
  scheduler: Scheduler;
  readonly templates = new Map<number, Template>();

  constructor(
    readonly protocol: IpvsProtocol,
    readonly addr: number,
    readonly port: number,
    public schedulerName: SchedulerName,
    public flags: string[],
    public persistentTimeout: number | undefined,
    public spec: VirtualServer,
  ) {
    this.scheduler = createScheduler(schedulerName, flags);
  }

  get address(): string {
    return formatIPv4(this.addr);
  }
}

export interface IpvsConnection {
  service: IpvsService;
  dest: IpvsDest;
  active: boolean;
  template?: Template;
}

export interface ScheduleResult {
  service: IpvsService;
  dest?: IpvsDest;
  /** true when the pick came from a persistence template */
  persistent: boolean;
}

function validate(vs: VirtualServer, i: number): { addr: number; scheduler: SchedulerName } {
  const where = `virtual server ${i} (${vs?.protocol} ${vs?.address}:${vs?.port})`;
  if (!vs || typeof vs !== "object") throw new IpvsError(`virtual server ${i} is not an object`);
  if (!(vs.protocol in PROTO_INDEX)) throw new IpvsError(`${where}: protocol must be TCP, UDP or SCTP`);
  const addr = parseIPv4(String(vs.address));
  if (addr === undefined) throw new IpvsError(`${where}: invalid address`);
  if (!Number.isInteger(vs.port) || vs.port < 0 || vs.port > 65535)
    throw new IpvsError(`${where}: invalid port`);
  const scheduler = vs.scheduler === "" || vs.scheduler === undefined ? "rr" : vs.scheduler;
  if (!isSchedulerName(scheduler)) throw new IpvsError(`${where}: unknown scheduler "${vs.scheduler}"`);
  if (
    vs.persistentTimeout !== undefined &&
    (!Number.isInteger(vs.persistentTimeout) || vs.persistentTimeout < 1)
  ) {
    throw new IpvsError(`${where}: persistent timeout must be a positive number of seconds`);
  }
  if (!Array.isArray(vs.realServers)) throw new IpvsError(`${where}: realServers must be a list`);
  for (const rs of vs.realServers) {
    if (parseIPv4(String(rs?.address)) === undefined)
      throw new IpvsError(`${where}: invalid real server address "${rs?.address}"`);
    if (!Number.isInteger(rs.port) || rs.port < 1 || rs.port > 65535)
      throw new IpvsError(`${where}: invalid real server port`);
    if (!Number.isInteger(rs.weight) || rs.weight < 0 || rs.weight > 2147483647)
      throw new IpvsError(`${where}: invalid weight`);
  }
  return { addr, scheduler };
}

export class IpvsTable {
  private readonly services = new Map<number, IpvsService>();
  private readonly connections = new Map<string, IpvsConnection>();
  generation = 0;

  /**
   * Makes the table match `desired` in one step (validated first; on error nothing changes).
   * Real servers that are gone are set to weight 0 and removed when their connections end;
   * UDP ones go at once, as kube-proxy does, since UDP has no end to wait for.
   */
  apply(desired: VirtualServer[]): void {
    if (!Array.isArray(desired)) throw new IpvsError("ipvs: the virtual server list must be an array");
    const parsed = desired.map((vs, i) => ({ vs, ...validate(vs, i) }));
    const seen = new Set<number>();
    for (const p of parsed) {
      const key = serviceKey(PROTO_NUMBER[p.vs.protocol], p.addr, p.vs.port);
      if (seen.has(key))
        throw new IpvsError(`duplicate virtual server ${p.vs.protocol} ${p.vs.address}:${p.vs.port}`);
      seen.add(key);
    }

    for (const p of parsed) {
      const key = serviceKey(PROTO_NUMBER[p.vs.protocol], p.addr, p.vs.port);
      let svc = this.services.get(key);
      const flags = p.vs.flags ?? [];
      if (!svc) {
        svc = new IpvsService(
          p.vs.protocol,
          p.addr,
          p.vs.port,
          p.scheduler,
          flags,
          p.vs.persistentTimeout,
          p.vs,
        );
        this.services.set(key, svc);
      } else {
        if (svc.schedulerName !== p.scheduler || svc.flags.join() !== flags.join()) {
          svc.schedulerName = p.scheduler;
          svc.flags = flags;
          svc.scheduler = createScheduler(p.scheduler, flags);
        }
        svc.persistentTimeout = p.vs.persistentTimeout;
        if (!svc.persistentTimeout) svc.templates.clear();
        svc.spec = p.vs;
      }
      const wanted = new Map<string, RealServer>();
      for (const rs of p.vs.realServers) wanted.set(`${rs.address}:${rs.port}`, rs);
      const next: IpvsDest[] = [];
      for (const d of svc.dests) {
        const w = wanted.get(`${d.address}:${d.port}`);
        if (w) {
          d.weight = w.weight;
          d.draining = false;
          wanted.delete(`${d.address}:${d.port}`);
          next.push(d);
        } else if (svc.protocol === "TCP" && d.activeConns + d.inactConns > 0) {
          d.weight = 0;
          d.draining = true;
          next.push(d);
        }
      }
      for (const rs of wanted.values())
        next.push(new IpvsDest(parseIPv4(rs.address) as number, rs.port, rs.weight));
      svc.dests = next;
      // expire_quiescent_template=1 (kube-proxy sets it): a template pointing at a weight-0 dest is dropped.
      for (const [k, t] of svc.templates) if (t.dest.weight === 0) this.dropTemplate(svc, k, t);
      svc.scheduler.update(svc.dests);
    }
    for (const [key, svc] of this.services) {
      if (seen.has(key)) continue;
      // A deleted virtual server: its connections are expired (expire_nodest_conn).
      this.services.delete(key);
      for (const [id, c] of this.connections) if (c.service === svc) this.connections.delete(id);
    }
    this.generation++;
  }

  lookup(proto: number, addr: number, port: number): IpvsService | undefined {
    return this.services.get(serviceKey(proto, addr, port));
  }

  list(): IpvsService[] {
    return [...this.services.values()];
  }

  get size(): number {
    return this.services.size;
  }

  /** ip_vs_schedule (+ persistence): picks a real server for a new connection and counts it. */
  schedule(
    svc: IpvsService,
    connId: string,
    srcAddr: number,
    srcPort: number,
    dstAddr: number,
    now: number,
  ): ScheduleResult {
    let dest: IpvsDest | undefined;
    let template: Template | undefined;
    let persistent = false;
    if (svc.persistentTimeout) {
      template = svc.templates.get(srcAddr);
      if (template && (template.expires > now || template.controlled > 0) && template.dest.weight > 0) {
        dest = template.dest;
        persistent = true;
      } else {
        if (template) this.dropTemplate(svc, srcAddr, template);
        template = undefined;
      }
    }
    if (!dest)
      dest = svc.scheduler.schedule(svc.dests, { srcAddr, srcPort, dstAddr, now }) as IpvsDest | undefined;
    if (!dest) return { service: svc, persistent: false };
    if (svc.persistentTimeout) {
      if (!template) {
        const stale = svc.templates.get(srcAddr);
        if (stale) this.dropTemplate(svc, srcAddr, stale);
        // A persistence template is itself a connection entry: ipvsadm counts it in InActConn.
        template = { dest, expires: 0, controlled: 0 };
        svc.templates.set(srcAddr, template);
        dest.inactConns++;
      }
      template.expires = now + svc.persistentTimeout * 1000;
      template.controlled++;
    }
    // New TCP connections count as active (the handshake completes in the same instant here);
    // UDP connections are always "inactive" in IPVS's accounting.
    const active = svc.protocol === "TCP";
    if (active) dest.activeConns++;
    else dest.inactConns++;
    dest.conns++;
    svc.conns++;
    this.connections.set(connId, { service: svc, dest, active, template });
    return { service: svc, dest, persistent };
  }

  /** Counts a packet of a scheduled connection in ipvsadm --stats. */
  account(connId: string, direction: "in" | "out", bytes: number): void {
    const c = this.connections.get(connId);
    if (!c) return;
    if (direction === "in") {
      c.dest.inPkts++;
      c.dest.inBytes += bytes;
      c.service.inPkts++;
      c.service.inBytes += bytes;
    } else {
      c.dest.outPkts++;
      c.dest.outBytes += bytes;
      c.service.outPkts++;
      c.service.outBytes += bytes;
    }
  }

  /** A TCP connection left ESTABLISHED (FIN/RST): the kernel moves it to the inactive count. */
  deactivate(connId: string): void {
    const c = this.connections.get(connId);
    if (!c || !c.active) return;
    c.active = false;
    c.dest.activeConns--;
    c.dest.inactConns++;
  }

  /** The connection expired: release its counts, and finish removing a drained real server. */
  close(connId: string): void {
    const c = this.connections.get(connId);
    if (!c) return;
    this.connections.delete(connId);
    if (c.active) c.dest.activeConns--;
    else c.dest.inactConns--;
    if (c.template) c.template.controlled--;
    this.finishDrain(c.service, c.dest);
  }

  /** Expires persistence templates whose timeout passed with no connection left under them. */
  expireTemplates(now: number): void {
    for (const svc of this.services.values()) {
      for (const [k, t] of svc.templates)
        if (t.expires <= now && t.controlled <= 0) this.dropTemplate(svc, k, t);
    }
  }

  private dropTemplate(svc: IpvsService, key: number, t: Template): void {
    if (svc.templates.get(key) !== t) return;
    svc.templates.delete(key);
    t.dest.inactConns--;
    this.finishDrain(svc, t.dest);
  }

  private finishDrain(svc: IpvsService, d: IpvsDest): void {
    if (!d.draining || d.activeConns + d.inactConns > 0) return;
    svc.dests = svc.dests.filter((x) => x !== d);
    svc.scheduler.update(svc.dests);
  }

  connectionCount(): number {
    return this.connections.size;
  }
}

export { PROTO_INDEX };
