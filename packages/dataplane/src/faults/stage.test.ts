import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { buildTCP, buildUDP } from "../build.ts";
import { FlowLog } from "../flows.ts";
import { parseIP } from "../ip.ts";
import { IPPROTO_TCP, TCP_ACK, TCP_RST, TCP_SYN } from "../packet.ts";
import { isParseError, parsePacket } from "../parse.ts";
import type { Output } from "../pipeline.ts";
import { validateFault, type Fault } from "./model.ts";
import { FaultStage, registerFaultMetrics } from "./stage.ts";

const POD = parseIP("10.244.1.5");
const OTHER = parseIP("10.244.1.6");
const NODE = "172.18.0.2";
const PEER = parseIP("172.18.0.3");

function harness(faults: Partial<Fault>[], opts: { random?: () => number; now?: () => number } = {}) {
  const sent: { to: string; pkt: Buffer }[] = [];
  const out: Output = {
    toPod: (ip, pkt) => sent.push({ to: `pod ${ip}`, pkt }),
    toHost: (pkt) => sent.push({ to: "host", pkt }),
    toOverlay: (ip, pkt) => sent.push({ to: `overlay ${ip}`, pkt }),
  };
  const registry = new Registry();
  const flows = new FlowLog(100);
  const stage = new FaultStage(
    faults.map((f) => validateFault(f)),
    {
      nodeName: "node-1",
      nodeIP: NODE,
      isLocalPod: (ip) => ip === POD || ip === OTHER,
      flush: () => {},
      flows,
      metrics: registerFaultMetrics(registry),
      ...opts,
    },
  );
  return { sent, out, wrapped: stage.wrap(out), stage, flows, registry };
}

const udp = (size = 100, df = true) => {
  const p = buildUDP({ src: OTHER, dst: POD, srcPort: 1000, dstPort: 53 }, Buffer.alloc(size));
  // buildIPv4 sets DF, as Linux does on TCP and path-MTU-discovering UDP.
  if (!df) p[6] &= ~0x40;
  return p;
};

describe("fault stage", () => {
  it("is the plain Output when it holds no link faults", () => {
    const h = harness([{ id: "r", kind: "reset", target: { service: "10.96.0.10:80" } }]);
    expect(h.wrapped).toBe(h.out);
  });

  it("black-holes only packets over the MTU with DF set, silently", () => {
    const h = harness([{ id: "m", kind: "mtu", target: { pod: "10.244.1.5" }, mtu: 1000 }]);
    h.wrapped.toPod(POD, udp(2000));
    h.wrapped.toPod(POD, udp(2000, false));
    h.wrapped.toPod(POD, udp(500));
    expect(h.sent.map((s) => s.pkt.length)).toEqual([2028, 528]);
    expect(h.flows.recent(10)).toMatchObject([{ type: "drop", reason: "fault:m mtu", protocol: "UDP" }]);
  });

  it("duplicates, and corrupts past the IP header without fixing checksums", () => {
    const h = harness(
      [
        { id: "d", kind: "duplicate", target: { pod: "10.244.1.5" }, percent: 100 },
        { id: "c", kind: "corrupt", target: { pod: "10.244.1.5" }, percent: 100 },
      ],
      { random: () => 0.5 },
    );
    const original = udp(100);
    h.wrapped.toPod(POD, Buffer.from(original));
    expect(h.sent).toHaveLength(2);
    expect(h.sent[0]!.pkt.subarray(0, 20)).toEqual(original.subarray(0, 20));
    expect(h.sent[0]!.pkt.equals(original)).toBe(false);
    const parsed = parsePacket(h.sent[0]!.pkt, { verifyTransportChecksum: true });
    expect(isParseError(parsed) && parsed.error).toBe("bad-l4-checksum");
  });

  it("partitions a node from every other node, or from one peer", async () => {
    const all = harness([{ id: "p", kind: "partition", target: { node: NODE } }]);
    all.wrapped.toOverlay(PEER, udp());
    all.wrapped.toPod(POD, udp());
    expect(all.sent.map((s) => s.to)).toEqual([`pod ${POD}`]);
    const one = harness([{ id: "p", kind: "partition", target: { node: NODE, peer: "172.18.0.9" } }]);
    one.wrapped.toOverlay(PEER, udp());
    expect(one.sent).toHaveLength(1);
    const metric = (await all.registry.getSingleMetric("klab_fault_packets_total")!.get()).values;
    expect(metric).toEqual([{ labels: { fault: "p", kind: "partition", action: "dropped" }, value: 1 }]);
  });

  it("shapes to the rate with a token bucket and drops what would wait too long", () => {
    let now = 0;
    // 100 kB/s, a 3000-byte bucket, at most 50 ms of queue.
    const h = harness(
      [
        {
          id: "b",
          kind: "bandwidth",
          target: { pod: "10.244.1.5" },
          rateBytesPerSecond: 100_000,
          queueMs: 50,
        },
      ],
      { now: () => now },
    );
    now = 1000;
    for (let i = 0; i < 20; i++) h.wrapped.toPod(POD, udp(972)); // 1000-byte packets
    // The full bucket passes 3 at once; 5 more fit in 50 ms of queue; the rest are dropped.
    expect(h.sent).toHaveLength(3);
    expect(h.flows.recent(100, { type: "drop" })).toHaveLength(12);
    h.stage.stop();
  });

  it("answers a Service reset with an RST from the ClusterIP, and swallows a timeout", () => {
    const h = harness([
      { id: "r", kind: "reset", target: { service: "10.96.0.10:80" } },
      { id: "t", kind: "timeout", target: { service: "10.96.0.11:80" } },
    ]);
    const syn = (dst: string) =>
      buildTCP({
        src: POD,
        dst: parseIP(dst),
        srcPort: 40000,
        dstPort: 80,
        seq: 100,
        ack: 0,
        flags: TCP_SYN,
      });
    expect(h.stage.ingress(syn("10.96.0.10"), { kind: "pod", podIP: POD }, h.out)).toBe(true);
    const rst = parsePacket(h.sent[0]!.pkt, { verifyTransportChecksum: true });
    if (isParseError(rst)) throw new Error(rst.error);
    expect(h.sent[0]!.to).toBe(`pod ${POD}`);
    expect(rst).toMatchObject({
      proto: IPPROTO_TCP,
      srcAddr: parseIP("10.96.0.10"),
      srcPort: 80,
      dstPort: 40000,
    });
    expect(rst.tcpFlags).toBe(TCP_RST | TCP_ACK);
    expect(h.stage.ingress(syn("10.96.0.11"), { kind: "pod", podIP: POD }, h.out)).toBe(true);
    expect(h.sent).toHaveLength(1);
    expect(h.stage.ingress(syn("10.96.0.12"), { kind: "pod", podIP: POD }, h.out)).toBe(false);
    expect(h.stage.ingress(Buffer.from([0x45, 0]), { kind: "pod", podIP: POD }, h.out)).toBe(false);
    expect(h.flows.recent(10).map((e) => [e.reason, e.verdict])).toEqual([
      ["fault:r reset", "REJECTED"],
      ["fault:t timeout", "DROPPED"],
    ]);
  });
});
