import { describe, expect, it } from "vitest";
import { buildTCP } from "../build.ts";
import { parseIP } from "../ip.ts";
import { TCP_ACK, TCP_FIN, TCP_SYN } from "../packet.ts";
import { Pipeline, type Ingress, type Output } from "../pipeline.ts";
import { ServiceNat } from "./service-nat.ts";

// IPVS's ActiveConn/InActConn as the pipeline reports TCP state to the Service NAT stage: lc and
// the other weighing schedulers only balance long-lived connections if a closed one stops
// counting as active.

const PODS = ["10.244.1.5", "10.244.1.6", "10.244.1.7"];
const CLIENT = "10.244.1.9";
const VIP = "10.96.7.7";

function setup(scheduler: string) {
  const p = new Pipeline({
    nodeName: "node-a",
    nodeIP: "172.29.0.3",
    podCIDR: "10.244.1.0/24",
    now: () => 0,
    wallClock: () => 1_700_000_000_000,
  });
  for (const pod of [...PODS, CLIENT]) p.addPod(pod);
  const nat = new ServiceNat();
  nat.load({
    mode: "ipvs",
    ipvs: [
      {
        protocol: "TCP",
        address: VIP,
        port: 80,
        scheduler,
        kind: "ClusterIP",
        realServers: PODS.map((address) => ({ address, port: 8080, weight: 1 })),
      },
    ],
    ipvsAddresses: [VIP],
    clusterCIDR: "10.244.0.0/16",
  });
  p.serviceNat = nat;
  const out: Output = { toPod: () => undefined, toOverlay: () => undefined, toHost: () => undefined };
  const send = (b: Buffer, ingress: Ingress = { kind: "pod", podIP: b.readUInt32BE(12) }) =>
    p.process(b, ingress, out);
  const tcp = (src: string, dst: string, sport: number, dport: number, flags: number) =>
    buildTCP({ src: parseIP(src), dst: parseIP(dst), srcPort: sport, dstPort: dport, seq: 1, ack: 1, flags });
  const backendOf = (sport: number) =>
    [...p.conntrack.entries()].find((e) => e.original.srcPort === sport)!.reply.src;
  /** A full handshake through the Service; returns the backend it went to. */
  const open = (sport: number): string => {
    send(tcp(CLIENT, VIP, sport, 80, TCP_SYN));
    const backend = backendOf(sport);
    send(tcp(ipString(backend), CLIENT, 8080, sport, TCP_SYN | TCP_ACK));
    send(tcp(CLIENT, VIP, sport, 80, TCP_ACK));
    return ipString(backend);
  };
  const close = (sport: number, backend: string) => {
    send(tcp(CLIENT, VIP, sport, 80, TCP_FIN | TCP_ACK));
    send(tcp(backend, CLIENT, 8080, sport, TCP_FIN | TCP_ACK));
    send(tcp(CLIENT, VIP, sport, 80, TCP_ACK));
  };
  const counts = () =>
    nat.ipvsStage.table
      .lookup(6, parseIP(VIP) >>> 0, 80)!
      .dests.map((d) => [d.address, d.activeConns, d.inactConns] as const);
  return { open, close, counts };
}

function ipString(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

describe("IPVS connection counts through the pipeline", () => {
  it("moves a connection from ActiveConn to InActConn once FIN is seen", () => {
    const { open, close, counts } = setup("rr");
    const b = open(40001);
    expect(counts().find((c) => c[0] === b)).toEqual([b, 1, 0]);
    close(40001, b);
    expect(counts().find((c) => c[0] === b)).toEqual([b, 0, 1]);
  });

  it("lc sends new connections to the real server whose long-lived connections ended", () => {
    const { open, close, counts } = setup("lc");
    const held = [open(41001), open(41002), open(41003)];
    expect(new Set(held).size).toBe(3);
    close(41002, held[1]!);
    // the other two still hold an active connection (256 each); the closed one weighs 1
    expect(open(41004)).toBe(held[1]);
    expect(counts().map((c) => c[1])).toEqual([1, 1, 1]);
  });
});
