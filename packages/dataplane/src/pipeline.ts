/**
 * The node dataplane's packet pipeline, as pure code: a packet and where it came from go in,
 * packets come out through the `Output` callbacks. No I/O here, so every decision is testable
 * with hand-built packets. The stages, in order (see stages.ts for the pluggable two):
 *
 *   [parse] → [conntrack] → existing: translate as the entry says ─────────────┐
 *                         → new: [service NAT] → [policy] → commit ───────────┤
 *                                                                  [route] → [output]
 *
 * Nothing here throws on bad input: every refused packet is counted by reason and recorded as
 * a flow event.
 */
import {
  echoReplyTo,
  ICMP_DEST_UNREACH,
  ICMP_HOST_UNREACH,
  ICMP_PORT_UNREACH,
  icmpErrorFor,
  tcpResetFor,
} from "./build.ts";
import {
  Conntrack,
  invert,
  ORIGINAL,
  tcpInitialState,
  type ConntrackEntry,
  type ConntrackOptions,
  type Direction,
  type RemovalReason,
  type Tuple,
} from "./conntrack.ts";
import { FlowLog, type Endpoint, type FlowEvent, type Verdict } from "./flows.ts";
import { ipToString, nthAddress, parseCIDR, parseIP, type Cidr } from "./ip.ts";
import { DataplaneStats } from "./metrics.ts";
import {
  ICMP_ECHO_REQUEST,
  ICMP_TIME_EXCEEDED,
  IPPROTO_ICMP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  TCP_ACK,
  TCP_FIN,
  TCP_PSH,
  TCP_RST,
  TCP_SYN,
  type ParsedPacket,
} from "./packet.ts";
import { isParseError, parsePacket } from "./parse.ts";
import { decrementTTL, rewriteQuoted, setDestination, setSource } from "./rewrite.ts";
import { RouteTable, type RouteTarget } from "./routing.ts";
import type {
  ConnectionInfo,
  FlowKey,
  NatDecision,
  PacketSource,
  PolicyStage,
  PolicyVerdict,
  ServiceNatStage,
  StageContext,
} from "./stages.ts";

/** Where a packet entered the dataplane. */
export type Ingress =
  { kind: "pod"; podIP: number } | { kind: "node" } | { kind: "overlay"; fromNodeIP: number };

/** Where packets leave. The shell batches these per device and flushes after each input batch. */
export interface Output {
  toPod(podIP: number, packet: Buffer): void;
  toOverlay(nodeIP: number, packet: Buffer): void;
  toHost(packet: Buffer): void;
}

export interface PipelineConfig {
  nodeName: string;
  /** The node's address on the node network (its kernel owns it; reached through lab0). */
  nodeIP: string;
  /** This node's pod CIDR, e.g. "10.244.1.0/24". */
  podCIDR: string;
  /** The address pods use as gateway and that masquerade towards local pods uses (cni0's): default .1 of the podCIDR. */
  gatewayIP?: string;
  /** The node's overlay address, masquerade source towards other nodes (flannel.1's): default .0 of the podCIDR. */
  overlayIP?: string;
  /** Answer ICMP echo for the dataplane's own addresses (gateway, overlay, addLocalAddress). Default true. */
  answerPing?: boolean;
  /**
   * Verify TCP/UDP/ICMP checksums of packets from pods and lab0 (the kernel does, for packets it
   * receives); overlay packets were verified by the sending node. Default true.
   */
  verifyTransportChecksum?: boolean;
  now?: () => number;
  wallClock?: () => number;
  conntrack?: Omit<ConntrackOptions, "now" | "onRemove">;
  flowLogCapacity?: number;
  /** Record an "end" flow event when a connection leaves conntrack. Default true. */
  endEvents?: boolean;
}

const TCP_FLAG_NAMES: [number, string][] = [
  [TCP_SYN, "SYN"],
  [TCP_ACK, "ACK"],
  [TCP_FIN, "FIN"],
  [TCP_RST, "RST"],
  [TCP_PSH, "PSH"],
];

