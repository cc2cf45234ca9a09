/**
 * The two pluggable stages of the node dataplane, implemented elsewhere:
 *   - ServiceNatStage: kube-proxy's rules (iptables / IPVS interpreters, packages/dataplane/src/nat)
 *   - PolicyStage:     NetworkPolicy enforcement (packages/dataplane/src/policy)
 *
 * Where they sit in the pipeline, for each packet read from a pod's TUN, from the node's `lab0`
 * TUN or out of a VXLAN datagram:
 *
 *   [parse] → [conntrack] ─ existing connection ─────────────────────────────────────▶ [route] → [output]
 *                         └ first packet ─▶ [service NAT] → [policy] → (commit to conntrack) ─┘
 *
 * Both stages are consulted ONLY for the first packet of a connection (a new conntrack entry),
 * as the kernel evaluates nat-table rules only for new connections. Every later packet, in both
 * directions, follows the decision stored in the conntrack entry; replies are un-NATed from it.
 * So a policy change never cuts an established connection, and a rule change affects only new
 * connections — as on a real node.
 *
 * Service NAT runs BEFORE policy (as DNAT in PREROUTING runs before the filter table's FORWARD
 * chain), so a policy sees the backend pod as destination, not the ClusterIP. Masquerade (SNAT)
 * is applied after policy, as POSTROUTING is: policy sees the original source.
 *
 * Both stages must be fast and synchronous and must not throw; if one does throw, the packet is
 * dropped and counted with reason "stage-error" (the process keeps running).
 */
import type { ParsedPacket, Protocol } from "./packet.ts";

/** A connection's 5-tuple as the stages see it. IPs are dotted quads. */
export interface FlowKey {
  protocol: Protocol;
  srcIP: string;
  /** TCP/UDP source port; for an ICMP echo request the echo identifier. */
  srcPort: number;
  dstIP: string;
  /** TCP/UDP destination port; 0 for an ICMP echo request. */
  dstPort: number;
}

/**
 * Where the first packet of a connection entered this node's dataplane.
 *  - "pod":     read from a local pod's TUN (PREROUTING of traffic from a pod)
 *  - "node":    read from the node's `lab0` TUN, i.e. sent by a process of the node itself
 *               (the OUTPUT chain: kubelet probes, hostNetwork pods, NodePort relays)
 *  - "overlay": arrived in a VXLAN datagram from another node
 */
export type PacketSource = "pod" | "node" | "overlay";

export interface StageContext {
  /** The 5-tuple of the first packet, before any NAT. */
  flow: FlowKey;
  source: PacketSource;
  /** This node's name and address on the node network. */
  nodeName: string;
  nodeIP: string;
  /** True when `ip` is an address of a pod running on this node. */
  isLocalPod(ip: string): boolean;
  /** True when `ip` is one of this node's own addresses (node IP, lab0, addresses added with addLocalAddress). */
  isLocalAddress(ip: string): boolean;
  /** Monotonic milliseconds (the dataplane's clock; injectable in tests). */
  now: number;
}

/**
 * What the Service NAT stage decided for a new connection. `rule` names what decided it
 * (e.g. "KUBE-SEP-ABCDEF…" or "ipvs 10.96.0.10:53 rr"); it is shown in flow events.
 *  - DNAT: rewrite the destination to toIP[:toPort]. `masquerade: true` also SNATs the source to
 *    the node's address on the way out (KUBE-MARK-MASQ → KUBE-POSTROUTING MASQUERADE), choosing
 *    a free source port if needed.
 *  - MASQUERADE: only SNAT the source (no DNAT).
 *  - REJECT: drop and answer the sender at once (ICMP port unreachable by default, which a TCP
 *    client reports as "Connection refused"; or a TCP RST with rejectWith "tcp-reset").
 *  - DROP: drop silently.
 *  - ACCEPT: no translation, but record `rule` in the flow event.
 * Returning undefined means: no Service matched, forward unchanged.
 */
export type NatDecision =
  | { action: "DNAT"; toIP: string; toPort?: number; masquerade?: boolean; rule?: string }
  | { action: "MASQUERADE"; rule?: string }
  | {
      action: "REJECT";
      rejectWith?: "icmp-port-unreachable" | "icmp-host-unreachable" | "tcp-reset";
      rule?: string;
    }
  | { action: "DROP"; rule?: string }
  | { action: "ACCEPT"; rule?: string };

/** A conntrack entry as reported to stages when it ends (for IPVS lc/wlc counts, graceful removal). */
export interface ConnectionInfo {
  id: number;
  /** The tuple as the client sent it (before NAT). */
  original: FlowKey;
  /** The tuple replies carry (after NAT): src is the real backend. */
  reply: FlowKey;
  /** The rule that set up the NAT, if any. */
  rule?: string;
}

export interface ServiceNatStage {
  /** Called once per new connection; see NatDecision. */
  onNewConnection(pkt: ParsedPacket, ctx: StageContext): NatDecision | undefined;
  /** Called when a connection this stage translated leaves the conntrack table. */
  onConnectionClosed?(conn: ConnectionInfo): void;
  /**
   * Called once when a TCP connection this stage translated stops being open (FIN or RST seen):
   * IPVS then counts it as inactive, which is what lc/wlc/sed/nq weigh.
   */
  onConnectionInactive?(conn: ConnectionInfo): void;
}

export interface PolicyContext extends StageContext {
  /**
   * "egress": the flow leaves a pod of this node (checked at the source's node);
   * "ingress": the flow enters a pod of this node (checked at the destination's node).
   * A pod-to-pod flow on one node is checked twice, egress then ingress.
   */
  direction: "ingress" | "egress";
  /** The pod the verdict is about (the source for egress, the destination for ingress). */
  podIP: string;
}

export interface PolicyVerdict {
  allowed: boolean;
  /** "namespace/name" of the NetworkPolicy that allowed (or isolated) the pod. */
  policy?: string;
  /** Free text for flow events, e.g. "no policy selects the pod" or "isolated, no rule allowed". */
  reason?: string;
}

export interface PolicyStage {
  /** `flow` is after Service DNAT (destination = the backend) and before masquerade. */
  verdict(flow: FlowKey, ctx: PolicyContext): PolicyVerdict;
}
