import { describe, expect, it } from "vitest";
import { buildEchoRequest, buildTCP, buildUDP, refreshChecksums } from "./build.ts";
import { ipToString, parseIP } from "./ip.ts";
import { TCP_ACK, TCP_RST, TCP_SYN, type ParsedPacket } from "./packet.ts";
import { isParseError, parsePacket } from "./parse.ts";
import { Pipeline, type Ingress, type Output } from "./pipeline.ts";
import type { NatDecision, PolicyStage, ServiceNatStage } from "./stages.ts";

const POD_A = "10.244.1.5";
const POD_B = "10.244.1.6";
const REMOTE_POD = "10.244.2.9";
const ip = parseIP;

function setup() {
  let t = 0;
  const p = new Pipeline({
    nodeName: "node-a",
    nodeIP: "172.29.0.3",
    podCIDR: "10.244.1.0/24",
    now: () => t,
    wallClock: () => 1_700_000_000_000,
  });
  p.addPod(POD_A);
  p.addPod(POD_B);
  p.addRemoteNode("10.244.2.0/24", "172.29.0.4");
  const sent: { to: string; pkt: ParsedPacket }[] = [];
  const parse = (b: Buffer) => {
    const r = parsePacket(b, { verifyTransportChecksum: true });
    if (isParseError(r)) throw new Error(`dataplane emitted a bad packet: ${r.error}`);
    return r;
  };
  const out: Output = {
    toPod: (podIP, b) => sent.push({ to: `pod ${ipToString(podIP)}`, pkt: parse(b) }),
    toOverlay: (nodeIP, b) => sent.push({ to: `overlay ${ipToString(nodeIP)}`, pkt: parse(b) }),
    toHost: (b) => sent.push({ to: "host", pkt: parse(b) }),
  };
  const send = (b: Buffer, ingress: Ingress = { kind: "pod", podIP: b.readUInt32BE(12) }) => {
    sent.length = 0;
    p.process(b, ingress, out);
    return [...sent];
  };
  return { p, send, advance: (s: number) => (t += s * 1000) };
}

const syn = (src: string, dst: string, sport: number, dport: number, flags = TCP_SYN) =>
  buildTCP({ src: ip(src), dst: ip(dst), srcPort: sport, dstPort: dport, seq: 1000, ack: 0, flags });