export function tcpFlagNames(flags: number): string {
  return TCP_FLAG_NAMES.filter(([bit]) => flags & bit)
    .map(([, n]) => n)
    .join("|");
}

/** TCP states IPVS counts as active; every later state (FIN/RST seen) counts as inactive. */
const OPEN_TCP_STATES = new Set<ConntrackEntry["tcpState"]>([
  "SYN_SENT",
  "SYN_RECV",
  "ESTABLISHED",
  "SYN_SENT2",
]);

const PROTOCOL_NAMES: Record<number, "TCP" | "UDP" | "ICMP"> = {
  [IPPROTO_TCP]: "TCP",
  [IPPROTO_UDP]: "UDP",
  [IPPROTO_ICMP]: "ICMP",
};

export class Pipeline {
  readonly nodeName: string;
  readonly nodeIP: number;
  readonly podCIDR: Cidr;
  readonly gatewayIP: number;
  readonly overlayIP: number;
  readonly routes = new RouteTable();
  readonly conntrack: Conntrack;
  readonly flows: FlowLog;
  readonly stats = new DataplaneStats();
  serviceNat: ServiceNatStage | undefined;
  policy: PolicyStage | undefined;
  answerPing: boolean;

  private readonly verifyTransportChecksum: boolean;
  private readonly now: () => number;
  private readonly wallClock: () => number;
  private readonly endEvents: boolean;
  private readonly localPods = new Set<number>();
  /** Addresses the dataplane itself answers for (gateway, overlay address, IPVS-style service IPs). */
  private readonly ownedAddresses = new Set<number>();
  /** Addresses of this node: owned ones plus the node IP its kernel holds. */
  private readonly nodeAddresses = new Set<number>();
  private readonly ipCache = new Map<string, number>();
  // Bound once: arrows made per new connection cost tsx's name-keeping defineProperty each.
  private readonly isLocalPodBound = (ip: string): boolean => this.isLocalPod(ip);
  private readonly isLocalAddressBound = (ip: string): boolean => this.isLocalAddress(ip);

  constructor(cfg: PipelineConfig) {
    this.nodeName = cfg.nodeName;
    this.nodeIP = parseIP(cfg.nodeIP);
    this.podCIDR = parseCIDR(cfg.podCIDR);
    this.gatewayIP = cfg.gatewayIP ? parseIP(cfg.gatewayIP) : nthAddress(this.podCIDR, 1);
    this.overlayIP = cfg.overlayIP ? parseIP(cfg.overlayIP) : nthAddress(this.podCIDR, 0);
    this.answerPing = cfg.answerPing ?? true;
    this.verifyTransportChecksum = cfg.verifyTransportChecksum ?? true;
    this.now = cfg.now ?? (() => performance.now());
    this.wallClock = cfg.wallClock ?? Date.now;
    this.endEvents = cfg.endEvents ?? true;
    this.flows = new FlowLog(cfg.flowLogCapacity);
    this.conntrack = new Conntrack({
      ...cfg.conntrack,
      now: this.now,
      onRemove: (e, reason) => this.connectionEnded(e, reason),
    });
    // Everything not more specific goes to the node's own network stack.
    this.routes.add({ network: 0, prefix: 0 }, { kind: "host" });
    // Addresses of this node's pod range with no pod behind them go nowhere (no ARP answer).
    this.routes.add(this.podCIDR, { kind: "blackhole" });
    this.nodeAddresses.add(this.nodeIP);
    this.addLocalAddress(ipToString(this.gatewayIP));
    this.addLocalAddress(ipToString(this.overlayIP));
  }

  // ---- configuration (the node agent and the stages' owners call these) ----

  addPod(podIP: string): void {
    const ip = parseIP(podIP);
    this.localPods.add(ip);
    this.routes.add({ network: ip, prefix: 32 }, { kind: "pod", podIP: ip });
  }

