/**
 * NetworkPolicy verdicts for the dataplane's policy stage: consulted once per new connection,
 * after Service DNAT (so the destination is the backend pod), egress at the source's node and
 * ingress at the destination's node. The verdict names the policy that allowed the flow, or the
 * policies that isolate the pod when nothing did.
 */
import type { FlowKey, PolicyContext, PolicyStage, PolicyVerdict } from "../stages.ts";
import { inCidr, type CompiledRule, type PolicyIndex, type PortMatch } from "./compile.ts";

const emptyIndex: PolicyIndex = { pods: new Map(), ports: new Map(), errors: [] };

function peerMatches(rule: CompiledRule, ip: string): boolean {
  const peers = rule.peers;
  if (peers.any || peers.podIPs.has(ip)) return true;
  return peers.ipBlocks.some((b) => inCidr(ip, b.cidr) && !b.except.some((e) => inCidr(ip, e)));
}

function portMatches(
  ports: PortMatch[],
  flow: FlowKey,
  protocol: string,
  namedPortsOfDestination: () => Map<string, number>,
): boolean {
  if (ports.length === 0) return true;
  for (const p of ports) {
    if (p.protocol !== protocol) continue;
    if (p.kind === "any") return true;
    if (p.kind === "range" && flow.dstPort >= p.from && flow.dstPort <= p.to) return true;
    if (p.kind === "named" && namedPortsOfDestination().get(`${p.protocol}/${p.name}`) === flow.dstPort)
      return true;
  }
  return false;
}

export class NetworkPolicyStage implements PolicyStage {
  private index: PolicyIndex = emptyIndex;

  /** Swaps in a newly compiled index: connections already tracked keep their verdict. */
  load(index: PolicyIndex): void {
    this.index = index;
  }

  verdict(flow: FlowKey, ctx: PolicyContext): PolicyVerdict {
    // NetworkPolicy covers TCP, UDP and SCTP; other protocols (ICMP) are outside the API and pass.
    const protocol = flow.protocol.toUpperCase();
    if (protocol !== "TCP" && protocol !== "UDP" && protocol !== "SCTP") {
      return { allowed: true, reason: `${flow.protocol} is not subject to NetworkPolicy` };
    }
    const pod = this.index.pods.get(ctx.podIP);
    if (!pod) return { allowed: true, reason: "not a pod NetworkPolicy can select" };
    const direction = ctx.direction === "ingress" ? pod.ingress : pod.egress;
    if (ctx.direction === "ingress" && (ctx.source === "node" || ctx.isLocalAddress(flow.srcIP))) {
      return { allowed: true, reason: "traffic from the pod's own node is always allowed" };
    }
    if (direction.isolatedBy.length === 0) {
      return {
        allowed: true,
        reason: `no policy isolates ${pod.namespace}/${pod.name} for ${ctx.direction}`,
      };
    }
    const peerIP = ctx.direction === "ingress" ? flow.srcIP : flow.dstIP;
    let named: Map<string, number> | undefined;
    const namedPorts = () => {
      if (!named) {
        named = new Map();
        for (const p of this.index.ports.get(flow.dstIP) ?? []) {
          if (p.name) named.set(`${p.protocol}/${p.name}`, p.containerPort);
        }
      }
      return named;
    };
    for (const rule of direction.rules) {
      if (peerMatches(rule, peerIP) && portMatches(rule.ports, flow, protocol, namedPorts)) {
        return { allowed: true, policy: rule.policy, reason: `allowed by ${rule.policy}` };
      }
    }
    return {
      allowed: false,
      policy: direction.isolatedBy.join(","),
      reason: `${pod.namespace}/${pod.name} is isolated for ${ctx.direction} by ${direction.isolatedBy.join(", ")} and no rule allows it`,
    };
  }
}