describe("pipeline", () => {
  it("forwards pod to pod on the node without NAT, decrementing the TTL, and records the new flow", () => {
    const { p, send } = setup();
    const [o] = send(syn(POD_A, POD_B, 40000, 8080));
    expect(o.to).toBe(`pod ${POD_B}`);
    expect(ipToString(o.pkt.srcAddr)).toBe(POD_A);
    expect(o.pkt.ttl).toBe(63);
    const [e] = p.flows.recent();
    expect(e).toMatchObject({
      type: "new",
      verdict: "FORWARDED",
      protocol: "TCP",
      src: { ip: POD_A, port: 40000 },
      dst: { ip: POD_B, port: 8080 },
    });
    expect(e.natDst).toBeUndefined();
    const [r] = send(syn(POD_B, POD_A, 8080, 40000, TCP_SYN | TCP_ACK));
    expect(r.to).toBe(`pod ${POD_A}`);
    expect([...p.conntrack.entries()][0].tcpState).toBe("SYN_RECV");
  });

  it("sends other nodes' pod traffic to the overlay and the rest to the node", () => {
    const { send } = setup();
    expect(send(buildEchoRequest(ip(POD_A), ip(REMOTE_POD), 1, 1, Buffer.alloc(8)))[0].to).toBe(
      "overlay 172.29.0.4",
    );
    expect(send(syn(POD_A, "203.0.113.10", 40001, 80))[0].to).toBe("host");
  });

  it("applies the Service NAT stage's DNAT and un-NATs the replies from conntrack", () => {
    const { p, send } = setup();
    const seen: string[] = [];
    const nat: ServiceNatStage = {
      onNewConnection(_pkt, ctx): NatDecision | undefined {
        seen.push(`${ctx.flow.dstIP}:${ctx.flow.dstPort} from ${ctx.source}`);
        if (ctx.flow.dstIP === "10.96.0.10")
          return { action: "DNAT", toIP: REMOTE_POD, toPort: 8053, rule: "KUBE-SEP-TEST" };
        return undefined;
      },
    };
    p.serviceNat = nat;
    const [o] = send(
      buildUDP({ src: ip(POD_A), dst: ip("10.96.0.10"), srcPort: 5353, dstPort: 53 }, Buffer.from("q")),
    );
    expect(o.to).toBe("overlay 172.29.0.4");
    expect([ipToString(o.pkt.dstAddr), o.pkt.dstPort, ipToString(o.pkt.srcAddr)]).toEqual([
      REMOTE_POD,
      8053,
      POD_A,
    ]);
    const reply = buildUDP(
      { src: ip(REMOTE_POD), dst: ip(POD_A), srcPort: 8053, dstPort: 5353 },
      Buffer.from("a"),
    );
    const [r] = send(reply, { kind: "overlay", fromNodeIP: ip("172.29.0.4") });
    expect(r.to).toBe(`pod ${POD_A}`);
    expect([ipToString(r.pkt.srcAddr), r.pkt.srcPort]).toEqual(["10.96.0.10", 53]);
    // Only the first packet of the connection consults the stage.
    send(buildUDP({ src: ip(POD_A), dst: ip("10.96.0.10"), srcPort: 5353, dstPort: 53 }, Buffer.from("q2")));
    expect(seen).toEqual(["10.96.0.10:53 from pod"]);
    expect(p.flows.recent(10, { type: "new" })[0]).toMatchObject({
      natDst: { ip: REMOTE_POD, port: 8053 },
      rule: "KUBE-SEP-TEST",
    });
  });

  it("masquerades with a free port when asked (hairpin: a pod reaching itself through its Service)", () => {
    const { p, send } = setup();
    p.serviceNat = { onNewConnection: () => ({ action: "DNAT", toIP: POD_A, toPort: 80, masquerade: true }) };
    const [o] = send(syn(POD_A, "10.96.5.5", 41000, 80));
    expect(o.to).toBe(`pod ${POD_A}`);
    expect(ipToString(o.pkt.srcAddr)).toBe("10.244.1.1");
    const [r] = send(
      buildTCP({
        src: ip(POD_A),
        dst: ip("10.244.1.1"),
        srcPort: 80,
        dstPort: o.pkt.srcPort,
        seq: 5,
        ack: 1001,
        flags: TCP_SYN | TCP_ACK,
      }),
    );
    expect([ipToString(r.pkt.srcAddr), r.pkt.srcPort, ipToString(r.pkt.dstAddr), r.pkt.dstPort]).toEqual([
      "10.96.5.5",
      80,
      POD_A,
      41000,
    ]);
  });

  it("refuses at once when the stage rejects (a Service without endpoints)", () => {
    const { p, send } = setup();
    p.serviceNat = { onNewConnection: () => ({ action: "REJECT", rule: "KUBE-SVC-NOENDPOINTS" }) };
    const [o] = send(syn(POD_A, "10.96.7.7", 42000, 80));
    expect(o.to).toBe(`pod ${POD_A}`);
    expect([o.pkt.icmpType, o.pkt.icmpCode]).toEqual([3, 3]);
    expect(o.pkt.inner).toMatchObject({ dstAddr: ip("10.96.7.7"), dstPort: 80 });
    p.serviceNat = { onNewConnection: () => ({ action: "REJECT", rejectWith: "tcp-reset" }) };
    const [rst] = send(syn(POD_A, "10.96.7.7", 42001, 80));
    expect(rst.pkt.tcpFlags & TCP_RST).toBeTruthy();
    expect(p.flows.recent(1)[0]).toMatchObject({ verdict: "REJECTED" });
  });

  it("asks the policy stage after DNAT, egress then ingress, and drops silently when denied", () => {
    const { p, send } = setup();
    const asked: string[] = [];
    const policy: PolicyStage = {
      verdict(flow, ctx) {
        asked.push(`${ctx.direction} ${ctx.podIP} ${flow.dstIP}:${flow.dstPort}`);
        return ctx.direction === "ingress"
          ? { allowed: false, policy: "default/deny-all", reason: "isolated" }
          : { allowed: true };
      },
    };
    p.policy = policy;
    p.serviceNat = {
      onNewConnection: (pkt) =>
        pkt.dstPort === 80 ? { action: "DNAT", toIP: POD_B, toPort: 8080 } : undefined,
    };
    expect(send(syn(POD_A, "10.96.1.1", 43000, 80))).toEqual([]);
    expect(asked).toEqual([`egress ${POD_A} ${POD_B}:8080`, `ingress ${POD_B} ${POD_B}:8080`]);
    expect(p.flows.recent(1)[0]).toMatchObject({
      verdict: "DROPPED",
      reason: "isolated",
      policy: "default/deny-all",
      natDst: { ip: POD_B },
    });
    expect(p.stats.dropped("policy-denied-ingress")).toBe(1);
    expect(p.conntrack.size).toBe(0);
  });

  it("keeps established connections when policy changes (only new connections are checked)", () => {
    const { p, send } = setup();
    send(syn(POD_A, POD_B, 44000, 80));
    p.policy = { verdict: () => ({ allowed: false }) };
    expect(send(syn(POD_B, POD_A, 80, 44000, TCP_SYN | TCP_ACK))).toHaveLength(1);
    expect(send(syn(POD_A, POD_B, 44001, 80))).toHaveLength(0);
  });

  it("answers ping for its own addresses and refuses other traffic to them", () => {
    const { p, send } = setup();
    p.addLocalAddress("10.96.0.10");
    for (const addr of ["10.244.1.1", "10.96.0.10"]) {
      const [o] = send(buildEchoRequest(ip(POD_A), ip(addr), 7, 1, Buffer.from("abc")));
      expect([o.to, o.pkt.icmpType, ipToString(o.pkt.srcAddr)]).toEqual([`pod ${POD_A}`, 0, addr]);
    }
    const [rst] = send(syn(POD_A, "10.244.1.1", 45000, 22));
    expect(rst.pkt.tcpFlags & TCP_RST).toBeTruthy();
    p.answerPing = false;
    expect(send(buildEchoRequest(ip(POD_A), ip("10.244.1.1"), 7, 2, Buffer.alloc(0)))).toEqual([]);
  });

  it("counts and drops malformed, spoofed, unroutable and expired packets, with reasons", () => {
    const { p, send } = setup();
    const good = buildUDP({ src: ip(POD_A), dst: ip(POD_B), srcPort: 1, dstPort: 2 }, Buffer.from("x"));
    const bad = Buffer.from(good);
    bad[10] ^= 0xff;
    const pod = { kind: "pod", podIP: ip(POD_A) } as const;
    send(Buffer.from([0x45, 0, 0]), pod);
    send(bad, pod);
    send(buildUDP({ src: ip("10.244.1.77"), dst: ip(POD_B), srcPort: 1, dstPort: 2 }, Buffer.alloc(1)), pod);
    const toNowhere = send(
      buildUDP({ src: ip(POD_A), dst: ip("10.244.1.200"), srcPort: 1, dstPort: 2 }, Buffer.alloc(1)),
      pod,
    );
    expect(toNowhere[0].pkt.icmpType).toBe(3);
    const ttl1 = send(
      buildUDP({ src: ip(POD_A), dst: ip(POD_B), srcPort: 9, dstPort: 2, ttl: 1 }, Buffer.alloc(1)),
      pod,
    );
    expect(ttl1[0].pkt.icmpType).toBe(11);
    send(syn(POD_A, POD_B, 46000, 80, TCP_RST), pod);
    expect(Object.fromEntries(p.stats.drops)).toEqual({
      "short-packet": 1,
      "bad-ip-checksum": 1,
      "source-address-mismatch": 1,
      "no-route": 1,
      "ttl-exceeded": 1,
      "conntrack-invalid": 1,
    });
    expect(p.flows.recent(10, { verdict: "DROPPED" }).map((e) => e.reason)).toContain("bad-ip-checksum");
  });

  it("never throws on random bytes and survives a stage that throws", () => {
    const { p, send } = setup();
    p.serviceNat = {
      onNewConnection() {
        throw new Error("boom");
      },
    };
    expect(send(syn(POD_A, POD_B, 47000, 80))).toEqual([]);
    expect(p.stats.dropped("stage-error")).toBe(1);
    for (let i = 0; i < 3000; i++) {
      const junk = Buffer.from(syn(POD_A, POD_B, 1 + i, 80));
      junk[Math.floor(Math.random() * junk.length)] = Math.floor(Math.random() * 256);
      if (i % 2) refreshChecksums(junk);
      expect(() =>
        p.process(
          junk.subarray(0, 1 + Math.floor(Math.random() * junk.length)),
          { kind: "pod", podIP: ip(POD_A) },
          { toPod() {}, toOverlay() {}, toHost() {} },
        ),
      ).not.toThrow();
    }
  });

  it("tells the NAT stage when a connection it translated ends, and records the bytes", () => {
    const { p, send, advance } = setup();
    const closed: string[] = [];
    p.serviceNat = {
      onNewConnection: () => ({ action: "DNAT", toIP: POD_B, toPort: 8080, rule: "ipvs" }),
      onConnectionClosed: (c) => closed.push(`${c.original.dstIP} -> ${c.reply.srcIP}:${c.reply.srcPort}`),
    };
    send(buildUDP({ src: ip(POD_A), dst: ip("10.96.0.10"), srcPort: 5000, dstPort: 53 }, Buffer.alloc(10)));
    advance(31);
    p.conntrack.sweep();
    expect(closed).toEqual([`10.96.0.10 -> ${POD_B}:8080`]);
    expect(p.flows.recent(1)[0]).toMatchObject({ type: "end", reason: "expired", bytes: 38, packets: 1 });
  });

  it("picks a TCP connection up mid-stream (nf_conntrack_tcp_loose) and re-decides NAT for a reused tuple", () => {
    const { p, send } = setup();
    expect(send(syn(POD_A, POD_B, 48000, 80, TCP_ACK))).toHaveLength(1);
    expect([...p.conntrack.entries()][0].tcpState).toBe("ESTABLISHED");
    send(syn(POD_A, POD_B, 48000, 80, TCP_RST));
    const first = [...p.conntrack.entries()][0].id;
    expect(send(syn(POD_A, POD_B, 48000, 80))).toHaveLength(1);
    expect([...p.conntrack.entries()][0].id).not.toBe(first);
  });
});