  removePod(podIP: string): void {
    const ip = parseIP(podIP);
    this.localPods.delete(ip);
    this.routes.delete({ network: ip, prefix: 32 });
  }

  /** Route another node's pod CIDR over the overlay to that node. */
  addRemoteNode(podCIDR: string, nodeIP: string): void {
    this.routes.add(podCIDR, { kind: "overlay", nodeIP: parseIP(nodeIP) });
  }

  removeRemoteNode(podCIDR: string): void {
    this.routes.delete(podCIDR);
  }

  /** An address the dataplane answers for itself (ping, and refusal of other traffic). */
  addLocalAddress(ip: string): void {
    const n = parseIP(ip);
    this.ownedAddresses.add(n);
    this.nodeAddresses.add(n);
    this.routes.add({ network: n, prefix: 32 }, { kind: "local" });
  }

  removeLocalAddress(ip: string): void {
    const n = parseIP(ip);
    if (n === this.gatewayIP || n === this.overlayIP) return;
    this.ownedAddresses.delete(n);
    this.nodeAddresses.delete(n);
    this.routes.delete({ network: n, prefix: 32 });
  }

  isLocalPod(ip: string): boolean {
    return this.localPods.has(this.ip(ip));
  }

  isLocalAddress(ip: string): boolean {
    return this.nodeAddresses.has(this.ip(ip));
  }

  private ip(text: string): number {
    let n = this.ipCache.get(text);
    if (n === undefined) {
      n = parseIP(text);
      if (this.ipCache.size > 10_000) this.ipCache.clear();
      this.ipCache.set(text, n);
    }
    return n;
  }

  // ---- the pipeline ----

  /** Run one packet through the pipeline. Never throws. */
  process(data: Buffer, ingress: Ingress, out: Output): void {
    const source: PacketSource = ingress.kind;
    this.stats.packets[source]++;
    this.stats.bytes[source] += data.length;
    // Overlay packets had their transport checksum verified by the node they came from.
    const parsed = parsePacket(data, {
      verifyTransportChecksum: this.verifyTransportChecksum && source !== "overlay",
    });
    if (isParseError(parsed)) {
      this.dropRaw(data, source, parsed.error);
      return;
    }
    const pkt = parsed;
    if (ingress.kind === "pod" && pkt.srcAddr !== ingress.podIP) {
      this.drop(pkt, source, "source-address-mismatch");
      return;
    }
    if (pkt.inner) {
      this.related(pkt, ingress, out);
      return;
    }
    const hit = this.conntrack.lookup(pkt.proto, pkt.srcAddr, pkt.srcPort, pkt.dstAddr, pkt.dstPort);
    if (hit) {
      const before = hit.entry.tcpState;
      const result = this.conntrack.update(hit.entry, hit.dir, pkt.totalLength, pkt.tcpFlags);
      if (result === "ok") {
        if (before !== hit.entry.tcpState) this.tcpStateChanged(hit.entry, before);
        this.translate(pkt, hit.entry, hit.dir);
        this.forward(pkt, ingress, out);
        return;
      }
      if (result === "invalid") {
        this.invalid(pkt, ingress, out, hit.entry, hit.dir);
        return;
      }
      this.conntrack.remove(hit.entry, "replaced");
    }
    this.newConnection(pkt, ingress, out);
  }

  /** Rewrite a packet of a tracked connection as its entry says (NAT, and un-NAT for replies). */
  private translate(pkt: ParsedPacket, e: ConntrackEntry, dir: Direction): void {
    const want = dir === ORIGINAL ? e.reply : e.original;
    // The packet should look like the other direction's tuple, inverted.
    if (pkt.dstAddr !== want.src || pkt.dstPort !== want.srcPort) setDestination(pkt, want.src, want.srcPort);
    if (pkt.srcAddr !== want.dst || pkt.srcPort !== want.dstPort) setSource(pkt, want.dst, want.dstPort);
  }

