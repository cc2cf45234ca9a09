import { describe, expect, it } from "vitest";
import { ServiceNat, syntheticPacket } from "@klab/dataplane/nat/index.ts";
import type { StageContext } from "@klab/dataplane/stages.ts";
import { buildIptablesRules, iptablesJumpRules } from "./iptables-rules.ts";
import { buildIpvsRuleset } from "./ipvs-rules.ts";
import { ep, service, slice, tcp } from "./test-fixtures.ts";

// The proxy's rules loaded into the node dataplane's NAT, and connections decided against them.

const node = { name: "node-1", ips: ["172.29.0.3"] };
const web = service("default", "web", {
  type: "NodePort",
  clusterIP: "10.96.100.10",
  ports: [tcp("http", 80, { nodePort: 30080 })],
});
const webEps = slice(
  "default",
  "web",
  [{ name: "http", port: 8080 }],
  [ep("10.244.1.5", "node-1"), ep("10.244.2.7", "node-2"), ep("10.244.1.6", "node-1")],
);
const empty = service("default", "empty", { clusterIP: "10.96.0.99", ports: [tcp("", 80)] });

function seeded(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

function ctx(
  src: string,
  sport: number,
  dst: string,
  dport: number,
  source: StageContext["source"] = "pod",
  now = 0,
): StageContext {
  return {
    flow: { protocol: "TCP", srcIP: src, srcPort: sport, dstIP: dst, dstPort: dport },
    source,
    nodeName: "node-1",
    nodeIP: "172.29.0.3",
    isLocalPod: (ip) => ip.startsWith("10.244.1."),
    isLocalAddress: (ip) => ip === "172.29.0.3" || ip.startsWith("127."),
    now,
  };
}

const connect = (
  nat: ServiceNat,
  src: string,
  sport: number,
  dst: string,
  dport: number,
  source: StageContext["source"] = "pod",
) => nat.onNewConnection(syntheticPacket("TCP", src, sport, dst, dport), ctx(src, sport, dst, dport, source));

function iptablesNat(random = seeded(42)): ServiceNat {
  const nat = new ServiceNat({ random });
  nat.load({
    mode: "iptables",
    ensureRules: iptablesJumpRules(),
    iptablesRestore: buildIptablesRules([web, empty], [webEps], node, { clusterCIDR: "10.244.0.0/16" }),
  });
  return nat;
}

describe("kube-proxy rules in the node dataplane (iptables mode)", () => {
  it("splits 30,000 connections to a ClusterIP evenly over three endpoints", () => {
    const nat = iptablesNat();
    const counts = new Map<string, number>();
    for (let i = 0; i < 30_000; i++) {
      const d = connect(nat, "10.244.1.9", 1024 + (i % 60000), "10.96.100.10", 80);
      const to = d?.action === "DNAT" ? `${d.toIP}:${d.toPort}` : String(d?.action);
      counts.set(to, (counts.get(to) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual(["10.244.1.5:8080", "10.244.1.6:8080", "10.244.2.7:8080"]);
    for (const n of counts.values()) expect(Math.abs(n - 10_000)).toBeLessThan(600);
  });

  it("serves the NodePort on the node's own address only", () => {
    const nat = iptablesNat();
    expect(connect(nat, "203.0.113.9", 5555, "172.29.0.3", 30080, "overlay")).toMatchObject({
      action: "DNAT",
      masquerade: true,
    });
    expect(connect(nat, "203.0.113.9", 5555, "172.29.0.4", 30080, "overlay")).toBeUndefined();
  });

  it("refuses a Service without endpoints", () => {
    expect(connect(iptablesNat(), "10.244.1.9", 5555, "10.96.0.99", 80)).toMatchObject({
      action: "REJECT",
      rejectWith: "icmp-port-unreachable",
    });
  });

  it("ensures the jumps once, however many syncs follow", () => {
    const nat = iptablesNat();
    const again = buildIptablesRules([web], [webEps], node, { clusterCIDR: "10.244.0.0/16" });
    nat.load({ mode: "iptables", ensureRules: iptablesJumpRules(), iptablesRestore: again });
    const pre = nat.iptables.table("nat")?.chains.get("PREROUTING")?.rules ?? [];
    expect(pre).toHaveLength(1);
  });
});

describe("kube-proxy virtual servers in the node dataplane (ipvs mode)", () => {
  it("balances exactly round-robin and holds the Service IPs on kube-ipvs0", () => {
    const nat = new ServiceNat();
    const r = buildIpvsRuleset([web, empty], [webEps], node, { scheduler: "rr" });
    nat.load({
      mode: "ipvs",
      ipvs: r.virtualServers,
      ipvsAddresses: r.addresses,
      clusterCIDR: "10.244.0.0/16",
    });
    expect(nat.holdsAddress("10.96.100.10")).toBe(true);
    expect(nat.holdsAddress("10.96.0.99")).toBe(true);
    const got = new Map<string, number>();
    for (let i = 0; i < 3000; i++) {
      const d = connect(nat, "10.244.1.9", 1024 + i, "10.96.100.10", 80);
      if (d?.action === "DNAT") got.set(d.toIP, (got.get(d.toIP) ?? 0) + 1);
    }
    expect([...got.values()]).toEqual([1000, 1000, 1000]);
    expect(connect(nat, "10.244.1.9", 1, "10.96.0.99", 80)).toMatchObject({
      action: "REJECT",
      rejectWith: "tcp-reset",
    });
    expect(connect(nat, "203.0.113.9", 2, "172.29.0.3", 30080, "overlay")).toMatchObject({
      action: "DNAT",
      masquerade: true,
    });
  });

  it("uses only local endpoints for externalTrafficPolicy Local and keeps the client address", () => {
    const local = { ...web, spec: { ...web.spec, externalTrafficPolicy: "Local" as const } };
    const r = buildIpvsRuleset([local], [webEps], node);
    const np = r.virtualServers.find((v) => v.kind === "NodePort");
    expect(np?.realServers.map((s) => s.address)).toEqual(["10.244.1.5", "10.244.1.6"]);
    expect(np?.local).toBe(true);
    const nat = new ServiceNat();
    nat.load({ mode: "ipvs", ipvs: r.virtualServers, ipvsAddresses: r.addresses });
    expect(connect(nat, "203.0.113.9", 2, "172.29.0.3", 30080, "overlay")).toMatchObject({
      masquerade: false,
    });
  });

  it("switching mode starts from clean tables", () => {
    const nat = iptablesNat();
    const held: string[][] = [];
    nat.onHeldAddressesChanged = (added, removed) =>
      held.push([...added.map((a) => `+${a}`), ...removed.map((r) => `-${r}`)]);
    const r = buildIpvsRuleset([web], [webEps], node);
    nat.load({ mode: "ipvs", ipvs: r.virtualServers, ipvsAddresses: r.addresses });
    expect(nat.iptables.ruleCount()).toBe(0);
    nat.load({
      mode: "iptables",
      ensureRules: iptablesJumpRules(),
      iptablesRestore: buildIptablesRules([web], [webEps], node),
    });
    expect(nat.holdsAddress("10.96.100.10")).toBe(false);
    expect(nat.ipvsStage.table.size).toBe(0);
    expect(held).toEqual([["+10.96.100.10"], ["-10.96.100.10"]]);
  });
});

describe("stale UDP cleanup", () => {
  it("hands the conntrack entries to flush to the dataplane once the load is in", () => {
    const nat = new ServiceNat();
    const flushed: unknown[] = [];
    nat.onConntrackFlush = (f) => flushed.push(f);
    nat.load({ mode: "iptables", iptablesRestore: buildIptablesRules([web], [webEps], node) });
    expect(flushed).toEqual([]);
    nat.load({
      mode: "iptables",
      iptablesRestore: buildIptablesRules([web], [webEps], node),
      conntrackFlush: { udpEndpoints: ["10.244.1.3:53"], udpServiceIPs: [] },
    });
    expect(flushed).toEqual([{ udpEndpoints: ["10.244.1.3:53"], udpServiceIPs: [] }]);
  });

  it("traces the rules a connection meets", () => {
    const nat = iptablesNat(() => 0.1);
    const t = nat.trace(
      syntheticPacket("TCP", "10.244.1.9", 1, "10.96.100.10", 80),
      ctx("10.244.1.9", 1, "10.96.100.10", 80),
    );
    expect(t.decision).toMatchObject({ action: "DNAT", toIP: "10.244.1.5" });
    expect(t.rules[1]).toMatch(
      /^nat KUBE-SERVICES #1: -A KUBE-SERVICES -d 10\.96\.100\.10\/32 -p tcp -m comment --comment "default\/web:http cluster IP"/,
    );
  });
});
