import { describe, expect, it } from "vitest";
import { parseIPv4 } from "../ip.ts";
import { IptablesEvaluator, type EvalEnv, type EvalPacket } from "./evaluate.ts";
import { KUBE_PROXY_JUMPS, KUBE_PROXY_RULES } from "./fixtures.ts";
import { parseRestore, RestoreError } from "./parse.ts";
import { IptablesRuleset } from "./ruleset.ts";
import { iptablesSave } from "./save.ts";

const ip = (s: string) => parseIPv4(s) as number;
const NODE_IPS = new Set(["172.29.0.3", "127.0.0.1"].map(ip));

function loaded(): IptablesRuleset {
  const rs = new IptablesRuleset();
  rs.restore(KUBE_PROXY_JUMPS);
  rs.restore(KUBE_PROXY_RULES, { noflush: true });
  return rs;
}

/** A deterministic [0,1) source (xorshift32), so distributions are reproducible. */
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

function env(random: () => number, now = 1_000_000): EvalEnv {
  return { isLocalAddress: (a) => NODE_IPS.has(a) || a >>> 24 === 127, random, now };
}

function tcp(src: string, dst: string, dport: number, sport = 40000): EvalPacket {
  return { proto: 6, src: ip(src), dst: ip(dst), sport, dport, length: 60 };
}

function expectRestoreError(text: string, line: number, pattern: RegExp): void {
  try {
    new IptablesRuleset().restore(text);
  } catch (e) {
    expect(e).toBeInstanceOf(RestoreError);
    expect((e as RestoreError).line).toBe(line);
    expect((e as RestoreError).message).toMatch(pattern);
    return;
  }
  throw new Error("restore accepted bad input");
}