  private newConnection(pkt: ParsedPacket, ingress: Ingress, out: Output): void {
    const source: PacketSource = ingress.kind;
    if (
      (pkt.proto === IPPROTO_TCP && !tcpInitialState(pkt.tcpFlags)) ||
      (pkt.proto === IPPROTO_ICMP && pkt.icmpType !== ICMP_ECHO_REQUEST)
    ) {
      // Only a SYN opens a connection (or, as with nf_conntrack_tcp_loose, a plain ACK picks
      // up one already running, e.g. after the agent restarted); only an echo request an ICMP one.
      this.invalid(pkt, ingress, out);
      return;
    }
    const flow: FlowKey = {
      protocol: pkt.protocol,
      srcIP: ipToString(pkt.srcAddr),
      srcPort: pkt.srcPort,
      dstIP: ipToString(pkt.dstAddr),
      dstPort: pkt.dstPort,
    };
    const ctx: StageContext = {
      flow,
      source,
      nodeName: this.nodeName,
      nodeIP: ipToString(this.nodeIP),
      isLocalPod: this.isLocalPodBound,
      isLocalAddress: this.isLocalAddressBound,
      now: this.now(),
    };

    // [service NAT]
    let decision: NatDecision | undefined;
    if (this.serviceNat) {
      try {
        decision = this.serviceNat.onNewConnection(pkt, ctx);
      } catch {
        this.drop(pkt, source, "stage-error", { reason: "stage-error: service NAT threw" });
        return;
      }
    }
    let dnatAddr = pkt.dstAddr;
    let dnatPort = pkt.dstPort;
    let masquerade = false;
    const rule = decision?.rule;
    if (decision) {
      switch (decision.action) {
        case "DROP":
          this.drop(pkt, source, "service-rule-drop", { rule });
          return;
        case "REJECT":
          this.reject(pkt, ingress, out, decision.rejectWith ?? "icmp-port-unreachable", rule);
          return;
        case "DNAT": {
          let to: number;
          try {
            to = this.ip(decision.toIP);
          } catch {
            this.drop(pkt, source, "stage-error", {
              rule,
              reason: `stage-error: bad DNAT address ${decision.toIP}`,
            });
            return;
          }
          dnatAddr = to;
          if (decision.toPort !== undefined && pkt.proto !== IPPROTO_ICMP) dnatPort = decision.toPort;
          masquerade = decision.masquerade === true;
          break;
        }
        case "MASQUERADE":
          masquerade = true;
          break;
        case "ACCEPT":
          break;
      }
    }
    const route = this.routes.lookup(dnatAddr)?.target ?? { kind: "blackhole" as const };

    // [policy], on the flow after DNAT and before masquerade (filter FORWARD sits between them).
    let policyName: string | undefined;
    if (this.policy && (ingress.kind === "pod" || route.kind === "pod")) {
      const dnatFlow: FlowKey =
        dnatAddr === pkt.dstAddr && dnatPort === pkt.dstPort
          ? flow
          : { ...flow, dstIP: ipToString(dnatAddr), dstPort: dnatPort };
      const checks: ("egress" | "ingress")[] = [];
      if (ingress.kind === "pod") checks.push("egress");
      if (route.kind === "pod") checks.push("ingress");
      for (const direction of checks) {
        let v: PolicyVerdict;
        try {
          v = this.policy.verdict(dnatFlow, {
            ...ctx,
            direction,
            podIP: direction === "egress" ? dnatFlow.srcIP : dnatFlow.dstIP,
          });
        } catch {
          this.drop(pkt, source, "stage-error", { rule, reason: "stage-error: policy threw" });
          return;
        }
        if (!v.allowed) {
          this.drop(pkt, source, `policy-denied-${direction}`, {
            rule,
            policy: v.policy,
            reason: v.reason ?? `policy denied ${direction}`,
            natDst:
              dnatAddr !== pkt.dstAddr || dnatPort !== pkt.dstPort ? endpoint(dnatAddr, dnatPort) : undefined,
          });
          return;
        }
        if (v.policy) policyName = policyName ? `${policyName},${v.policy}` : v.policy;
      }
    }

    // The dataplane's own addresses: answer, never forward.
    if (route.kind === "local") {
      this.answerLocal(pkt, ingress, out, rule);
      return;
    }
    if (route.kind === "host" && ingress.kind === "node" && dnatAddr === pkt.dstAddr) {
      this.drop(pkt, source, "routing-loop", { rule });
      return;
    }

    // Masquerade: the source becomes this node's address on the way out, with a free port.
    let snatAddr = pkt.srcAddr;
    let snatPort = pkt.srcPort;
    if (masquerade) snatAddr = this.addressTowards(route);
    const original: Tuple = {
      proto: pkt.proto,
      src: pkt.srcAddr,
      srcPort: pkt.srcPort,
      dst: pkt.dstAddr,
      dstPort: pkt.dstPort,
    };
    let reply: Tuple = {
      proto: pkt.proto,
      src: dnatAddr,
      srcPort: dnatPort,
      dst: snatAddr,
      dstPort: snatPort,
    };
    if (this.conntrack.inUse(reply) || (snatAddr !== pkt.srcAddr && this.conntrack.inUse(invert(reply)))) {
      // Taken by another connection: pick another source port, as the kernel's NAT does.
      const port = this.freePort(reply);
      if (port === undefined) {
        this.drop(pkt, source, "nat-ports-exhausted", { rule });
        return;
      }
      snatPort = port;
      reply = { ...reply, dstPort: port };
    }
    const entry = this.conntrack.create(original, reply, {
      tcpFlags: pkt.tcpFlags,
      source,
      rule,
      policy: policyName,
      notifyClose: decision !== undefined && this.serviceNat?.onConnectionClosed !== undefined,
    });
    if (!entry) {
      this.drop(
        pkt,
        source,
        this.conntrack.size >= this.conntrack.max ? "conntrack-table-full" : "conntrack-insert-failed",
        { rule },
      );
      return;
    }
    entry.packets[ORIGINAL]++;
    entry.bytes[ORIGINAL] += pkt.totalLength;
    this.stats.newConnections[pkt.protocol] = (this.stats.newConnections[pkt.protocol] ?? 0) + 1;
    if (dnatAddr !== pkt.dstAddr || dnatPort !== pkt.dstPort) setDestination(pkt, dnatAddr, dnatPort);
    if (snatAddr !== pkt.srcAddr || snatPort !== pkt.srcPort) setSource(pkt, snatAddr, snatPort);
    this.record({
      type: "new",
      verdict: "FORWARDED",
      protocol: pkt.protocol,
      source,
      src: endpoint(original.src, original.srcPort),
      dst: endpoint(original.dst, original.dstPort),
      natSrc:
        snatAddr !== original.src || snatPort !== original.srcPort ? endpoint(snatAddr, snatPort) : undefined,
      natDst:
        dnatAddr !== original.dst || dnatPort !== original.dstPort ? endpoint(dnatAddr, dnatPort) : undefined,
      rule,
      policy: policyName,
      connection: entry.id,
      packets: 1,
      bytes: pkt.totalLength,
    });
    this.forward(pkt, ingress, out, route);
  }

