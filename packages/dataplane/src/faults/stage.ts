/**
 * The fault stage: netem/tbf-like link faults on the dataplane's output, Toxiproxy-like
 * Service faults on its input (reset, timeout) and on the Service's replies (slow-close,
 * limit-data), and a conntrack table held full (conntrack-fill). It exists only while faults are
 * set: NodeDataplane hands the pipeline its plain Output otherwise, so a lab without faults pays
 * nothing per packet.
 */
import { Counter, type Registry } from "prom-client";
import { buildTCP, tcpResetFor } from "../build.ts";
import type { Conntrack } from "../conntrack.ts";
import type { FlowLog } from "../flows.ts";
import { ipToString, parseIP } from "../ip.ts";
import { IPPROTO_TCP, IPPROTO_UDP, TCP_FIN, TCP_RST } from "../packet.ts";
import { isParseError, parsePacket } from "../parse.ts";
import type { Ingress, Output } from "../pipeline.ts";
import type { PacketSource } from "../stages.ts";
import { ConntrackFill } from "./conntrack-fill.ts";
import { isLinkFault, isServiceFault, parseHostPort, type Fault } from "./model.ts";

export type FaultAction = "delayed" | "dropped" | "duplicated" | "corrupted" | "shaped" | "reset";

/** How many connections limit-data follows at once; the oldest are forgotten first. */
const MAX_LIMITED_CONNECTIONS = 65536;

export type FaultMetrics = Counter<"fault" | "kind" | "action">;

export function registerFaultMetrics(registry: Registry): FaultMetrics {
  return new Counter({
    name: "klab_fault_packets_total",
    help: "Packets an injected fault acted on, by fault id, kind and what it did.",
    labelNames: ["fault", "kind", "action"],
    registers: [registry],
  });
}

export interface FaultStageOptions {
  nodeName: string;
  nodeIP: string;
  /** Pod faults are applied by the pod's own node only, so a packet is not hit twice. */
  isLocalPod(ip: number): boolean;
  /** Called after delayed packets were handed to the Output, to write them out. */
  flush(): void;
  flows?: FlowLog;
  metrics?: FaultMetrics;
  random?: () => number;
  now?: () => number;
  /** The node's conntrack table, for conntrack-fill. */
  conntrack?: Conntrack;
}

interface LinkFault {
  fault: Fault;
  pod: number;
  node: number;
  peer: number;
  /** bandwidth: when the link is next free, in ms (a virtual clock, as tbf's). */
  nextFree: number;
}

const DF = 0x40;

export class FaultStage {
  /** Where the packet being processed entered, for flow events (set by the shell per packet). */
  source: PacketSource = "pod";
  readonly faults: readonly Fault[];
  private readonly link: LinkFault[] = [];
  private readonly services = new Map<number, Fault[]>();
  /** slow-close and limit-data act on the Service's replies, keyed by their source ClusterIP:port. */
  private readonly replies = new Map<number, Fault[]>();
  /** limit-data: bytes sent so far per connection ("clientIP:port>service"), -1 once cut. */
  private readonly sent = new Map<string, number>();
  private fill?: ConntrackFill;
  private readonly nodeIP: number;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly random: () => number;
  private readonly now: () => number;
  private stopped = false;

  constructor(
    faults: readonly Fault[],
    private readonly opts: FaultStageOptions,
  ) {
    this.faults = faults;
    this.nodeIP = parseIP(opts.nodeIP);
    this.random = opts.random ?? Math.random;
    this.now = opts.now ?? (() => performance.now());
    for (const fault of faults) {
      if (isLinkFault(fault)) {
        const t = fault.target;
        this.link.push({
          fault,
          pod: t.pod ? parseIP(t.pod) : -1,
          node: t.node ? parseIP(t.node) : -1,
          peer: t.peer ? parseIP(t.peer) : -1,
          nextFree: 0,
        });
      } else if (isServiceFault(fault)) {
        const { ip, port } = parseHostPort(fault.target.service);
        const key = parseIP(ip) * 65536 + port;
        const map = fault.kind === "slow-close" || fault.kind === "limit-data" ? this.replies : this.services;
        const list = map.get(key) ?? [];
        list.push(fault);
        map.set(key, list);
      } else if (fault.kind === "conntrack-fill" && fault.target.node === opts.nodeIP && opts.conntrack) {
        if (!this.fill) {
          this.fill = new ConntrackFill(opts.conntrack, fault, this.nodeIP);
          this.fill.start();
        }
      }
    }
  }