describe("pipeline and the node's own connections", () => {
  it("hands replies to a connection the node opened from its overlay address back to the node", () => {
    const { send } = setup();
    const out = send(syn("10.244.1.0", REMOTE_POD, 50000, 80), { kind: "node" });
    expect(out[0].to).toBe("overlay 172.29.0.4");
    const reply = send(syn(REMOTE_POD, "10.244.1.0", 80, 50000, TCP_SYN | TCP_ACK), {
      kind: "overlay",
      fromNodeIP: ip("172.29.0.4"),
    });
    expect(reply.map((o) => o.to)).toEqual(["host"]);
  });
});

describe("pipeline and ICMP errors", () => {
  it("translates an error from a Service backend back to what the client sent (RELATED)", async () => {
    const { icmpErrorFor } = await import("./build.ts");
    const { p, send } = setup();
    p.serviceNat = { onNewConnection: () => ({ action: "DNAT", toIP: POD_B, toPort: 5353 }) };
    const [o] = send(
      buildUDP({ src: ip(POD_A), dst: ip("10.96.0.10"), srcPort: 4000, dstPort: 53 }, Buffer.from("q")),
    );
    // The backend's kernel answers "port unreachable", quoting the packet as it received it.
    const err = icmpErrorFor(o.pkt, 3, 3, ip(POD_B))!;
    const [back] = send(err, { kind: "pod", podIP: ip(POD_B) });
    expect(back.to).toBe(`pod ${POD_A}`);
    expect([ipToString(back.pkt.srcAddr), ipToString(back.pkt.dstAddr), back.pkt.icmpType]).toEqual([
      "10.96.0.10",
      POD_A,
      3,
    ]);
    expect(back.pkt.inner).toMatchObject({
      srcAddr: ip(POD_A),
      srcPort: 4000,
      dstAddr: ip("10.96.0.10"),
      dstPort: 53,
    });
    // An error about no known connection is dropped.
    const stray = icmpErrorFor(
      parsePacket(
        buildUDP({ src: ip(POD_A), dst: ip(POD_B), srcPort: 9, dstPort: 9 }, Buffer.alloc(1)),
      ) as ParsedPacket,
      3,
      3,
      ip(POD_B),
    )!;
    expect(send(stray, { kind: "pod", podIP: ip(POD_B) })).toEqual([]);
  });
});

describe("pipeline and INVALID packets", () => {
  it("drops them when forwarded, lets the node's own through (replies may bypass this node)", () => {
    const { p, send } = setup();
    // The node opens a connection to a remote pod; the SYN-ACK returns kernel to kernel.
    expect(send(syn("172.29.0.3", REMOTE_POD, 51000, 80), { kind: "node" })).toHaveLength(1);
    expect(send(syn("172.29.0.3", REMOTE_POD, 51000, 80, TCP_ACK), { kind: "node" })[0].to).toBe(
      "overlay 172.29.0.4",
    );
    expect(send(syn("172.29.0.3", REMOTE_POD, 51001, 80, TCP_RST), { kind: "node" })).toHaveLength(1);
    // The same from a pod is dropped.
    send(syn(POD_A, REMOTE_POD, 52000, 80));
    expect(send(syn(POD_A, REMOTE_POD, 52000, 80, TCP_SYN | TCP_ACK))).toEqual([]);
    expect(p.stats.dropped("conntrack-invalid")).toBe(1);
  });
});
