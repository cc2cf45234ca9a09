import { describe, expect, it } from "vitest";
import { formatIPv4, parseIPv4 } from "../ip.ts";
import { IpvsNatStage } from "../ipvs-stage.ts";
import { syntheticPacket } from "../iptables-stage.ts";
import type { StageContext } from "../../stages.ts";
import { ipvsadmList } from "./ipvsadm.ts";
import { createScheduler, hash32, type Dest } from "./schedulers.ts";
import { IpvsError, IpvsTable, type VirtualServer } from "./table.ts";

const ip = (s: string) => parseIPv4(s) as number;

function dests(...weights: number[]): Dest[] {
  return weights.map((w, i) => ({
    addr: ip(`10.244.1.${i + 1}`),
    port: 80,
    weight: w,
    activeConns: 0,
    inactConns: 0,
  }));
}
const letter = (ds: Dest[], d: Dest | undefined) => (d ? "ABCDEFGH"[ds.indexOf(d)] : "-");
const input = (src = "10.244.9.9", srcPort = 40000, dst = "10.96.0.10") => ({
  srcAddr: ip(src),
  srcPort,
  dstAddr: ip(dst),
  now: 0,
});

function picks(name: "rr" | "wrr", ds: Dest[], n: number): string {
  const s = createScheduler(name);
  s.update(ds);
  let out = "";
  for (let i = 0; i < n; i++) out += letter(ds, s.schedule(ds, input()));
  return out;
}

describe("IPVS schedulers (kernel algorithms)", () => {
  it("rr takes each real server in turn and skips weight 0", () => {
    expect(picks("rr", dests(1, 1, 1), 7)).toBe("ABCABCA");
    expect(picks("rr", dests(1, 0, 1), 4)).toBe("ACAC");
  });

  it("wrr with weights 4, 3, 2 gives the kernel's interleaved sequence", () => {
    expect(picks("wrr", dests(4, 3, 2), 18)).toBe("AABABCABC" + "AABABCABC");
    // weights with a common divisor step by the gcd
    expect(picks("wrr", dests(4, 2), 6)).toBe("AABAAB");
  });

  it("lc picks the least connections, counting active 256 times inactive, first on ties", () => {
    const ds = dests(1, 1, 1);
    ds[0].activeConns = 1;
    ds[1].inactConns = 200;
    ds[2].inactConns = 200;
    const lc = createScheduler("lc");
    expect(letter(ds, lc.schedule(ds, input()))).toBe("B");
    ds[1].inactConns = 300;
    expect(letter(ds, lc.schedule(ds, input()))).toBe("C");
    ds[0].activeConns = 0;
    expect(letter(ds, lc.schedule(ds, input()))).toBe("A");
  });

  it("lc keeps long-lived connections balanced as they come and go", () => {
    const ds = dests(1, 1, 1);
    const lc = createScheduler("lc");
    for (let i = 0; i < 30; i++) lc.schedule(ds, input())!.activeConns++;
    expect(ds.map((d) => d.activeConns)).toEqual([10, 10, 10]);
    ds[1].activeConns = 2; // eight of B's connections ended
    for (let i = 0; i < 8; i++) lc.schedule(ds, input())!.activeConns++;
    expect(ds.map((d) => d.activeConns)).toEqual([10, 10, 10]);
  });

  it("wlc weighs overhead by weight; sed and nq differ on an idle server", () => {
    const ds = dests(1, 4);
    ds[1].activeConns = 2;
    // wlc: A 0/1 vs B 512/4 → A.  sed: (0+1)/1 = 1 vs (2+1)/4 = 0.75 → B.  nq: A is idle → A.
    expect(letter(ds, createScheduler("wlc").schedule(ds, input()))).toBe("A");
    expect(letter(ds, createScheduler("sed").schedule(ds, input()))).toBe("B");
    expect(letter(ds, createScheduler("nq").schedule(ds, input()))).toBe("A");
  });

  it("sh sends a client address to the same real server every time, and spreads addresses", () => {
    const ds = dests(1, 1, 1);
    const sh = createScheduler("sh");
    sh.update(ds);
    const first = sh.schedule(ds, input("10.244.3.3", 1000));
    for (let p = 1001; p < 1100; p++) expect(sh.schedule(ds, input("10.244.3.3", p))).toBe(first);
    // The bucket is hash_32(addr, 8) and the 256 buckets are dealt out in turn.
    const bucket = hash32(ip("10.244.3.3"), 8);
    expect(first).toBe(ds[bucket % 3]);
    const used = new Set<Dest | undefined>();
    for (let i = 1; i <= 60; i++) used.add(sh.schedule(ds, input(`10.244.5.${i}`)));
    expect(used.size).toBe(3);
    // A real server at weight 0 is unavailable: its clients get no server (no sh-fallback).
    const mine = ds.indexOf(first as Dest);
    ds[mine].weight = 0;
    expect(sh.schedule(ds, input("10.244.3.3", 1000))).toBeUndefined();
    const withFallback = createScheduler("sh", ["sh-fallback"]);
    withFallback.update(ds);
    expect(withFallback.schedule(ds, input("10.244.3.3", 1000))).toBeDefined();
  });

  it("dh hashes the destination address, so one VIP always maps to one real server", () => {
    const ds = dests(1, 1, 1);
    const dh = createScheduler("dh");
    dh.update(ds);
    const vip = "10.96.0.10";
    const bucket = Math.imul(ip(vip), 2654435761 | 0) & 255;
    const expected = ds[bucket % 3];
    for (let i = 1; i < 50; i++)
      expect(dh.schedule(ds, input(`10.244.7.${i}`, 30000 + i, vip))).toBe(expected);
  });

  it("lblc sticks a destination to a server until it is overloaded", () => {
    const ds = dests(2, 2);
    const s = createScheduler("lblc");
    const first = s.schedule(ds, input()) as Dest;
    expect(s.schedule(ds, input())).toBe(first);
    first.activeConns = 3; // above its weight while the other is under half of its own
    expect(s.schedule(ds, input())).not.toBe(first);
  });

  it("mh builds a full Maglev table and keeps a client on one server", () => {
    const ds = dests(1, 1, 1);
    const mh = createScheduler("mh");
    mh.update(ds);
    const a = mh.schedule(ds, input("10.244.3.3"));
    expect(a).toBeDefined();
    for (let i = 0; i < 10; i++) expect(mh.schedule(ds, input("10.244.3.3", 1000 + i))).toBe(a);
    const used = new Set<Dest | undefined>();
    for (let i = 1; i <= 60; i++) used.add(mh.schedule(ds, input(`10.244.5.${i}`)));
    expect(used.size).toBe(3);
  });
});