describe("iptables-restore parser", () => {
  it("parses kube-proxy's own restore input", () => {
    const blocks = parseRestore(KUBE_PROXY_RULES);
    expect(blocks.map((b) => b.table)).toEqual(["filter", "nat"]);
  });

  it("rejects malformed input with the line number and a reason", () => {
    expectRestoreError(
      "*nat\n:KUBE-SERVICES - [0:0]\n-A KUBE-SERVICES -m bogus -j ACCEPT\nCOMMIT\n",
      3,
      /couldn't load match "bogus"/,
    );
    expectRestoreError(
      "*nat\n:KUBE-SERVICES - [0:0]\n-A KUBE-SERVICES -d 10.96.0.300 -j RETURN\nCOMMIT\n",
      3,
      /host\/network "10.96.0.300"/,
    );
    expectRestoreError(
      "*nat\n:KUBE-SERVICES - [0:0]\n-A KUBE-SERVICES -j KUBE-SVC-MISSING\nCOMMIT\n",
      1,
      /no such chain/,
    );
    expectRestoreError("*nat\n-A NOPE -j RETURN\nCOMMIT\n", 2, /chain NOPE does not exist/);
    expectRestoreError("*nat\n:KUBE-SERVICES - [0:0]\n", 3, /COMMIT expected/);
    expectRestoreError("-A KUBE-SERVICES -j RETURN\n", 1, /no table/);
    expectRestoreError(
      '*nat\n:X - [0:0]\n-A X -m comment --comment "unterminated -j RETURN\nCOMMIT\n',
      3,
      /unterminated/,
    );
    expectRestoreError(
      "*nat\n:X - [0:0]\n-A X -m statistic --mode random --probability 1.5 -j RETURN\nCOMMIT\n",
      3,
      /probability/,
    );
    expectRestoreError(
      "*nat\n:X - [0:0]\n-A X -p tcp -j DNAT --to-destination 10.0.0.1:99999\nCOMMIT\n",
      3,
      /out of range/,
    );
    expectRestoreError(
      "*nat\n:X - [0:0]\n-A X --dport 80 -j RETURN\nCOMMIT\n",
      3,
      /unknown option "--dport"/,
    );
    expectRestoreError(
      "*filter\n:X - [0:0]\n-A X -j DNAT --to-destination 10.0.0.1\nCOMMIT\n",
      1,
      /only valid in the nat table/,
    );
    expectRestoreError("*nat\n:A - [0:0]\n:B - [0:0]\n-A A -j B\n-A B -j A\nCOMMIT\n", 1, /jump loop/);
    expectRestoreError("*bogus\nCOMMIT\n", 1, /unknown table/);
    expectRestoreError("*nat\n:PREROUTING - [0:0]\nCOMMIT\n", 2, /needs a policy/);
    expectRestoreError("*nat\n:X - [0:0]\n-Z X\nCOMMIT\n", 3, /unknown command "-Z"/);
    expectRestoreError("*nat\n:X - [0:0]\n-A X -m mark --mark zz -j RETURN\nCOMMIT\n", 3, /invalid --mark/);
  });

  it("never throws anything but a RestoreError, whatever the bytes", () => {
    const rnd = seeded(7);
    const alphabet = ' *:-!"ACDIJMNOPRSTX[]0123456789./\n-mjsdp' + "tcpnatfilterCOMMIT";
    for (let n = 0; n < 300; n++) {
      let s = "";
      const len = Math.floor(rnd() * 200);
      for (let i = 0; i < len; i++) s += alphabet[Math.floor(rnd() * alphabet.length)];
      try {
        new IptablesRuleset().restore(s);
      } catch (e) {
        expect(e).toBeInstanceOf(RestoreError);
      }
    }
  });

  it("leaves the live rules untouched when a restore fails half-way", () => {
    const rs = loaded();
    const before = iptablesSave(rs, { now: new Date(0) });
    expect(() =>
      rs.restore("*nat\n:KUBE-SERVICES - [0:0]\nCOMMIT\n*filter\n-A NOPE -j DROP\nCOMMIT\n", {
        noflush: true,
      }),
    ).toThrow(RestoreError);
    expect(iptablesSave(rs, { now: new Date(0) })).toBe(before);
  });

  it("deletes a stale chain the way kube-proxy does (flush with a chain line, then -X)", () => {
    const rs = loaded();
    const stale = "*nat\n:KUBE-SEP-2RIJ5GIYXEFH6G4D - [0:0]\n-X KUBE-SEP-2RIJ5GIYXEFH6G4D\nCOMMIT\n";
    // Still referenced from the service chain: refused, as the kernel refuses it.
    expect(() => rs.restore(stale, { noflush: true })).toThrow(
      /still referenced from KUBE-SVC-CDGGSHYLG3RE2FKL/,
    );
    rs.restore(
      stale.replace(
        "-X",
        ":KUBE-SVC-CDGGSHYLG3RE2FKL - [0:0]\n-A KUBE-SVC-CDGGSHYLG3RE2FKL -j KUBE-SEP-AFGSLHOD2HFNCBX4\n-X",
      ),
      { noflush: true },
    );
    expect(rs.table("nat")?.chains.has("KUBE-SEP-2RIJ5GIYXEFH6G4D")).toBe(false);
  });
});