  /**
   * A packet conntrack calls INVALID. Forwarded traffic is dropped, as kube-proxy's
   * `KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP` does; the node's own traffic (the
   * OUTPUT path, from lab0) passes untouched, as on a real node, where replies may come back
   * around the dataplane (e.g. from another node's kernel) and leave the entry half-seen.
   */
  private invalid(
    pkt: ParsedPacket,
    ingress: Ingress,
    out: Output,
    entry?: ConntrackEntry,
    dir?: Direction,
  ): void {
    if (ingress.kind !== "node") {
      this.drop(pkt, ingress.kind, "conntrack-invalid");
      return;
    }
    if (entry && dir !== undefined) this.translate(pkt, entry, dir);
    const route = this.routes.lookup(pkt.dstAddr)?.target ?? { kind: "blackhole" as const };
    if (route.kind === "host" || route.kind === "local") {
      this.drop(pkt, ingress.kind, "routing-loop");
      return;
    }
    this.forward(pkt, ingress, out, route);
  }

  /** A free source port (or ICMP id) so that `reply` is unique. */
  private freePort(reply: Tuple): number | undefined {
    const [lo, hi] = reply.proto === IPPROTO_ICMP ? [1, 65535] : [1024, 65535];
    const span = hi - lo + 1;
    const start = Math.floor(Math.random() * span);
    for (let i = 0; i < span; i++) {
      const port = lo + ((start + i) % span);
      const candidate = { ...reply, dstPort: port };
      if (!this.conntrack.inUse(candidate)) return port;
    }
    return undefined;
  }

