import { Registry } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import { buildTCP, buildUDP } from "../build.ts";
import { Conntrack, formatConntrackEntry } from "../conntrack.ts";
import { FlowLog } from "../flows.ts";
import { parseIP } from "../ip.ts";
import { IPPROTO_UDP, TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN } from "../packet.ts";
import { isParseError, parsePacket } from "../parse.ts";
import type { Output } from "../pipeline.ts";
import { validateFault, type Fault } from "./model.ts";
import { FaultStage, registerFaultMetrics } from "./stage.ts";

const CLIENT = parseIP("10.244.1.5");
const SVC = parseIP("10.96.0.20");
const NODE = "172.18.0.2";

const stages: FaultStage[] = [];
afterEach(() => {
  for (const s of stages.splice(0)) s.stop();
});

function harness(faults: Partial<Fault>[], conntrack?: Conntrack) {
  const sent: { to: string; pkt: Buffer; at: number }[] = [];
  const out: Output = {
    toPod: (ip, pkt) => sent.push({ to: `pod ${ip}`, pkt, at: performance.now() }),
    toHost: (pkt) => sent.push({ to: "host", pkt, at: performance.now() }),
    toOverlay: (ip, pkt) => sent.push({ to: `overlay ${ip}`, pkt, at: performance.now() }),
  };
  const registry = new Registry();
  const flows = new FlowLog(100);
  const stage = new FaultStage(
    faults.map((f) => validateFault(f)),
    {
      nodeName: "node-1",
      nodeIP: NODE,
      isLocalPod: (ip) => ip === CLIENT,
      flush: () => {},
      flows,
      metrics: registerFaultMetrics(registry),
      conntrack,
    },
  );
  stages.push(stage);
  return { sent, out, wrapped: stage.wrap(out), stage, flows, registry };
}

/** A Service's reply to the client, as the client's node hands it out after undoing the DNAT. */
const reply = (seq: number, payload: number, flags = TCP_ACK | TCP_PSH) =>
  buildTCP(
    { src: SVC, dst: CLIENT, srcPort: 80, dstPort: 40000, seq, ack: 1, flags },
    Buffer.alloc(payload, 0x61),
  );

describe("fault stage: Service replies", () => {
  it("limit-data passes data up to the limit, then resets the client and drops the rest", async () => {
    const h = harness([{ id: "l", kind: "limit-data", target: { service: "10.96.0.20:80" }, bytes: 2500 }]);
    expect(h.wrapped).not.toBe(h.out);
    h.wrapped.toPod(CLIENT, reply(1000, 1000));
    h.wrapped.toPod(CLIENT, reply(2000, 1000));
    h.wrapped.toPod(CLIENT, reply(3000, 1000));
    h.wrapped.toPod(CLIENT, reply(4000, 1000));
    expect(h.sent).toHaveLength(3);
    const rst = parsePacket(h.sent[2]!.pkt, { verifyTransportChecksum: true });
    if (isParseError(rst)) throw new Error(rst.error);
    expect(rst).toMatchObject({ srcAddr: SVC, srcPort: 80, dstAddr: CLIENT, dstPort: 40000 });
    expect(rst.tcpFlags & TCP_RST).toBeTruthy();
    expect(rst.data.readUInt32BE(rst.l4Offset + 4)).toBe(3000);
    // Another connection to the same Service has its own budget.
    h.wrapped.toPod(
      CLIENT,
      buildTCP(
        { src: SVC, dst: CLIENT, srcPort: 80, dstPort: 40001, seq: 1, ack: 1, flags: TCP_ACK },
        Buffer.alloc(100),
      ),
    );
    expect(h.sent).toHaveLength(4);
    expect(h.flows.recent(10).map((e) => [e.reason, e.verdict])).toEqual([
      ["fault:l limit-data", "REJECTED"],
    ]);
    const metric = (await h.registry.getSingleMetric("klab_fault_packets_total")!.get()).values;
    expect(metric.map((m) => [m.labels.action, m.value])).toEqual([
      ["reset", 1],
      ["dropped", 1],
    ]);
  });

  it("slow-close holds the Service's FIN back, and only the FIN", async () => {
    const h = harness([{ id: "s", kind: "slow-close", target: { service: "10.96.0.20:80" }, delayMs: 150 }]);
    const start = performance.now();
    h.wrapped.toPod(CLIENT, reply(1000, 500));
    h.wrapped.toPod(CLIENT, reply(1500, 0, TCP_ACK | TCP_FIN));
    expect(h.sent).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 400));
    expect(h.sent).toHaveLength(2);
    expect(h.sent[1]!.at - start).toBeGreaterThanOrEqual(140);
    expect(h.sent[1]!.pkt[33]! & TCP_FIN).toBeTruthy();
  });
});