describe("iptables-save", () => {
  it("prints rules in the kernel's canonical form", () => {
    const out = iptablesSave(loaded(), { table: "nat", now: new Date(Date.UTC(2026, 10, 26, 16, 0, 0)) });
    const lines = out.split("\n");
    expect(lines[0]).toBe("# Generated by iptables-save v1.8.9 (nf_tables) on Thu Nov 26 16:00:00 2026");
    expect(lines).toContain(
      '-A KUBE-SVC-CDGGSHYLG3RE2FKL ! -s 10.244.0.0/16 -d 10.96.100.10/32 -p tcp -m comment --comment "default/web:http cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ',
    );
    expect(lines).toContain(
      '-A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment "default/web:http -> 10.244.1.5:8080" -m statistic --mode random --probability 0.33333333349 -j KUBE-SEP-AFGSLHOD2HFNCBX4',
    );
    expect(lines).toContain(
      '-A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment "default/web:http -> 10.244.1.6:8080" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-F7BHZ7WL3PFYMSRY',
    );
    expect(lines).toContain("-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000");
    expect(lines).toContain("-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0");
    expect(lines).toContain(
      '-A KUBE-SEP-STICKY1AAAAAAAAA -p tcp -m comment --comment "default/sticky:http" -m recent --set --name KUBE-SEP-STICKY1AAAAAAAAA --mask 255.255.255.255 --rsource -m tcp -j DNAT --to-destination 10.244.1.8:80',
    );
    expect(lines).toContain(
      '-A KUBE-SVC-STICKYAAAAAAAAAA -m comment --comment "default/sticky:http -> 10.244.1.8:80" -m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-STICKY1AAAAAAAAA --mask 255.255.255.255 --rsource -j KUBE-SEP-STICKY1AAAAAAAAA',
    );
    // Built-in chains first, then user chains sorted (KUBE-SEP-* before KUBE-SERVICES).
    const decl = lines.filter((l) => l.startsWith(":")).map((l) => l.split(" ")[0]);
    expect(decl.slice(0, 4)).toEqual([":PREROUTING", ":INPUT", ":OUTPUT", ":POSTROUTING"]);
    expect(decl.indexOf(":KUBE-SEP-STICKY2AAAAAAAAA")).toBeLessThan(decl.indexOf(":KUBE-SERVICES"));
    const filter = iptablesSave(loaded(), { table: "filter" });
    expect(filter).toContain(
      '-A KUBE-SERVICES -d 10.96.0.99/32 -p tcp -m comment --comment "default/empty:http has no endpoints" -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable',
    );
    expect(filter).toContain(
      '-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP',
    );
  });

  it("reads its own output back (with -c counters) to the same rules", () => {
    const rs = loaded();
    const ev = new IptablesEvaluator(rs);
    for (let i = 0; i < 10; i++)
      ev.evaluate(tcp("10.244.1.9", "10.96.100.10", 80, 40000 + i), "PREROUTING", env(seeded(i + 1)));
    const saved = iptablesSave(rs, { counters: true });
    expect(saved).toMatch(/^\[10:600\] -A KUBE-SERVICES -d 10\.96\.100\.10\/32/m);
    const copy = new IptablesRuleset();
    copy.restore(saved);
    expect(iptablesSave(copy, { counters: true, now: new Date(0) })).toBe(
      iptablesSave(rs, { counters: true, now: new Date(0) }),
    );
  });
});