  /** The address this node uses as source towards a route target (what MASQUERADE picks). */
  private addressTowards(route: RouteTarget): number {
    if (route.kind === "pod") return this.gatewayIP;
    if (route.kind === "overlay") return this.overlayIP;
    return this.nodeIP;
  }

  /** The address this node answers from, towards where a packet came from. */
  private addressFacing(ingress: Ingress): number {
    if (ingress.kind === "overlay") return this.overlayIP;
    // Towards the node's kernel too: an error from one of its own addresses (node IP, lab0's)
    // would be a martian to it and be dropped.
    return this.gatewayIP;
  }

  /** ICMP errors about a tracked connection follow it, translated like it (RELATED in conntrack). */
  private related(pkt: ParsedPacket, ingress: Ingress, out: Output): void {
    const inner = pkt.inner!;
    // The quoted packet went the other way: its inverse is the tuple to look up.
    const hit = this.conntrack.lookup(
      inner.proto,
      inner.dstAddr,
      inner.dstPort,
      inner.srcAddr,
      inner.srcPort,
    );
    if (!hit) {
      this.drop(pkt, ingress.kind, "conntrack-invalid", { reason: "ICMP error about no known connection" });
      return;
    }
    const e = hit.entry;
    const want = hit.dir === ORIGINAL ? e.reply : e.original;
    const fromEndpoint = pkt.srcAddr === inner.dstAddr;
    // The error goes where this direction's packets go (want.src); the packet it quotes went the
    // other way, so it reads as `want` itself, as its sender sent it.
    rewriteQuoted(pkt, {
      srcAddr: want.src,
      srcPort: want.srcPort,
      dstAddr: want.dst,
      dstPort: want.dstPort,
    });
    setDestination(pkt, want.src, pkt.dstPort);
    if (fromEndpoint) setSource(pkt, want.dst, pkt.srcPort);
    this.forward(pkt, ingress, out);
  }

  /** Route a packet (after translation) and hand it out. */
  private forward(pkt: ParsedPacket, ingress: Ingress, out: Output, known?: RouteTarget): void {
    const route = known ?? this.routes.lookup(pkt.dstAddr)?.target ?? { kind: "blackhole" as const };
    if (route.kind === "local") {
      // A tracked connection to one of the node's addresses that the node's kernel opened
      // (from lab0 with the overlay or gateway address as source, as flannel sources node
      // traffic from flannel.1's): its replies belong to the kernel.
      if (ingress.kind === "node") {
        this.drop(pkt, ingress.kind, "local-no-listener");
        return;
      }
      if (!decrementTTL(pkt)) {
        this.drop(pkt, ingress.kind, "ttl-exceeded");
        return;
      }
      this.output({ kind: "host" }, pkt.data, out);
      return;
    }
    if (route.kind === "blackhole") {
      this.drop(pkt, ingress.kind, "no-route");
      this.generate(
        icmpErrorFor(pkt, ICMP_DEST_UNREACH, ICMP_HOST_UNREACH, this.addressFacing(ingress)),
        out,
      );
      return;
    }
    // Packets from the node's own processes are not forwarded, so their TTL stays.
    if (ingress.kind !== "node" && !decrementTTL(pkt)) {
      this.drop(pkt, ingress.kind, "ttl-exceeded");
      this.generate(icmpErrorFor(pkt, ICMP_TIME_EXCEEDED, 0, this.addressFacing(ingress)), out);
      return;
    }
    this.output(route, pkt.data, out);
  }

