import type { ParsedPacket } from "../packet.ts";
import type { NatDecision, ServiceNatStage, StageContext } from "../stages.ts";
import { formatIPv4, parseIPv4 } from "./ip.ts";
import { IptablesEvaluator, type IptablesDecision, type RuleHit } from "./iptables/evaluate.ts";
import type { IptablesRuleset } from "./iptables/ruleset.ts";

// kube-proxy's iptables mode as the dataplane's Service NAT stage: each new connection walks
// the loaded rules as the kernel would.

export interface IptablesStageOptions {
  /** [0, 1) source for -m statistic; Math.random by default */
  random?: () => number;
}

export function toNatDecision(d: IptablesDecision): NatDecision | undefined {
  if (d.verdict === "REJECT") {
    const w = d.rejectWith;
    return {
      action: "REJECT",
      rejectWith:
        w === "tcp-reset"
          ? "tcp-reset"
          : w === "icmp-port-unreachable" || !w
            ? "icmp-port-unreachable"
            : "icmp-host-unreachable",
      rule: d.decidedBy,
    };
  }
  if (d.verdict === "DROP") return { action: "DROP", rule: d.decidedBy };
  if (d.dnat) {
    return {
      action: "DNAT",
      toIP: formatIPv4(d.dnat.ip),
      ...(d.dnat.port !== undefined ? { toPort: d.dnat.port } : {}),
      masquerade: d.masquerade,
      rule: d.dnat.chain,
    };
  }
  if (d.masquerade) return { action: "MASQUERADE", rule: "KUBE-POSTROUTING" };
  return undefined;
}

export class IptablesNatStage implements ServiceNatStage {
  readonly evaluator: IptablesEvaluator;
  private readonly random: () => number;
  private nodeIPText = "";
  private nodeIP: number | undefined;

  constructor(
    readonly ruleset: IptablesRuleset,
    options: IptablesStageOptions = {},
  ) {
    this.evaluator = new IptablesEvaluator(ruleset);
    this.random = options.random ?? Math.random;
  }

  /** The full decision, with every rule hit when `trace` is set (what `klab trace` shows). */
  decide(pkt: ParsedPacket, ctx: StageContext, trace = false): IptablesDecision {
    if (ctx.nodeIP !== this.nodeIPText) {
      this.nodeIPText = ctx.nodeIP;
      this.nodeIP = parseIPv4(ctx.nodeIP);
    }
    const cache = new Map<number, boolean>();
    const isLocal = (ip: number): boolean => {
      let v = cache.get(ip);
      if (v === undefined) {
        v = ctx.isLocalAddress(formatIPv4(ip));
        cache.set(ip, v);
      }
      return v;
    };
    return this.evaluator.evaluate(
      {
        proto: pkt.proto,
        src: pkt.srcAddr >>> 0,
        dst: pkt.dstAddr >>> 0,
        sport: pkt.srcPort,
        dport: pkt.dstPort,
        length: pkt.totalLength,
      },
      ctx.source === "node" ? "OUTPUT" : "PREROUTING",
      { isLocalAddress: isLocal, random: this.random, now: ctx.now, primaryAddress: this.nodeIP },
      trace,
    );
  }

  onNewConnection(pkt: ParsedPacket, ctx: StageContext): NatDecision | undefined {
    return toNatDecision(this.decide(pkt, ctx));
  }

  trace(pkt: ParsedPacket, ctx: StageContext): { decision: NatDecision | undefined; hits: RuleHit[] } {
    const d = this.decide(pkt, ctx, true);
    return { decision: toNatDecision(d), hits: d.hits };
  }
}

/** A ParsedPacket-shaped header for decisions made without a wire packet (tests, benchmarks, trace). */
export function syntheticPacket(
  protocol: "TCP" | "UDP",
  src: string,
  srcPort: number,
  dst: string,
  dstPort: number,
): ParsedPacket {
  const s = parseIPv4(src);
  const d = parseIPv4(dst);
  if (s === undefined || d === undefined) throw new Error(`invalid address ${s === undefined ? src : dst}`);
  return {
    data: Buffer.alloc(0),
    headerLength: 20,
    totalLength: 60,
    ttl: 64,
    proto: protocol === "TCP" ? 6 : 17,
    protocol,
    srcAddr: s,
    dstAddr: d,
    l4Offset: 20,
    srcPort,
    dstPort,
    tcpFlags: protocol === "TCP" ? 0x02 : 0,
    icmpType: -1,
    icmpCode: -1,
    payloadLength: 0,
  };
}