describe("iptables evaluator", () => {
  it("spreads 30,000 connections evenly over three endpoints", () => {
    const ev = new IptablesEvaluator(loaded());
    const e = env(seeded(12345));
    const counts = new Map<string, number>();
    for (let i = 0; i < 30_000; i++) {
      const d = ev.evaluate(tcp("10.244.1.9", "10.96.100.10", 80, 1024 + (i % 60000)), "PREROUTING", e);
      const to = d.dnat ? `${d.dnat.ip}` : "none";
      counts.set(to, (counts.get(to) ?? 0) + 1);
    }
    expect(counts.size).toBe(3);
    for (const n of counts.values()) {
      // expected 10,000 each; sd ≈ 82, so ±600 is over 7 standard deviations
      expect(n).toBeGreaterThan(9_400);
      expect(n).toBeLessThan(10_600);
    }
  });

  it("DNATs a pod's connection to a cluster IP without masquerade, and an outsider's with it", () => {
    const ev = new IptablesEvaluator(loaded());
    const fromPod = ev.evaluate(
      tcp("10.244.1.9", "10.96.100.10", 80),
      "PREROUTING",
      env(() => 0.1),
      true,
    );
    expect(fromPod.verdict).toBe("ACCEPT");
    expect(fromPod.dnat).toEqual({ ip: ip("10.244.1.5"), port: 8080, chain: "KUBE-SEP-AFGSLHOD2HFNCBX4" });
    expect(fromPod.masquerade).toBe(false);
    expect(fromPod.hits.map((h) => `${h.table} ${h.chain}`)).toEqual([
      "nat PREROUTING",
      "nat KUBE-SERVICES",
      "nat KUBE-SVC-CDGGSHYLG3RE2FKL",
      "nat KUBE-SEP-AFGSLHOD2HFNCBX4",
      "filter FORWARD",
      "filter FORWARD",
      "filter FORWARD",
      "filter FORWARD",
      "nat POSTROUTING",
      "nat KUBE-POSTROUTING",
    ]);

    const fromNode = ev.evaluate(
      tcp("172.29.0.3", "10.96.100.10", 80),
      "OUTPUT",
      env(() => 0.9),
    );
    expect(fromNode.dnat?.ip).toBe(ip("10.244.2.7"));
    expect(fromNode.masquerade).toBe(true);
    expect(fromNode.randomFully).toBe(true);
  });

  it("masquerades hairpin traffic: a pod reaching itself through its Service", () => {
    const ev = new IptablesEvaluator(loaded());
    const d = ev.evaluate(
      tcp("10.244.1.5", "10.96.100.10", 80),
      "PREROUTING",
      env(() => 0.1),
    );
    expect(d.dnat?.ip).toBe(ip("10.244.1.5"));
    expect(d.masquerade).toBe(true);
  });

  it("answers a NodePort only on the node's own addresses", () => {
    const ev = new IptablesEvaluator(loaded());
    const local = ev.evaluate(
      tcp("203.0.113.9", "172.29.0.3", 30080),
      "PREROUTING",
      env(() => 0.1),
    );
    expect(local.dnat?.ip).toBe(ip("10.244.1.5"));
    expect(local.masquerade).toBe(true);
    const elsewhere = ev.evaluate(
      tcp("203.0.113.9", "172.29.0.4", 30080),
      "PREROUTING",
      env(() => 0.1),
    );
    expect(elsewhere.dnat).toBeUndefined();
    expect(elsewhere.masquerade).toBe(false);
  });

  it("rejects at once a Service without endpoints", () => {
    const ev = new IptablesEvaluator(loaded());
    const d = ev.evaluate(
      tcp("10.244.1.9", "10.96.0.99", 80),
      "PREROUTING",
      env(() => 0.5),
    );
    expect(d.verdict).toBe("REJECT");
    expect(d.rejectWith).toBe("icmp-port-unreachable");
    expect(d.decidedBy).toBe('filter KUBE-SERVICES "default/empty:http has no endpoints"');
  });

  it("keeps a client on one endpoint under ClientIP affinity, until the timeout passes", () => {
    const ev = new IptablesEvaluator(loaded());
    const rnd = seeded(99);
    const first = ev.evaluate(tcp("10.244.3.3", "10.96.100.20", 80), "PREROUTING", env(rnd, 0));
    const pinned = first.dnat?.ip;
    for (let i = 1; i <= 200; i++) {
      const d = ev.evaluate(
        tcp("10.244.3.3", "10.96.100.20", 80, 50000 + i),
        "PREROUTING",
        env(rnd, i * 1000),
      );
      expect(d.dnat?.ip).toBe(pinned);
    }
    // Another client is balanced on its own.
    const seen = new Set<number | undefined>();
    for (let c = 0; c < 40; c++)
      seen.add(ev.evaluate(tcp(`10.244.4.${c + 1}`, "10.96.100.20", 80), "PREROUTING", env(rnd, 0)).dnat?.ip);
    expect(seen.size).toBe(2);
    // After 3 hours without a new connection the entry is reaped and the choice is random again.
    const later = 200_000 + 10_801_000;
    const after = new Set<number | undefined>();
    for (let i = 0; i < 40; i++) {
      ev.recent.remove("KUBE-SEP-STICKY1AAAAAAAAA", ip("10.244.9.9"));
      ev.recent.remove("KUBE-SEP-STICKY2AAAAAAAAA", ip("10.244.9.9"));
      after.add(ev.evaluate(tcp("10.244.9.9", "10.96.100.20", 80), "PREROUTING", env(rnd, later)).dnat?.ip);
    }
    expect(after.size).toBe(2);
    expect(
      ev.recent.check("KUBE-SEP-STICKY1AAAAAAAAA", ip("10.244.3.3"), later, 10800, undefined, true) ||
        ev.recent.check("KUBE-SEP-STICKY2AAAAAAAAA", ip("10.244.3.3"), later, 10800, undefined, true),
    ).toBe(false);
  });

  it("drops localnet connections from outside 127/8 (KUBE-FIREWALL)", () => {
    const ev = new IptablesEvaluator(loaded());
    const d = ev.evaluate(
      tcp("10.244.1.9", "127.0.0.1", 22),
      "PREROUTING",
      env(() => 0.5),
    );
    expect(d.verdict).toBe("DROP");
  });

  it("counts work that grows with the rules in front of the match", () => {
    const ev = new IptablesEvaluator(loaded());
    const web = ev.evaluate(
      tcp("10.244.1.9", "10.96.100.10", 80),
      "PREROUTING",
      env(() => 0.9),
    );
    const sticky = ev.evaluate(
      tcp("10.244.1.9", "10.96.100.20", 80),
      "PREROUTING",
      env(() => 0.9),
    );
    expect(sticky.rulesEvaluated).toBeGreaterThan(web.rulesEvaluated - 2);
  });
});