  private output(route: RouteTarget, data: Buffer, out: Output): void {
    switch (route.kind) {
      case "pod":
        this.stats.out.pod++;
        out.toPod(route.podIP, data);
        return;
      case "overlay":
        this.stats.out.overlay++;
        out.toOverlay(route.nodeIP, data);
        return;
      case "host":
        this.stats.out.host++;
        out.toHost(data);
        return;
      default:
        this.stats.drop("no-route");
    }
  }

  /** Send a packet the dataplane made itself (replies, ICMP errors, resets) to its destination. */
  private generate(data: Buffer | undefined, out: Output): void {
    if (!data) return;
    this.stats.generated++;
    const dst = data.readUInt32BE(16);
    const route = this.routes.lookup(dst)?.target;
    if (!route || route.kind === "blackhole") return;
    // An answer to one of the node's own addresses is for the node's kernel (its processes
    // send from the overlay or gateway address through lab0).
    this.output(route.kind === "local" ? { kind: "host" } : route, data, out);
  }

  private answerLocal(pkt: ParsedPacket, ingress: Ingress, out: Output, rule?: string): void {
    const source = ingress.kind;
    if (pkt.proto === IPPROTO_ICMP) {
      if (!this.answerPing) {
        this.drop(pkt, source, "local-no-listener", { rule });
        return;
      }
      this.generate(echoReplyTo(pkt), out);
      this.record(
        this.eventFor(pkt, source, "new", "FORWARDED", { rule, reason: "echo reply from the node" }),
      );
      return;
    }
    this.reject(
      pkt,
      ingress,
      out,
      pkt.proto === IPPROTO_TCP ? "tcp-reset" : "icmp-port-unreachable",
      rule,
      "local-no-listener",
    );
  }

  private reject(
    pkt: ParsedPacket,
    ingress: Ingress,
    out: Output,
    how: "icmp-port-unreachable" | "icmp-host-unreachable" | "tcp-reset",
    rule: string | undefined,
    reason = "service-rule-reject",
  ): void {
    this.stats.rejected++;
    this.stats.drop(reason);
    this.record(this.eventFor(pkt, ingress.kind, "drop", "REJECTED", { rule, reason }));
    const answer =
      how === "tcp-reset" && pkt.proto === IPPROTO_TCP
        ? tcpResetFor(pkt)
        : icmpErrorFor(
            pkt,
            ICMP_DEST_UNREACH,
            how === "icmp-host-unreachable" ? ICMP_HOST_UNREACH : ICMP_PORT_UNREACH,
            this.addressFacing(ingress),
          );
    this.generate(answer, out);
  }

  // ---- drops and flow events ----

  private drop(
    pkt: ParsedPacket,
    source: PacketSource,
    reason: string,
    extra: Partial<FlowEvent> = {},
  ): void {
    this.stats.drop(reason);
    this.record(this.eventFor(pkt, source, "drop", "DROPPED", { reason, ...extra }));
  }

