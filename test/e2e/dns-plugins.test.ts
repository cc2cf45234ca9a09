import { createServer } from "node:net";
import { createSocket } from "node:dgram";
import dnsPacket from "dns-packet";
import { mkdirSync, renameSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, expect, it } from "vitest";
import { describeWith } from "../support/prereq.ts";
import { startDns, records, status, section, type Harness } from "../../services/dns/src/testing/harness.ts";
import { startUpstream, internetZone, type TestUpstream } from "../../services/dns/src/testing/upstream.ts";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function dnsWith(corefile: string, opts: Parameters<typeof startDns>[1] = {}): Promise<Harness> {
  const h = await startDns(corefile, opts);
  cleanups.push(() => h.stop());
  return h;
}
async function upstream(silent = false): Promise<TestUpstream> {
  const u = await startUpstream(internetZone(), { silent });
  cleanups.push(() => u.close());
  return u;
}
/** A port free for both UDP and TCP right now (for a Corefile that must name its own port). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}
async function until<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 200));
  }
}

describeWith({ tools: ["dig"] }, "CoreDNS plugins behave as CoreDNS's", () => {
  it("forward: a silent upstream is skipped and marked down after max_fails; the errors line names it", async () => {
    const dead = await upstream(true);
    const good = await upstream();
    const dns = await dnsWith(`.:0 {
    bind 127.0.0.1
    errors
    forward . 127.0.0.1:${dead.port} 127.0.0.1:${good.port} {
        policy sequential
        max_fails 1
        health_check 10s
    }
}`);
    expect(records(await dns.dig("api.example.com", "+short")).flat()).toEqual(["203.0.113.10"]);
    expect(dead.seen.filter((s) => s.startsWith("api"))).toEqual(["api.example.com A udp"]);
    expect(records(await dns.dig("www.example.com", "+short")).flat()).toEqual(["203.0.113.80"]);
    // The dead upstream is down now: the second query went straight to the good one.
    expect(dead.seen.filter((s) => s.startsWith("www"))).toEqual([]);

    const only = await dnsWith(`.:0 {
    bind 127.0.0.1
    errors
    forward . 127.0.0.1:${dead.port}
}`);
    expect(status(await only.dig("api.example.com", "+time=6"))).toBe("SERVFAIL");
    expect(only.lines.find((l) => l.startsWith("[ERROR]"))).toMatch(
      new RegExp(
        `^\\[ERROR\\] plugin/errors: 2 api\\.example\\.com\\. A: read udp 127\\.0\\.0\\.1:\\d+->127\\.0\\.0\\.1:${dead.port}: i/o timeout$`,
      ),
    );
  });

  it("forward: force_tcp uses TCP; a resolv.conf file names the upstreams", async () => {
    const up = await upstream();
    const dns = await dnsWith(`.:0 {
    bind 127.0.0.1
    forward . 127.0.0.1:${up.port} {
        force_tcp
    }
}`);
    expect(records(await dns.dig("api.example.com", "+short")).flat()).toEqual(["203.0.113.10"]);
    expect(up.seen).toEqual(["api.example.com A tcp"]);
  });

  it("forward: a big upstream answer is truncated for the client, which retries over TCP", async () => {
    const up = await upstream();
    const dns = await dnsWith(`.:0 {
    bind 127.0.0.1
    forward . 127.0.0.1:${up.port}
}`);
    const out = await dns.dig("big.example.com", "+noedns");
    expect(out).toContain("Truncated, retrying in TCP mode");
    expect(out).toMatch(/ANSWER: 60,/);
    expect(up.seen).toContain("big.example.com A tcp");
  });

  it("cache: the second query is a hit, its TTL counts down, and the hit is counted", async () => {
    const up = await upstream();
    const dns = await dnsWith(`.:0 {
    bind 127.0.0.1
    prometheus 127.0.0.1:0
    cache 30
    forward . 127.0.0.1:${up.port}
}`);
    const first = records(await dns.dig("api.example.com", "+noall", "+answer"))[0]!;
    expect(first[1]).toBe("30");
    await new Promise((r) => setTimeout(r, 1100));
    const second = records(await dns.dig("api.example.com", "+noall", "+answer"))[0]!;
    expect(Number(second[1])).toBeLessThan(30);
    expect(up.seen.filter((s) => s.startsWith("api.example.com A"))).toHaveLength(1);
    const metrics = await (
      await fetch(`http://127.0.0.1:${dns.server.httpPort("127.0.0.1:0")}/metrics`)
    ).text();
    expect(metrics).toMatch(
      /coredns_cache_hits_total\{server="dns:\/\/:0",type="success",zones="\.",view=""\} 1/,
    );
    expect(metrics).toMatch(/coredns_cache_misses_total\{server="dns:\/\/:0",zones="\.",view=""\} 1/);
    expect(metrics).toMatch(/coredns_forward_requests_total\{to="127\.0\.0\.1:\d+"\} 1/);
    expect(metrics).toMatch(
      /coredns_dns_requests_total\{server="dns:\/\/:0",zone="\.",view="",proto="udp",family="1",type="A"\} 2/,
    );
    expect(metrics).toMatch(
      /coredns_dns_responses_total\{server="dns:\/\/:0",zone="\.",view="",rcode="NOERROR",plugin="cache"\} 1/,
    );
  });

  it("loop: forwarding to itself is detected and fatal, with CoreDNS's message", async () => {
    const port = await freePort();
    const dns = await dnsWith(`.:${port} {
    bind 127.0.0.1
    loop
    forward . 127.0.0.1:${port}
}`);
    const fatals = await until(
      async () => dns.fatals,
      (f) => f.length > 0,
    );
    expect(fatals[0]).toMatch(
      new RegExp(
        `^plugin/loop: Loop \\(127\\.0\\.0\\.1:\\d+ -> :${port}\\) detected for zone "\\.", see https://coredns\\.io/plugins/loop#troubleshooting\\. Query: "HINFO \\d+\\.\\d+\\."$`,
      ),
    );
  });

  it("loop: no loop, no exit; the probe went to the upstream once", async () => {
    const up = await upstream();
    const dns = await dnsWith(`.:0 {
    bind 127.0.0.1
    loop
    forward . 127.0.0.1:${up.port}
}`);
    await until(
      async () => up.seen,
      (s) => s.some((q) => q.endsWith("HINFO udp")),
    );
    await new Promise((r) => setTimeout(r, 500));
    expect(dns.fatals).toEqual([]);
  });

  it("loop: an upstream that never answers is not a loop (each unanswered probe starts the count again)", async () => {
    const silent = createSocket("udp4");
    let probes = 0;
    silent.on("message", () => probes++);
    await new Promise<void>((r) => silent.bind(0, "127.0.0.1", () => r()));
    try {
      const dns = await dnsWith(`.:0 {
    bind 127.0.0.1
    loop
    forward . 127.0.0.1:${silent.address().port}
}`);
      // the loop plugin's own tries are 2 s of timeout and 1 s apart: 10 s holds at least three,
      // which the old count took for a loop
      await new Promise((r) => setTimeout(r, 10_000));
      expect(probes).toBeGreaterThanOrEqual(3);
      expect(dns.fatals).toEqual([]);
    } finally {
      silent.close();
    }
  }, 60_000);

  it("reload: a hosts entry added to the Corefile answers within seconds; a broken Corefile keeps the old one", async () => {
    const text = (entries: string) => `.:0 {
    bind 127.0.0.1
    reload 2s 1s
    hosts {
${entries}
    }
}
`;
    const dns = await dnsWith(text("        10.0.0.1 one.lab"));
    const port = dns.port;
    expect(records(await dns.dig("one.lab", "+short")).flat()).toEqual(["10.0.0.1"]);
    writeFileSync(
      dns.corefile,
      text("        10.0.0.1 one.lab\n        10.0.0.2 two.lab").replace(".:0", `.:0`),
    );
    const two = await until(
      () => dns.dig("two.lab", "+short"),
      (o) => o.includes("10.0.0.2"),
    );
    expect(records(two).flat()).toEqual(["10.0.0.2"]);
    expect(dns.server.port()).toBe(port);
    expect(dns.lines).toContain("[INFO] Reloading complete");
    expect(
      dns.lines.some((l) =>
        /^\[INFO\] plugin\/reload: Running configuration SHA512 = [0-9a-f]{128}$/.test(l),
      ),
    ).toBe(true);

    writeFileSync(
      dns.corefile,
      text("        10.0.0.3 three.lab").replace("    reload 2s 1s", "    reload 2s 1s\n    nosuchplugin"),
    );
    await until(
      async () => dns.lines,
      (l) => l.some((x) => x.startsWith("[ERROR] Restart failed")),
    );
    expect(dns.lines.find((l) => l.startsWith("[ERROR] Restart failed"))).toMatch(
      /Corefile:\d+ - Error during parsing: Unknown directive 'nosuchplugin'/,
    );
    expect(records(await dns.dig("two.lab", "+short")).flat()).toEqual(["10.0.0.2"]);
  });

  it("health, ready and metrics answer over HTTP; ready waits for the kubernetes informers", async () => {
    const dns = await dnsWith(
      `.:0 {
    bind 127.0.0.1
    health 127.0.0.1:0
    ready 127.0.0.1:0
    prometheus 127.0.0.1:0
    kubernetes cluster.local {
        startup_timeout 100ms
    }
}`,
      { synced: false },
    );
    const base = `http://127.0.0.1:${dns.server.httpPort("127.0.0.1:0")}`;
    const health = await fetch(`${base}/health`);
    expect([health.status, await health.text()]).toEqual([200, "OK"]);
    const notReady = await fetch(`${base}/ready`);
    expect([notReady.status, await notReady.text()]).toEqual([503, "kubernetes"]);
    expect(status(await dns.dig("nope.default.svc.cluster.local"))).toBe("SERVFAIL");
    dns.source.markSynced();
    const ready = await fetch(`${base}/ready`);
    expect([ready.status, await ready.text()]).toEqual([200, "OK"]);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toContain('coredns_build_info{version="1.12.0"');
    expect(metrics).toMatch(
      /coredns_plugin_enabled\{server="dns:\/\/:0",zone="\.",view="",name="kubernetes"\} 1/,
    );
  });

  it("rewrite: the client sees the name it asked for, answered from the rewritten one", async () => {
    const dns = await dnsWith(`.:0 {
    bind 127.0.0.1
    rewrite name exact db.internal web.default.svc.cluster.local
    rewrite name regex (.*)\\.corp\\.example\\. {1}.default.svc.cluster.local. answer auto
    kubernetes cluster.local
}`);
    expect(records(await dns.dig("db.internal", "+noall", "+answer"))).toEqual([
      ["db.internal.", "5", "IN", "A", "10.96.0.20"],
    ]);
    const out = await dns.dig("headless.corp.example", "+noall", "+answer", "+question");
    expect(out).toContain(";headless.corp.example.");
    expect(records(out).map((r) => r[0])).toEqual(["headless.corp.example.", "headless.corp.example."]);
  });

  it("hosts: inline entries with PTR, NODATA for the other family, fallthrough for the rest", async () => {
    const up = await upstream();
    const dns = await dnsWith(`.:0 {
    bind 127.0.0.1
    hosts /nonexistent/hosts {
        10.1.2.3 db.lab db-alias.lab
        ttl 60
        fallthrough
    }
    forward . 127.0.0.1:${up.port}
}`);
    expect(records(await dns.dig("db.lab", "+noall", "+answer"))).toEqual([
      ["db.lab.", "60", "IN", "A", "10.1.2.3"],
    ]);
    expect(records(await dns.dig("-x", "10.1.2.3", "+short")).flat()).toEqual(["db.lab.", "db-alias.lab."]);
    const aaaa = await dns.dig("db.lab", "AAAA");
    expect([status(aaaa), section(aaaa, "ANSWER")]).toEqual(["NOERROR", []]);
    expect(records(await dns.dig("api.example.com", "+short")).flat()).toEqual(["203.0.113.10"]);
  });

  it("loadbalance shuffles the addresses between answers", async () => {
    const lines = Array.from({ length: 20 }, (_, i) => `        10.9.0.${i + 1} many.lab`).join("\n");
    const dns = await dnsWith(`.:0 {
    bind 127.0.0.1
    loadbalance
    hosts {
${lines}
    }
}`);
    const orders = new Set<string>();
    for (let i = 0; i < 5; i++)
      orders.add(
        records(await dns.dig("many.lab", "+short"))
          .flat()
          .join(","),
      );
    expect(orders.size).toBeGreaterThan(1);
    for (const o of orders)
      expect(o.split(",").sort()).toEqual(Array.from({ length: 20 }, (_, i) => `10.9.0.${i + 1}`).sort());
  });

  it("health lameduck: queries are still answered while the server drains", async () => {
    const dns = await startDns(`.:0 {
    bind 127.0.0.1
    health 127.0.0.1:0 {
        lameduck 1s
    }
    kubernetes cluster.local
}`);
    const stopping = dns.stop();
    expect(records(await dns.dig("web.default.svc.cluster.local", "+short")).flat()).toEqual(["10.96.0.20"]);
    await stopping;
    expect(status(await dns.dig("web.default.svc.cluster.local", "+time=1"))).toBeUndefined();
  });

  it("server blocks: the longest zone wins on a shared port; a block for another port listens apart", async () => {
    const dns = await dnsWith(`cluster.local:0 {
    bind 127.0.0.1
    kubernetes cluster.local
}
.:0 {
    bind 127.0.0.1
    hosts {
        10.7.7.7 web.default.svc.cluster.local.example
        10.8.8.8 other.lab
    }
}`);
    expect(records(await dns.dig("web.default.svc.cluster.local", "+short")).flat()).toEqual(["10.96.0.20"]);
    expect(records(await dns.dig("other.lab", "+short")).flat()).toEqual(["10.8.8.8"]);
    expect(status(await dns.dig("nope.default.svc.cluster.local"))).toBe("NXDOMAIN");
  });

  it("reload follows a ConfigMap volume's symlink swap (..data)", async () => {
    // Start with a plain file, then turn the path into kubelet's layout: Corefile -> ..data/Corefile.
    const dns = await dnsWith(`.:0 {
    bind 127.0.0.1
    reload 2s 1s
    hosts {
        10.0.0.1 v1.lab
    }
}`);
    const dir = join(dns.dir, "cm");
    const write = (version: string, body: string) => {
      const ts = join(dir, `..${version}`);
      mkdirSync(ts, { recursive: true });
      writeFileSync(join(ts, "Corefile"), body);
      symlinkSync(`..${version}`, join(dir, "..data_tmp"));
      renameSync(join(dir, "..data_tmp"), join(dir, "..data"));
    };
    const body = (host: string) =>
      `.:0 {\n    bind 127.0.0.1\n    reload 2s 1s\n    hosts {\n        ${host}\n    }\n}\n`;
    write("2026_01", body("10.0.0.1 v1.lab"));
    renameSync(dns.corefile, `${dns.corefile}.orig`);
    symlinkSync(join(dir, "..data", "Corefile"), dns.corefile);
    write("2026_02", body("10.0.0.2 v2.lab"));
    const out = await until(
      () => dns.dig("v2.lab", "+short"),
      (o) => o.includes("10.0.0.2"),
    );
    expect(records(out).flat()).toEqual(["10.0.0.2"]);
    expect(status(await dns.dig("v1.lab"))).toBe("SERVFAIL");
  });

  it("ready turns 503 during lameduck while DNS still answers", async () => {
    const dns = await startDns(`.:0 {
    bind 127.0.0.1
    health 127.0.0.1:0 {
        lameduck 2s
    }
    ready 127.0.0.1:0
    kubernetes cluster.local
}`);
    const base = `http://127.0.0.1:${dns.server.httpPort("127.0.0.1:0")}`;
    expect((await fetch(`${base}/ready`)).status).toBe(200);
    const stopping = dns.stop();
    expect((await fetch(`${base}/ready`)).status).toBe(503);
    expect((await fetch(`${base}/health`)).status).toBe(200);
    expect(records(await dns.dig("web.default.svc.cluster.local", "+short")).flat()).toEqual(["10.96.0.20"]);
    await stopping;
  });

  it("cache serve_stale answers an expired entry with TTL 0 when the upstream is gone", async () => {
    const up = await upstream();
    const dns = await dnsWith(`.:0 {
    bind 127.0.0.1
    cache 1 {
        serve_stale 1h
    }
    forward . 127.0.0.1:${up.port}
}`);
    expect(records(await dns.dig("api.example.com", "+short")).flat()).toEqual(["203.0.113.10"]);
    await up.close();
    await new Promise((r) => setTimeout(r, 1500));
    expect(records(await dns.dig("api.example.com", "+noall", "+answer"))).toEqual([
      ["api.example.com.", "0", "IN", "A", "203.0.113.10"],
    ]);
  });

  it("forward max_concurrent: queries over the limit are REFUSED", async () => {
    const dead = await upstream(true);
    const dns = await dnsWith(`.:0 {
    bind 127.0.0.1
    forward . 127.0.0.1:${dead.port} {
        max_concurrent 1
    }
}`);
    const first = dns.dig("api.example.com", "+time=6");
    await until(
      async () => dead.seen.length,
      (n) => n > 0,
    );
    expect(status(await dns.dig("www.example.com"))).toBe("REFUSED");
    expect(status(await first)).toBe("SERVFAIL");
  });

  it("hosts re-reads its file when it changes", async () => {
    const dns = await dnsWith(
      `.:0 {
    bind 127.0.0.1
    hosts HOSTSFILE {
        reload 1s
    }
}`.replace("HOSTSFILE", "/dev/null"),
    );
    await dns.stop();
    const file = join(dns.dir, "hosts");
    writeFileSync(file, "10.3.3.3 first.lab\n");
    const h = await dnsWith(`.:0 {
    bind 127.0.0.1
    hosts ${file} {
        reload 1s
    }
}`);
    expect(records(await h.dig("first.lab", "+short")).flat()).toEqual(["10.3.3.3"]);
    writeFileSync(file, "10.3.3.3 first.lab\n10.4.4.4 second.lab second\n");
    const out = await until(
      () => h.dig("second.lab", "+short"),
      (o) => o.includes("10.4.4.4"),
    );
    expect(records(out).flat()).toEqual(["10.4.4.4"]);
  });

  it("reload swaps the chain without dropping a query", async () => {
    const text = (ttl: number) => `.:0 {
    bind 127.0.0.1
    kubernetes cluster.local {
        ttl ${ttl}
    }
}
`;
    const dns = await dnsWith(text(5));
    const sock = createSocket("udp4");
    await new Promise<void>((r) => sock.bind(0, "127.0.0.1", r));
    const pending = new Map<number, (ttl: number) => void>();
    sock.on("message", (m) => {
      const d = dnsPacket.decode(m);
      pending.get(d.id!)?.((d.answers?.[0] as { ttl?: number } | undefined)?.ttl ?? -1);
    });
    const ask = (id: number) =>
      new Promise<number>((resolve) => {
        const timer = setTimeout(() => resolve(-2), 3000);
        pending.set(id, (ttl) => {
          clearTimeout(timer);
          resolve(ttl);
        });
        sock.send(
          dnsPacket.encode({
            id,
            type: "query",
            flags: 0x100,
            questions: [{ name: "web.default.svc.cluster.local", type: "A" }],
          }),
          dns.port,
          "127.0.0.1",
        );
      });
    const ttls: number[] = [];
    let reloads = 0;
    for (let batch = 0; batch < 40; batch++) {
      if (batch % 8 === 4) {
        writeFileSync(dns.corefile, text(batch));
        void dns.server.reload().then(() => reloads++);
      }
      ttls.push(...(await Promise.all(Array.from({ length: 50 }, (_, i) => ask(batch * 50 + i + 1)))));
    }
    sock.close();
    expect(ttls.filter((t) => t < 0)).toEqual([]);
    expect(reloads).toBeGreaterThan(0);
    expect(new Set(ttls).size).toBeGreaterThan(1);
  });
});