const vs = (rs: Array<[string, number]>, extra: Partial<VirtualServer> = {}): VirtualServer => ({
  protocol: "TCP",
  address: "10.96.100.10",
  port: 80,
  scheduler: "rr",
  service: "default/web:http",
  kind: "ClusterIP",
  realServers: rs.map(([a, w]) => ({ address: a, port: 8080, weight: w })),
  ...extra,
});

function ctx(src: string, sport: number, dst = "10.96.100.10", dport = 80, now = 0): StageContext {
  return {
    flow: { protocol: "TCP", srcIP: src, srcPort: sport, dstIP: dst, dstPort: dport },
    source: "pod",
    nodeName: "node-1",
    nodeIP: "172.29.0.3",
    isLocalPod: () => false,
    isLocalAddress: () => false,
    now,
  };
}

function connect(stage: IpvsNatStage, src: string, sport: number, dst = "10.96.100.10", dport = 80, now = 0) {
  return stage.onNewConnection(
    syntheticPacket("TCP", src, sport, dst, dport),
    ctx(src, sport, dst, dport, now),
  );
}

function close(stage: IpvsNatStage, src: string, sport: number, dst = "10.96.100.10", dport = 80) {
  const original = { protocol: "TCP" as const, srcIP: src, srcPort: sport, dstIP: dst, dstPort: dport };
  stage.onConnectionClosed({ id: 0, original, reply: original });
}

