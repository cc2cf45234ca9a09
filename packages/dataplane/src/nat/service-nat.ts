import type { ParsedPacket } from "../packet.ts";
import type { ConnectionInfo, NatDecision, ServiceNatStage, StageContext } from "../stages.ts";
import { IptablesNatStage } from "./iptables-stage.ts";
import { RestoreError } from "./iptables/parse.ts";
import { IptablesRuleset } from "./iptables/ruleset.ts";
import type { TableName } from "./iptables/types.ts";
import { IpvsNatStage } from "./ipvs-stage.ts";
import { IpvsError, type VirtualServer } from "./ipvs/table.ts";

// The node's Service NAT as kube-proxy programs it: whichever mode was loaded last decides new
// connections. This is the object the dataplane plugs in as its ServiceNatStage and the loader
// socket writes to.

export type ProxyMode = "iptables" | "ipvs" | "userspace";
export const PROXY_MODES: readonly ProxyMode[] = ["iptables", "ipvs", "userspace"];

/** A jump out of a built-in chain that must exist (kube-proxy's EnsureRule, `iptables -C || -I`). */
export interface EnsureRule {
  table: TableName;
  chain: string;
  rule: string;
  position?: "prepend" | "append";
}

/** One atomic load: everything in it takes effect together, or nothing does. */
export interface NatLoad {
  mode: ProxyMode;
  /** iptables-restore input, applied as `iptables-restore --noflush` */
  iptablesRestore?: string;
  /** jumps ensured before the restore (only sent on kube-proxy's full syncs) */
  ensureRules?: EnsureRule[];
  /** ipvs mode: the complete virtual server table */
  ipvs?: VirtualServer[];
  /** ipvs mode: the addresses held on kube-ipvs0 */
  ipvsAddresses?: string[];
  clusterCIDR?: string;
  masqueradeAll?: boolean;
  /** UDP conntrack entries kube-proxy wants gone once this load is in (see onConntrackFlush) */
  conntrackFlush?: ConntrackFlush;
}

/** Conntrack entries to delete after a load, as kube-proxy's UDP cleanup asks. */
export interface ConntrackFlush {
  /** UDP entries whose DNAT target (reply source) is one of these "ip:port" */
  udpEndpoints?: string[];
  /** UDP entries whose original destination is one of these "ip:port" (":port" = any local address) */
  udpServiceIPs?: string[];
}

export class NatLoadError extends Error {
  constructor(
    message: string,
    readonly line?: number,
  ) {
    super(message);
    this.name = "NatLoadError";
  }
}

export interface ServiceNatOptions {
  random?: () => number;
}

export class ServiceNat implements ServiceNatStage {
  mode: ProxyMode = "iptables";
  readonly iptables = new IptablesRuleset();
  readonly iptablesStage: IptablesNatStage;
  readonly ipvsStage = new IpvsNatStage();
  loads = 0;
  lastLoadAt?: Date;
  /**
   * Set by the dataplane: the kube-ipvs0 address set changed (ipvs mode binds every Service IP
   * there, so the node answers ping for them). Wire to addLocalAddress / removeLocalAddress.
   */
  onHeldAddressesChanged?: (added: string[], removed: string[]) => void;
  /** Set by the dataplane: deletes the conntrack entries kube-proxy named in a load. */
  onConntrackFlush?: (flush: ConntrackFlush) => void;

  constructor(options: ServiceNatOptions = {}) {
    this.iptablesStage = new IptablesNatStage(this.iptables, { random: options.random });
  }

