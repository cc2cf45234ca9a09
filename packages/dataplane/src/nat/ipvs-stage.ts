import type { ParsedPacket } from "../packet.ts";
import type { ConnectionInfo, FlowKey, NatDecision, ServiceNatStage, StageContext } from "../stages.ts";
import { formatIPv4, parseCidr, parseIPv4 } from "./ip.ts";
import { IpvsError, IpvsTable, type IpvsService, type VirtualServer } from "./ipvs/table.ts";

// kube-proxy's ipvs mode as the dataplane's Service NAT stage: Service IPs are held on a
// kube-ipvs0-like address set (so they are local and answer ping), virtual servers are found by
// hash, and masquerade follows the ipset rules kube-proxy installs beside IPVS.

export interface IpvsLoad {
  virtualServers: VirtualServer[];
  /** the addresses kube-proxy binds to kube-ipvs0: every ClusterIP, external IP and LB IP */
  addresses?: string[];
  /** --cluster-cidr: cluster IP traffic from outside it is masqueraded (KUBE-CLUSTER-IP set) */
  clusterCIDR?: string;
  masqueradeAll?: boolean;
}

const flowId = (f: FlowKey) => `${f.protocol}|${f.srcIP}|${f.srcPort}|${f.dstIP}|${f.dstPort}`;

export class IpvsNatStage implements ServiceNatStage {
  readonly table = new IpvsTable();
  private addresses = new Set<number>();
  private clusterCIDR: { addr: number; mask: number } | undefined;
  private masqueradeAll = false;
  private lastExpiry = 0;

  /** Replaces the whole IPVS state in one step; throws IpvsError (and changes nothing) on bad input. */
  load(load: IpvsLoad): void {
    const addresses = new Set<number>();
    for (const a of load.addresses ?? []) {
      const n = parseIPv4(String(a));
      if (n === undefined) throw new IpvsError(`kube-ipvs0: invalid address "${a}"`);
      addresses.add(n);
    }
    let cidr: { addr: number; mask: number } | undefined;
    if (load.clusterCIDR) {
      cidr = parseCidr(load.clusterCIDR);
      if (!cidr) throw new IpvsError(`invalid clusterCIDR "${load.clusterCIDR}"`);
    }
    this.table.apply(load.virtualServers);
    this.addresses = addresses;
    this.clusterCIDR = cidr;
    this.masqueradeAll = !!load.masqueradeAll;
  }

  /** kube-ipvs0 holds this address: the node answers for it (ping works, as on IPVS nodes). */
  holdsAddress(ip: string): boolean {
    const n = parseIPv4(ip);
    return n !== undefined && this.addresses.has(n);
  }

  heldAddresses(): string[] {
    return [...this.addresses].sort((a, b) => a - b).map(formatIPv4);
  }

  private masquerade(svc: IpvsService, src: number, destAddr: number): { masq: boolean; why: string } {
    // KUBE-LOOP-BACK (dst,dst,src): a pod reaching itself through its Service.
    if (destAddr === src) return { masq: true, why: "KUBE-LOOP-BACK" };
    const kind = svc.spec.kind ?? "ClusterIP";
    if (kind === "ClusterIP") {
      if (this.masqueradeAll) return { masq: true, why: "KUBE-CLUSTER-IP (masquerade-all)" };
      if (this.clusterCIDR && (src & this.clusterCIDR.mask) >>> 0 !== this.clusterCIDR.addr) {
        return { masq: true, why: "KUBE-CLUSTER-IP" };
      }
      return { masq: false, why: "" };
    }
    const set =
      kind === "NodePort"
        ? `KUBE-NODE-PORT-${svc.protocol}`
        : kind === "ExternalIP"
          ? "KUBE-EXTERNAL-IP"
          : "KUBE-LOAD-BALANCER";
    if (svc.spec.local) return { masq: false, why: `${set.replace(/-(TCP|UDP|SCTP)$/, "")}-LOCAL` };
    return { masq: true, why: set };
  }

  onNewConnection(pkt: ParsedPacket, ctx: StageContext): NatDecision | undefined {
    if (pkt.proto !== 6 && pkt.proto !== 17 && pkt.proto !== 132) return undefined;
    const svc = this.table.lookup(pkt.proto, pkt.dstAddr >>> 0, pkt.dstPort);
    if (!svc) return undefined;
    if (ctx.now - this.lastExpiry >= 1000) {
      this.table.expireTemplates(ctx.now);
      this.lastExpiry = ctx.now;
    }
    const name = `ipvs ${svc.protocol} ${svc.address}:${svc.port} ${svc.schedulerName}`;
    const r = this.table.schedule(
      svc,
      flowId(ctx.flow),
      pkt.srcAddr >>> 0,
      pkt.srcPort,
      pkt.dstAddr >>> 0,
      ctx.now,
    );
    if (!r.dest) {
      // No real server: the address is local (kube-ipvs0) and nothing listens there, so the
      // node's own stack answers, with a reset for TCP and port-unreachable for UDP.
      return {
        action: "REJECT",
        rejectWith: pkt.proto === 6 ? "tcp-reset" : "icmp-port-unreachable",
        rule: `${name}: no destination available`,
      };
    }
    const m = this.masquerade(svc, pkt.srcAddr >>> 0, r.dest.addr);
    return {
      action: "DNAT",
      toIP: r.dest.address,
      toPort: r.dest.port,
      masquerade: m.masq,
      rule: `${name}${r.persistent ? " persistent" : ""} -> ${r.dest.address}:${r.dest.port}${m.masq ? ` (masquerade: ${m.why})` : ""}`,
    };
  }

  onConnectionClosed(conn: ConnectionInfo): void {
    this.table.close(flowId(conn.original));
  }

  /** A TCP connection of this stage left ESTABLISHED: IPVS counts it as inactive from now on. */
  onConnectionInactive(conn: ConnectionInfo): void {
    this.table.deactivate(flowId(conn.original));
  }
}