describe("IPVS NAT stage", () => {
  it("balances exactly round-robin over three endpoints", () => {
    const stage = new IpvsNatStage();
    stage.load({
      virtualServers: [
        vs([
          ["10.244.1.5", 1],
          ["10.244.1.6", 1],
          ["10.244.2.7", 1],
        ]),
      ],
      clusterCIDR: "10.244.0.0/16",
    });
    const got: string[] = [];
    for (let i = 0; i < 3000; i++) {
      const d = connect(stage, "10.244.3.3", 10000 + i);
      got.push(d?.action === "DNAT" ? d.toIP : "none");
    }
    for (const a of ["10.244.1.5", "10.244.1.6", "10.244.2.7"])
      expect(got.filter((g) => g === a)).toHaveLength(1000);
    expect(got.slice(0, 4)).toEqual(["10.244.1.5", "10.244.1.6", "10.244.2.7", "10.244.1.5"]);
  });

  it("masquerades as kube-proxy's ipsets do: outsiders to a cluster IP, hairpin, NodePort unless Local", () => {
    const stage = new IpvsNatStage();
    stage.load({
      virtualServers: [
        vs([["10.244.1.5", 1]]),
        vs([["10.244.1.5", 1]], { address: "172.29.0.3", port: 30080, kind: "NodePort" }),
        vs([["10.244.1.5", 1]], { address: "172.29.0.3", port: 30081, kind: "NodePort", local: true }),
      ],
      clusterCIDR: "10.244.0.0/16",
    });
    expect(connect(stage, "10.244.3.3", 1)).toMatchObject({
      action: "DNAT",
      toIP: "10.244.1.5",
      toPort: 8080,
      masquerade: false,
    });
    expect(connect(stage, "172.29.0.4", 2)).toMatchObject({ masquerade: true });
    expect(connect(stage, "10.244.1.5", 3)).toMatchObject({ masquerade: true });
    expect(connect(stage, "203.0.113.9", 4, "172.29.0.3", 30080)).toMatchObject({ masquerade: true });
    expect(connect(stage, "203.0.113.9", 5, "172.29.0.3", 30081)).toMatchObject({ masquerade: false });
    expect(connect(stage, "203.0.113.9", 6, "172.29.0.4", 30080)).toBeUndefined();
  });

  it("holds every Service IP on kube-ipvs0 so that they answer ping", () => {
    const stage = new IpvsNatStage();
    stage.load({ virtualServers: [vs([])], addresses: ["10.96.100.10", "10.96.0.1"] });
    expect(stage.holdsAddress("10.96.100.10")).toBe(true);
    expect(stage.holdsAddress("10.96.100.11")).toBe(false);
    expect(stage.heldAddresses()).toEqual(["10.96.0.1", "10.96.100.10"]);
  });

  it("refuses a connection at once when the virtual server has no real server", () => {
    const stage = new IpvsNatStage();
    stage.load({ virtualServers: [vs([])] });
    expect(connect(stage, "10.244.3.3", 1)).toMatchObject({ action: "REJECT", rejectWith: "tcp-reset" });
  });

  it("pins a client with persistence (sessionAffinity ClientIP) and counts the template as inactive", () => {
    const stage = new IpvsNatStage();
    stage.load({
      virtualServers: [
        vs(
          [
            ["10.244.1.5", 1],
            ["10.244.1.6", 1],
          ],
          { persistentTimeout: 10800 },
        ),
      ],
    });
    const first = connect(stage, "10.244.3.3", 1);
    for (let i = 2; i < 50; i++)
      expect(connect(stage, "10.244.3.3", i, undefined, undefined, i * 1000)).toEqual({
        ...first,
        rule: (first as { rule: string }).rule.replace(" -> ", " persistent -> "),
      });
    const other = connect(stage, "10.244.3.4", 1);
    expect(other).not.toEqual(first);
    const text = ipvsadmList(stage.table);
    expect(text).toContain("TCP  10.96.100.10:80 rr persistent 10800");
    expect(text).toMatch(/-> 10\.244\.1\.5:8080\s+Masq\s+1\s+49\s+1\n/);
  });

  it("drains a removed real server at weight 0 and deletes it when its last connection ends", () => {
    const stage = new IpvsNatStage();
    stage.load({
      virtualServers: [
        vs([
          ["10.244.1.5", 1],
          ["10.244.1.6", 1],
        ]),
      ],
    });
    connect(stage, "10.244.3.3", 1); // → .5
    connect(stage, "10.244.3.3", 2); // → .6
    stage.load({ virtualServers: [vs([["10.244.1.6", 1]])] });
    expect(ipvsadmList(stage.table)).toMatch(/-> 10\.244\.1\.5:8080\s+Masq\s+0\s+1\s+0/);
    // New connections never go to the draining server.
    for (let i = 3; i < 10; i++)
      expect(connect(stage, "10.244.3.3", i)).toMatchObject({ toIP: "10.244.1.6" });
    close(stage, "10.244.3.3", 1);
    expect(ipvsadmList(stage.table)).not.toContain("10.244.1.5");
  });

  it("removes UDP real servers at once (nothing to wait for)", () => {
    const stage = new IpvsNatStage();
    const udp = (rs: Array<[string, number]>) => vs(rs, { protocol: "UDP", address: "10.96.0.10", port: 53 });
    stage.load({
      virtualServers: [
        udp([
          ["10.244.1.5", 1],
          ["10.244.1.6", 1],
        ]),
      ],
    });
    stage.load({ virtualServers: [udp([["10.244.1.6", 1]])] });
    expect(stage.table.list()[0].dests.map((d) => d.address)).toEqual(["10.244.1.6"]);
  });

  it("prints ipvsadm -Ln and --stats in ipvsadm's layout", () => {
    const stage = new IpvsNatStage();
    stage.load({
      virtualServers: [
        vs([
          ["10.244.1.6", 1],
          ["10.244.1.5", 1],
        ]),
        {
          ...vs([["10.244.1.3", 1]]),
          protocol: "UDP",
          address: "10.96.0.10",
          port: 53,
          realServers: [{ address: "10.244.1.3", port: 53, weight: 1 }],
        },
      ],
    });
    connect(stage, "10.244.3.3", 1);
    expect(ipvsadmList(stage.table)).toBe(
      [
        "IP Virtual Server version 1.2.1 (size=4096)",
        "Prot LocalAddress:Port Scheduler Flags",
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
        "TCP  10.96.100.10:80 rr",
        "  -> 10.244.1.5:8080              Masq    1      0          0",
        "  -> 10.244.1.6:8080              Masq    1      1          0",
        "UDP  10.96.0.10:53 rr",
        "  -> 10.244.1.3:53                Masq    1      0          0",
        "",
      ].join("\n"),
    );
    const stats = ipvsadmList(stage.table, { stats: true });
    expect(stats.split("\n").slice(1, 5)).toEqual([
      "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes",
      "  -> RemoteAddress:Port",
      "TCP  10.96.100.10:80                     1        0        0        0        0",
      "  -> 10.244.1.5:8080                     0        0        0        0        0",
    ]);
  });

  it("rejects a bad table with a clear error and keeps the old one", () => {
    const stage = new IpvsNatStage();
    stage.load({ virtualServers: [vs([["10.244.1.5", 1]])] });
    expect(() => stage.load({ virtualServers: [vs([["10.244.1.5", 1]], { scheduler: "fastest" })] })).toThrow(
      /unknown scheduler "fastest"/,
    );
    expect(() => stage.load({ virtualServers: [vs([["10.244.1.999", 1]])] })).toThrow(IpvsError);
    expect(() => stage.load({ virtualServers: [vs([]), vs([])] })).toThrow(/duplicate virtual server/);
    expect(() => stage.load({ virtualServers: "nope" as unknown as VirtualServer[] })).toThrow(
      /must be an array/,
    );
    expect(connect(stage, "10.244.3.3", 1)).toMatchObject({ toIP: "10.244.1.5" });
  });

  it("looks virtual servers up by hash: the same work at 10 or 10,000 Services", () => {
    const table = new IpvsTable();
    const many: VirtualServer[] = [];
    for (let i = 0; i < 10_000; i++) {
      many.push(vs([["10.244.1.5", 1]], { address: formatIPv4(ip("10.96.0.0") + i + 1) }));
    }
    table.apply(many);
    expect(table.size).toBe(10_000);
    expect(table.lookup(6, ip("10.96.39.16"), 80)?.address).toBe("10.96.39.16");
    expect(table.lookup(17, ip("10.96.39.16"), 80)).toBeUndefined();
  });
});