  /** Validates and applies a load as one step; throws NatLoadError and changes nothing on bad input. */
  load(req: NatLoad): void {
    if (!req || typeof req !== "object") throw new NatLoadError("load: expected an object");
    if (!PROXY_MODES.includes(req.mode))
      throw new NatLoadError(`load: mode must be iptables, ipvs or userspace, not "${String(req.mode)}"`);
    if (req.iptablesRestore !== undefined && typeof req.iptablesRestore !== "string") {
      throw new NatLoadError("load: iptablesRestore must be text");
    }
    if (req.mode === "ipvs" && !Array.isArray(req.ipvs))
      throw new NatLoadError("load: ipvs mode needs the ipvs virtual server list");
    // A new mode starts from clean tables, as kube-proxy's cleanup of the other modes' rules does.
    const heldBefore = new Set(this.ipvsStage.heldAddresses());
    const staged = req.mode === this.mode ? this.iptables.clone() : new IptablesRuleset();
    try {
      for (const e of req.ensureRules ?? [])
        staged.ensureRule(e.table, e.chain, e.rule, e.position ?? "prepend");
      if (req.iptablesRestore) staged.restore(req.iptablesRestore, { noflush: true });
    } catch (err) {
      if (err instanceof RestoreError) throw new NatLoadError(err.message, err.line);
      throw new NatLoadError(`iptables: ${(err as Error).message}`);
    }
    if (req.mode === "ipvs") {
      try {
        this.ipvsStage.load({
          virtualServers: req.ipvs as VirtualServer[],
          addresses: req.ipvsAddresses,
          clusterCIDR: req.clusterCIDR,
          masqueradeAll: req.masqueradeAll,
        });
      } catch (err) {
        if (err instanceof IpvsError) throw new NatLoadError(err.message);
        throw err;
      }
    } else if (this.mode === "ipvs") {
      // Leaving ipvs mode clears the IPVS table and kube-ipvs0, as kube-proxy's cleanup does.
      this.ipvsStage.load({ virtualServers: [] });
    }
    this.iptables.adopt(staged);
    this.mode = req.mode;
    this.loads++;
    this.lastLoadAt = new Date();
    const heldAfter = new Set(this.ipvsStage.heldAddresses());
    const added = [...heldAfter].filter((a) => !heldBefore.has(a));
    const removed = [...heldBefore].filter((a) => !heldAfter.has(a));
    if (added.length || removed.length) this.onHeldAddressesChanged?.(added, removed);
    const flush = req.conntrackFlush;
    if (flush && ((flush.udpEndpoints?.length ?? 0) > 0 || (flush.udpServiceIPs?.length ?? 0) > 0))
      this.onConntrackFlush?.(flush);
  }

  /** The decision for a connection with every rule it met, without side effects on IPVS counts. */
  trace(pkt: ParsedPacket, ctx: StageContext): { decision: NatDecision | undefined; rules: string[] } {
    if (this.mode === "ipvs") {
      const svc = this.ipvsStage.table.lookup(pkt.proto, pkt.dstAddr >>> 0, pkt.dstPort);
      if (svc) {
        return {
          decision: undefined,
          rules: [
            `ipvs ${svc.protocol} ${svc.address}:${svc.port} ${svc.schedulerName}${svc.persistentTimeout ? ` persistent ${svc.persistentTimeout}` : ""} (${svc.dests.length} real servers)`,
          ],
        };
      }
    }
    const t = this.iptablesStage.trace(pkt, ctx);
    return {
      decision: t.decision,
      rules: t.hits.map((h) => `${h.table} ${h.chain} #${h.index}: -A ${h.chain} ${h.rule}`),
    };
  }

  /** An address the node answers for because kube-proxy put it on kube-ipvs0. */
  holdsAddress(ip: string): boolean {
    return this.mode === "ipvs" && this.ipvsStage.holdsAddress(ip);
  }

  onNewConnection(pkt: ParsedPacket, ctx: StageContext): NatDecision | undefined {
    if (this.mode === "ipvs") {
      const d = this.ipvsStage.onNewConnection(pkt, ctx);
      if (d) return d;
    }
    return this.iptablesStage.onNewConnection(pkt, ctx);
  }

  onConnectionClosed(conn: ConnectionInfo): void {
    this.ipvsStage.onConnectionClosed(conn);
  }

  /**
   * A TCP connection left ESTABLISHED (FIN or RST seen). IPVS moves
   * it from ActiveConn to InActConn, which is what lc/wlc/sed/nq weigh.
   */
  onConnectionInactive(conn: ConnectionInfo): void {
    this.ipvsStage.onConnectionInactive(conn);
  }

  /** Not in ServiceNatStage yet: counts a packet of a translated connection for ipvsadm --stats. */
  accountPacket(conn: ConnectionInfo, direction: "in" | "out", bytes: number): void {
    if (this.mode !== "ipvs") return;
    const f = conn.original;
    this.ipvsStage.table.account(
      `${f.protocol}|${f.srcIP}|${f.srcPort}|${f.dstIP}|${f.dstPort}`,
      direction,
      bytes,
    );
  }
}