  /** A packet that did not parse: report whatever of its header is there. */
  private dropRaw(data: Buffer, source: PacketSource, reason: string): void {
    this.stats.drop(reason);
    const hasHeader = data.length >= 20 && data[0] >> 4 === 4;
    this.record({
      time: this.wallClock(),
      node: this.nodeName,
      type: "drop",
      verdict: "DROPPED",
      protocol: hasHeader
        ? (PROTOCOL_NAMES[data[9]] ?? `IP/${data[9]}`)
        : data.length > 0 && data[0] >> 4 === 6
          ? "IPv6"
          : "IP",
      source,
      src: endpoint(hasHeader ? data.readUInt32BE(12) : 0, 0),
      dst: endpoint(hasHeader ? data.readUInt32BE(16) : 0, 0),
      reason,
      packets: 1,
      bytes: data.length,
    });
  }

  private eventFor(
    pkt: ParsedPacket,
    source: PacketSource,
    type: FlowEvent["type"],
    verdict: Verdict,
    extra: Partial<FlowEvent>,
  ): Omit<FlowEvent, "time" | "node"> {
    return {
      type,
      verdict,
      protocol: pkt.protocol,
      source,
      src: endpoint(pkt.srcAddr, pkt.srcPort),
      dst: endpoint(pkt.dstAddr, pkt.dstPort),
      packets: 1,
      bytes: pkt.totalLength,
      ...(pkt.proto === IPPROTO_TCP && type === "drop" ? { state: tcpFlagNames(pkt.tcpFlags) } : {}),
      ...extra,
    };
  }

  private record(e: Omit<FlowEvent, "time" | "node"> & Partial<Pick<FlowEvent, "time" | "node">>): void {
    this.flows.record({ time: this.wallClock(), node: this.nodeName, ...e });
  }

  /** A translated TCP connection that stops being open is inactive for IPVS from then on. */
  private tcpStateChanged(e: ConntrackEntry, before: ConntrackEntry["tcpState"]): void {
    if (!e.notifyClose || !this.serviceNat?.onConnectionInactive) return;
    if (!OPEN_TCP_STATES.has(before) || OPEN_TCP_STATES.has(e.tcpState)) return;
    try {
      this.serviceNat.onConnectionInactive(connectionInfo(e));
    } catch {
      this.stats.drop("stage-error");
    }
  }

  private connectionEnded(e: ConntrackEntry, reason: RemovalReason): void {
    if (e.notifyClose && this.serviceNat?.onConnectionClosed) {
      try {
        this.serviceNat.onConnectionClosed(connectionInfo(e));
      } catch {
        this.stats.drop("stage-error");
      }
    }
    if (!this.endEvents) return;
    const o = e.original;
    const r = e.reply;
    this.record({
      type: "end",
      verdict: "FORWARDED",
      protocol: PROTOCOL_NAMES[o.proto] ?? String(o.proto),
      source: e.source,
      src: endpoint(o.src, o.srcPort),
      dst: endpoint(o.dst, o.dstPort),
      natSrc: r.dst !== o.src || r.dstPort !== o.srcPort ? endpoint(r.dst, r.dstPort) : undefined,
      natDst: r.src !== o.dst || r.srcPort !== o.dstPort ? endpoint(r.src, r.srcPort) : undefined,
      rule: e.rule,
      policy: e.policy,
      state: e.tcpState,
      reason,
      connection: e.id,
      packets: e.packets[0] + e.packets[1],
      bytes: e.bytes[0] + e.bytes[1],
    });
  }
}

function endpoint(addr: number, port: number): Endpoint {
  return { ip: ipToString(addr), port };
}

function flowKey(t: Tuple): FlowKey {
  return {
    protocol: PROTOCOL_NAMES[t.proto] ?? "TCP",
    srcIP: ipToString(t.src),
    srcPort: t.srcPort,
    dstIP: ipToString(t.dst),
    dstPort: t.dstPort,
  };
}

export function connectionInfo(e: ConntrackEntry): ConnectionInfo {
  return { id: e.id, original: flowKey(e.original), reply: flowKey(e.reply), rule: e.rule };
}