  get hasLinkFaults(): boolean {
    return this.link.length > 0;
  }

  /** conntrack-fill: how many entries this stage holds in the table. */
  get conntrackFillEntries(): number {
    return this.fill?.size ?? 0;
  }

  /** Drop the timers of packets still delayed (the stage is being replaced or the node stops). */
  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.fill?.stop();
    this.fill = undefined;
  }

  /** An Output that applies the link faults before handing packets on to `out`. */
  wrap(out: Output): Output {
    if (this.link.length === 0 && this.replies.size === 0) return out;
    const local = (pkt: Buffer, send: (p: Buffer) => void) => {
      if (this.replies.size === 0 || !this.reply(pkt, send)) this.apply(pkt, -1, send);
    };
    return {
      toPod: (podIP, pkt) => local(pkt, (p) => out.toPod(podIP, p)),
      toHost: (pkt) => local(pkt, (p) => out.toHost(p)),
      toOverlay: (nodeIP, pkt) => this.apply(pkt, nodeIP, (p) => out.toOverlay(nodeIP, p)),
    };
  }

  /**
   * A Service's reply on its way to the client (its source is the ClusterIP again, after the
   * client's node undid the DNAT). Returns true when the packet was consumed.
   */
  private reply(pkt: Buffer, send: (p: Buffer) => void): boolean {
    if (pkt.length < 40 || pkt[0] >> 4 !== 4 || pkt[9] !== IPPROTO_TCP) return false;
    const ihl = (pkt[0] & 0x0f) * 4;
    if (pkt.length < ihl + 20) return false;
    const faults = this.replies.get(pkt.readUInt32BE(12) * 65536 + pkt.readUInt16BE(ihl));
    if (!faults) return false;
    const flags = pkt[ihl + 13];
    for (const fault of faults) {
      if (fault.kind === "limit-data") {
        const key = `${pkt.readUInt32BE(16)}:${pkt.readUInt16BE(ihl + 2)}>${pkt.readUInt32BE(12)}:${pkt.readUInt16BE(ihl)}`;
        const total = Math.min(pkt.length, pkt.readUInt16BE(2));
        const payload = Math.max(0, total - ihl - (pkt[ihl + 12] >> 4) * 4);
        let sent = this.sent.get(key) ?? 0;
        if (sent >= 0 && sent + payload <= fault.bytes!) {
          if (payload > 0) {
            this.sent.delete(key);
            this.sent.set(key, sent + payload);
            if (this.sent.size > MAX_LIMITED_CONNECTIONS) this.sent.delete(this.sent.keys().next().value!);
          }
          if (flags & (TCP_FIN | TCP_RST)) this.sent.delete(key);
          continue;
        }
        // Over the limit: the client's side of the connection is closed with a reset, as
        // Toxiproxy closes it, and whatever the Service still sends is dropped.
        if (sent >= 0) {
          sent = -1;
          this.sent.set(key, sent);
          const rst = buildTCP({
            src: pkt.readUInt32BE(12),
            dst: pkt.readUInt32BE(16),
            srcPort: pkt.readUInt16BE(ihl),
            dstPort: pkt.readUInt16BE(ihl + 2),
            seq: pkt.readUInt32BE(ihl + 4),
            ack: 0,
            flags: TCP_RST,
            window: 0,
          });
          send(rst);
          this.count(fault, "reset");
          this.record(pkt, fault, this.source, "REJECTED");
          return true;
        }
        this.count(fault, "dropped");
        return true;
      }
      if (fault.kind === "slow-close" && flags & TCP_FIN) {
        if (this.stopped) return true;
        this.count(fault, "delayed");
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          this.apply(pkt, -1, send);
          this.opts.flush();
        }, fault.delayMs!);
        this.timers.add(timer);
        return true;
      }
    }
    return false;
  }

  /**
   * Service faults, applied where the client's packet enters (before the Service's DNAT hides
   * its ClusterIP). Returns true when the packet was consumed.
   */
  ingress(pkt: Buffer, ingress: Ingress, out: Output): boolean {
    if (this.fill?.keepFull() && this.tableFull(pkt, ingress)) return true;
    if (this.services.size === 0 || pkt.length < 24 || pkt[0] >> 4 !== 4) return false;
    const proto = pkt[9];
    if (proto !== IPPROTO_TCP && proto !== IPPROTO_UDP) return false;
    const ihl = (pkt[0] & 0x0f) * 4;
    if (pkt.length < ihl + 4) return false;
    const faults = this.services.get(pkt.readUInt32BE(16) * 65536 + pkt.readUInt16BE(ihl + 2));
    if (!faults) return false;
    for (const fault of faults) {
      if (fault.kind === "reset" && proto === IPPROTO_TCP) {
        const parsed = parsePacket(pkt);
        const rst = isParseError(parsed) ? undefined : tcpResetFor(parsed);
        // An RST is never answered with an RST (RFC 793): it is simply dropped.
        if (rst && ingress.kind === "pod") out.toPod(ingress.podIP, rst);
        else if (rst && ingress.kind === "node") out.toHost(rst);
        this.count(fault, "reset");
        this.record(pkt, fault, ingress.kind, "REJECTED");
        return true;
      }
      if (fault.kind === "timeout") {
        this.count(fault, "dropped");
        this.record(pkt, fault, ingress.kind, "DROPPED");
        return true;
      }
    }
    return false;
  }

  /**
   * conntrack-fill: with the table full, a packet of no known connection is dropped before it
   * could open one ("nf_conntrack: table full, dropping packet"); known connections carry on.
   */
  private tableFull(pkt: Buffer, ingress: Ingress): boolean {
    const parsed = parsePacket(pkt);
    if (isParseError(parsed)) return false;
    const ct = this.opts.conntrack!;
    if (ct.lookup(parsed.proto, parsed.srcAddr, parsed.srcPort, parsed.dstAddr, parsed.dstPort)) return false;
    const fault = this.fill!.fault;
    this.count(fault, "dropped");
    this.record(pkt, fault, ingress.kind, "DROPPED", "nf_conntrack: table full, dropping packet");
    return true;
  }

  private matches(lf: LinkFault, pkt: Buffer, overlayTo: number): boolean {
    if (lf.pod >= 0) {
      if (pkt.length < 20) return false;
      const src = pkt.readUInt32BE(12);
      const dst = pkt.readUInt32BE(16);
      return (src === lf.pod || dst === lf.pod) && this.opts.isLocalPod(lf.pod);
    }
    if (overlayTo < 0) return false;
    if (lf.node === this.nodeIP) return lf.peer < 0 || lf.peer === overlayTo;
    return lf.node === overlayTo && (lf.peer < 0 || lf.peer === this.nodeIP);
  }

  private apply(pkt: Buffer, overlayTo: number, send: (p: Buffer) => void): void {
    let delay = 0;
    let copies = 1;
    for (const lf of this.link) {
      if (!this.matches(lf, pkt, overlayTo)) continue;
      const f = lf.fault;
      switch (f.kind) {
        case "partition":
          return this.dropped(pkt, f);
        case "loss":
          if (this.random() * 100 < f.percent!) return this.dropped(pkt, f);
          break;
        case "mtu":
          // A black hole: the packet vanishes without the ICMP "fragmentation needed" that
          // path MTU discovery waits for, as behind a firewall that filters ICMP.
          if (pkt.length > f.mtu! && pkt.length >= 20 && pkt[6] & DF) return this.dropped(pkt, f);
          break;
        case "delay": {
          const jitter = f.jitterMs ? (this.random() * 2 - 1) * f.jitterMs : 0;
          delay += Math.max(0, f.delayMs! + jitter);
          this.count(f, "delayed");
          break;
        }
        case "duplicate":
          if (this.random() * 100 < f.percent!) {
            copies++;
            this.count(f, "duplicated");
          }
          break;
        case "corrupt":
          if (this.random() * 100 < f.percent! && pkt.length > 20) {
            // Past the IP header, so the packet is still routed and the receiver's transport
            // checksum catches it; the checksums are deliberately left as they were.
            const ihl = (pkt[0] & 0x0f) * 4;
            const at = ihl + Math.floor(this.random() * Math.max(1, pkt.length - ihl));
            pkt = Buffer.from(pkt);
            if (at < pkt.length) pkt[at] ^= 1 << Math.floor(this.random() * 8);
            this.count(f, "corrupted");
          }
          break;
        case "bandwidth": {
          const rate = f.rateBytesPerSecond! / 1000;
          const burst = f.burstBytes ?? Math.max(3000, rate * 10);
          const now = this.now();
          // The bucket as a virtual clock: a full bucket lets `burst` bytes through at once.
          const start = Math.max(lf.nextFree, now - burst / rate);
          const done = start + pkt.length / rate;
          const wait = done - now;
          if (wait > (f.queueMs ?? 200)) return this.dropped(pkt, f);
          lf.nextFree = done;
          if (wait > 0) {
            delay = Math.max(delay, wait);
            this.count(f, "shaped");
          }
          break;
        }
      }
    }
    if (delay <= 0) {
      for (let i = 0; i < copies; i++) send(i === 0 ? pkt : Buffer.from(pkt));
      return;
    }
    if (this.stopped) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      for (let i = 0; i < copies; i++) send(i === 0 ? pkt : Buffer.from(pkt));
      this.opts.flush();
    }, delay);
    this.timers.add(timer);
  }

  private dropped(pkt: Buffer, f: Fault): void {
    this.count(f, "dropped");
    this.record(pkt, f, this.source, "DROPPED");
  }

  private count(f: Fault, action: FaultAction): void {
    this.opts.metrics?.inc({ fault: f.id, kind: f.kind, action });
  }

  private record(
    pkt: Buffer,
    f: Fault,
    source: PacketSource,
    verdict: "DROPPED" | "REJECTED",
    why?: string,
  ): void {
    const flows = this.opts.flows;
    if (!flows || pkt.length < 20) return;
    const proto = pkt[9];
    const ihl = (pkt[0] & 0x0f) * 4;
    const ports = (proto === IPPROTO_TCP || proto === IPPROTO_UDP) && pkt.length >= ihl + 4;
    flows.record({
      time: Date.now(),
      node: this.opts.nodeName,
      type: "drop",
      verdict,
      protocol:
        proto === IPPROTO_TCP ? "TCP" : proto === IPPROTO_UDP ? "UDP" : proto === 1 ? "ICMP" : `IP/${proto}`,
      source,
      src: { ip: ipToString(pkt.readUInt32BE(12)), port: ports ? pkt.readUInt16BE(ihl) : 0 },
      dst: { ip: ipToString(pkt.readUInt32BE(16)), port: ports ? pkt.readUInt16BE(ihl + 2) : 0 },
      reason: `fault:${f.id} ${f.kind}${why ? `: ${why}` : ""}`,
      packets: 1,
      bytes: pkt.length,
    });
  }
}