describe("fault stage: conntrack-fill", () => {
  it("fills the table to the fault's nf_conntrack_max, drops new connections, keeps known ones, and empties on stop", async () => {
    const ct = new Conntrack({ max: 100_000 });
    const known = ct.create(
      { proto: IPPROTO_UDP, src: CLIENT, srcPort: 5000, dst: SVC, dstPort: 53 },
      { proto: IPPROTO_UDP, src: SVC, srcPort: 53, dst: CLIENT, dstPort: 5000 },
      { source: "pod" },
    );
    expect(known).toBeDefined();
    const h = harness([{ id: "f", kind: "conntrack-fill", target: { node: NODE }, max: 300 }], ct);
    expect(ct.max).toBe(300);
    expect(ct.size).toBe(300);
    expect(h.stage.conntrackFillEntries).toBe(299);
    const filler = [...ct.entries()][1]!;
    expect(formatConntrackEntry(filler, ct.secondsLeft(filler))).toMatch(
      /^udp {6}17 30 src=198\.18\.0\.0 dst=172\.18\.0\.2 sport=1024 dport=53 \[UNREPLIED\] src=172\.18\.0\.2 dst=198\.18\.0\.0 sport=53 dport=1024 mark=0 use=1$/,
    );
    const udp = (srcPort: number) =>
      buildUDP({ src: CLIENT, dst: SVC, srcPort, dstPort: 53 }, Buffer.alloc(20));
    expect(h.stage.ingress(udp(5001), { kind: "pod", podIP: CLIENT }, h.out)).toBe(true);
    expect(h.stage.ingress(udp(5000), { kind: "pod", podIP: CLIENT }, h.out)).toBe(false);
    expect(h.flows.recent(10).map((e) => e.reason)).toEqual([
      "fault:f conntrack-fill: nf_conntrack: table full, dropping packet",
    ]);
    const metric = (await h.registry.getSingleMetric("klab_fault_packets_total")!.get()).values;
    expect(metric).toEqual([{ labels: { fault: "f", kind: "conntrack-fill", action: "dropped" }, value: 1 }]);
    h.stage.stop();
    expect(ct.max).toBe(100_000);
    expect(ct.size).toBe(1);
  });

  it("keeps the table full when another connection's entry goes: the flood takes the slot first", () => {
    const ct = new Conntrack({ max: 100_000 });
    const known = ct.create(
      { proto: IPPROTO_UDP, src: CLIENT, srcPort: 5000, dst: SVC, dstPort: 53 },
      { proto: IPPROTO_UDP, src: SVC, srcPort: 53, dst: CLIENT, dstPort: 5000 },
      { source: "pod" },
    )!;
    const h = harness([{ id: "f", kind: "conntrack-fill", target: { node: NODE }, max: 50 }], ct);
    ct.remove(known, "expired");
    expect(ct.size).toBe(49);
    const udp = buildUDP({ src: CLIENT, dst: SVC, srcPort: 5001, dstPort: 53 }, Buffer.alloc(20));
    expect(h.stage.ingress(udp, { kind: "pod", podIP: CLIENT }, h.out)).toBe(true);
    expect(ct.size).toBe(50);
    expect(h.stage.conntrackFillEntries).toBe(50);
    h.stage.stop();
    expect(ct.size).toBe(0);
  });

  it("leaves other nodes' tables alone", () => {
    const ct = new Conntrack();
    const h = harness([{ id: "f", kind: "conntrack-fill", target: { node: "172.18.0.9" } }], ct);
    expect(ct.size).toBe(0);
    expect(h.stage.conntrackFillEntries).toBe(0);
  });
});

describe("fault model: the new kinds", () => {
  it("validates their targets and options", () => {
    expect(
      validateFault({
        id: "k",
        kind: "kill-container",
        target: { podName: "default/web-1", container: "web" },
      }).target,
    ).toEqual({ podName: "default/web-1", container: "web" });
    expect(() => validateFault({ id: "k", kind: "kill-container", target: { podName: "web" } })).toThrow(
      /namespace\/name/,
    );
    expect(() => validateFault({ id: "z", kind: "freeze-node", target: { node: "node-1" } })).toThrow(
      /IPv4 address/,
    );
    expect(() =>
      validateFault({ id: "l", kind: "limit-data", target: { service: "10.96.0.1:443" } }),
    ).toThrow(/bytes is required/);
    expect(() =>
      validateFault({ id: "s", kind: "slow-close", target: { service: "10.96.0.1:443" }, delayMs: -1 }),
    ).toThrow(/delayMs/);
    expect(validateFault({ id: "c", kind: "conntrack-fill", target: { node: "172.18.0.3" } }).max).toBe(
      undefined,
    );
  });
});
