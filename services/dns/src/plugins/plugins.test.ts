import { describe, expect, it } from "vitest";
import type { Answer } from "dns-packet";
import { ResponseCache, minimalTtl } from "./cache/plugin.ts";
import { parseCache } from "./cache/parse.ts";
import { parseCorefile } from "../corefile/parse.ts";
import { rewriteName } from "./rewrite/plugin.ts";
import { parseRewrite, type NameRule } from "./rewrite/parse.ts";
import { shuffleAddresses } from "./loadbalance/plugin.ts";
import { formatLine, classify } from "./log/plugin.ts";
import { COMMON_FORMAT } from "./log/parse.ts";
import { pickOrder } from "./forward/plugin.ts";
import { parseHostsText } from "./hosts/plugin.ts";
import { Flag, Rcode, rrOf, type Message, type Request } from "../message.ts";

const a = (name: string, ip: string, ttl = 300): Answer => ({ name, type: "A", ttl, class: "IN", data: ip });
const soa = (ttl: number, minimum: number): Answer =>
  ({
    name: "example.com.",
    type: "SOA",
    ttl,
    class: "IN",
    data: { mname: "ns.", rname: "h.", serial: 1, refresh: 1, retry: 1, expire: 1, minimum },
  }) as Answer;
const msg = (rcode: number, answers: Answer[], authorities: Answer[] = []): Message => ({
  id: 1,
  type: "response",
  flags: Flag.RD | Flag.RA | rcode,
  questions: [{ name: "x.example.com", type: "A", class: "IN" }],
  answers,
  authorities,
  additionals: [],
});
const req = (name = "x.example.com"): Request => ({
  msg: { id: 77, type: "query", flags: Flag.RD, questions: [{ name, type: "A", class: "IN" }] },
  question: { name, type: "A", class: "IN" },
  remote: { address: "127.0.0.1", port: 5555, family: 4 },
  proto: "udp",
  size: 40,
  bufsize: 512,
  edns: false,
  do: false,
  server: "dns://:53",
  zone: ".",
  start: 0,
});
const cacheOpts = (block: string) =>
  parseCache(parseCorefile(`. {\n ${block}\n}`, "T").blocks[0]!.directives, ["."]);

describe("cache", () => {
  const ask = (name: string, type = "A", dnssec = false) => ({
    question: { name, type: type as "A", class: "IN" as const },
    do: dnssec,
  });
  it("clamps an entry's life between MINTTL and the cap, and ages the TTLs it serves", () => {
    let now = 0;
    const c = new ResponseCache(cacheOpts("cache 30"), () => now);
    expect(c.store(ask("x.example.com"), msg(0, [a("x.example.com.", "1.2.3.4", 300)]))).toBe(30);
    expect(c.store(ask("y.example.com"), msg(0, [a("y.example.com.", "1.2.3.4", 1)]))).toBe(5);
    now = 10_400;
    const item = c.find(ask("x.example.com"))!;
    const reply = c.toReply(item, req(), c.remaining(item));
    expect(reply.answers[0]).toMatchObject({ ttl: 19 });
    expect(reply.id).toBe(77);
    expect(reply.flags & Flag.AA).toBe(Flag.AA);
    now = 31_000;
    expect(c.remaining(c.find(ask("x.example.com"))!)).toBeLessThan(0);
  });
  it("caches denials for the SOA's TTL (capped), SERVFAIL for servfail, not truncated replies", () => {
    const c = new ResponseCache(cacheOpts("cache"), () => 0);
    expect(c.store(ask("n"), msg(Rcode.NXDOMAIN, [], [soa(60, 30)]))).toBe(30);
    expect(c.store(ask("n", "AAAA"), msg(0, [], [soa(900, 3600)]))).toBe(900);
    expect(c.store(ask("n", "MX"), msg(Rcode.SERVFAIL, []))).toBe(5);
    expect(c.find(ask("N"))!.kind).toBe("denial");
    const tc = msg(0, [a("x.", "1.1.1.1")]);
    tc.flags |= Flag.TC;
    expect(c.store(ask("x"), tc)).toBe(0);
    expect(c.store(ask("x"), msg(Rcode.REFUSED, []))).toBe(0);
    expect(c.find(ask("x"))).toBeUndefined();
    expect(minimalTtl(msg(0, [a("x.", "1.1.1.1", 50), a("x.", "1.1.1.2", 20)]), "success")).toBe(20);
  });
  it("does not cache what `disable` names", () => {
    const c = new ResponseCache(cacheOpts("cache 30 {\n  disable success cluster.local\n }"), () => 0);
    expect(
      c.store(
        ask("web.default.svc.cluster.local"),
        msg(0, [a("web.default.svc.cluster.local.", "10.96.0.1")]),
      ),
    ).toBe(0);
    expect(c.store(ask("example.com"), msg(0, [a("example.com.", "10.96.0.1")]))).toBe(30);
  });
  it("evicts the oldest entry of a kind when that kind is full", () => {
    const evicted: string[] = [];
    const c = new ResponseCache(
      cacheOpts("cache {\n  success 1024\n }"),
      () => 0,
      (k) => evicted.push(k),
    );
    for (let i = 0; i < 1030; i++) c.store(ask(`k${i}.example`), msg(0, [a("x.", "1.1.1.1")]));
    c.store(ask("gone.example"), msg(Rcode.NXDOMAIN, [], [soa(60, 60)]));
    expect([c.size("success"), c.size("denial")]).toEqual([1024, 1]);
    expect(evicted).toEqual(Array(6).fill("success"));
    expect(c.find(ask("k5.example"))).toBeUndefined();
    expect(c.find(ask("k6.example"))).toBeDefined();
  });
  it("prefetches an entry asked AMOUNT times once PERCENTAGE of its TTL is left", () => {
    let now = 0;
    const c = new ResponseCache(cacheOpts("cache 100 {\n  prefetch 3 1m 10%\n }"), () => now);
    c.store(ask("x"), msg(0, [a("x.", "1.1.1.1", 100)]));
    const hit = () => {
      const item = c.find(ask("x"))!;
      return c.shouldPrefetch(item, c.remaining(item));
    };
    expect([hit(), hit()]).toEqual([false, false]);
    now = 50_000;
    expect(hit()).toBe(false);
    now = 91_000;
    expect(hit()).toBe(true);
  });
});

describe("cache hits", () => {
  const reqOf = (name: string, id: number, flags: number = Flag.RD): Request => ({
    ...req(name),
    msg: { id, type: "query", flags, questions: [{ name, type: "A", class: "IN" }] },
  });
  it("count the TTL down by whole seconds on every record, and serve nothing once expired", () => {
    let now = 1_000_000;
    const c = new ResponseCache(cacheOpts("cache 30"), () => now);
    c.store(
      reqOf("x.example.com", 1),
      msg(0, [a("x.example.com.", "1.2.3.4", 300), a("x.example.com.", "1.2.3.5", 300)]),
    );
    const ttls = () => {
      const item = c.find(reqOf("x.example.com", 2))!;
      return c.toReply(item, reqOf("x.example.com", 2), c.remaining(item)).answers.map((r) => rrOf(r).ttl);
    };
    expect(ttls()).toEqual([30, 30]);
    now += 999;
    expect(ttls()).toEqual([29, 29]);
    now += 20_001;
    expect(ttls()).toEqual([9, 9]);
    now += 10_000;
    expect(c.remaining(c.find(reqOf("x.example.com", 3))!)).toBeLessThanOrEqual(0);
  });
  it("keep the full TTL with keepttl", () => {
    let now = 0;
    const c = new ResponseCache(cacheOpts("cache 30 {\n  keepttl\n }"), () => now);
    c.store(req(), msg(0, [a("x.example.com.", "1.2.3.4", 300)]));
    now = 12_000;
    const item = c.find(req())!;
    expect(rrOf(c.toReply(item, req(), c.remaining(item)).answers[0]!).ttl).toBe(30);
  });
  it("carry each query's id, question (its case) and RD/CD/opcode, with AA and the stored rcode", () => {
    const c = new ResponseCache(cacheOpts("cache 30"), () => 0);
    const nx = msg(Rcode.NXDOMAIN, [], [soa(60, 60)]);
    nx.flags |= Flag.AD;
    expect(ResponseCache.key(reqOf("X.Example.COM", 1))).toBe(ResponseCache.key(reqOf("x.example.com.", 1)));
    c.store(reqOf("X.Example.COM", 1), nx);
    const item = c.find(reqOf("x.EXAMPLE.com.", 2))!;
    const r1 = c.toReply(item, reqOf("X.Example.COM", 4242, Flag.RD | Flag.CD), 30);
    const r2 = c.toReply(item, reqOf("x.example.COM", 7, 0), 30);
    expect(r1.id).toBe(4242);
    expect(r1.questions![0]!.name).toBe("X.Example.COM");
    expect(r1.flags).toBe(Flag.RA | Flag.AD | Flag.AA | Flag.RD | Flag.CD | Rcode.NXDOMAIN);
    expect(r2.id).toBe(7);
    expect(r2.questions![0]!.name).toBe("x.example.COM");
    expect(r2.flags).toBe(Flag.RA | Flag.AD | Flag.AA | Rcode.NXDOMAIN);
    expect(r2.authorities).toEqual([expect.objectContaining({ type: "SOA", ttl: 30 })]);
    // replies within the same second share their records (and so their encoding)
    expect(r2.authorities).toBe(r1.authorities);
    expect(r2.wire).toBe(r1.wire);
  });
  it("are found by the DO and CD bits, type and class as well as the name", () => {
    const c = new ResponseCache(cacheOpts("cache 30"), () => 0);
    const base = reqOf("x.example.com", 1);
    c.store(base, msg(0, [a("x.example.com.", "1.2.3.4")]));
    c.store({ ...base, do: true }, msg(0, [a("x.example.com.", "1.2.3.5")]));
    const ip = (r: Request) => (c.find(r)?.answers[0] as { data?: string } | undefined)?.data;
    expect(ip(base)).toBe("1.2.3.4");
    expect(ip({ ...base, do: true })).toBe("1.2.3.5");
    expect(ip({ ...base, question: { ...base.question, type: "AAAA" } })).toBeUndefined();
    expect(ip({ ...base, question: { ...base.question, class: "CH" } })).toBeUndefined();
    expect(c.size("success")).toBe(2);
    // CoreDNS keys its cache by name, type, DO and CD (plugin/cache hash())
    const cd = reqOf("x.example.com", 2, Flag.RD | Flag.CD);
    expect(ip(cd)).toBeUndefined();
    c.store(cd, msg(0, [a("x.example.com.", "1.2.3.6")]));
    expect(ip(cd)).toBe("1.2.3.6");
    expect(ip(base)).toBe("1.2.3.4");
    expect(c.size("success")).toBe(3);
  });
  it("replace an entry of the other kind (an answer that became a denial)", () => {
    const c = new ResponseCache(cacheOpts("cache 30"), () => 0);
    c.store(req(), msg(0, [a("x.", "1.2.3.4")]));
    c.store(req(), msg(Rcode.NXDOMAIN, [], [soa(60, 60)]));
    expect(c.find(req())!.kind).toBe("denial");
    expect([c.size("success"), c.size("denial")]).toEqual([0, 1]);
    c.remove(c.find(req())!);
    expect(c.find(req())).toBeUndefined();
    expect(c.size("denial")).toBe(0);
  });
});

describe("rewrite names", () => {
  const rule = (line: string) =>
    parseRewrite(parseCorefile(`. {\n ${line}\n}`, "T").blocks[0]!.directives)[0] as NameRule;
  it("exact, prefix, suffix, substring, regex with {n} groups", () => {
    expect(rewriteName(rule("rewrite name exact a.example.org b.example.org"), "A.example.org.")).toBe(
      "b.example.org.",
    );
    expect(rewriteName(rule("rewrite name prefix api. svc."), "api.example.org.")).toBe("svc.example.org.");
    expect(rewriteName(rule("rewrite name suffix .corp. .svc.cluster.local."), "web.corp.")).toBe(
      "web.svc.cluster.local.",
    );
    expect(rewriteName(rule("rewrite name substring corp svc"), "web.corp.example.")).toBe(
      "web.svc.example.",
    );
    expect(
      rewriteName(rule("rewrite name regex (.*)\\.lab\\.$ {1}.default.svc.cluster.local."), "web.lab."),
    ).toBe("web.default.svc.cluster.local.");
    expect(
      rewriteName(rule("rewrite name exact a.example.org b.example.org"), "c.example.org."),
    ).toBeUndefined();
  });
});

describe("loadbalance, log, forward, hosts", () => {
  it("shuffles only A/AAAA/MX and keeps a CNAME first", () => {
    const cname = { name: "x.", type: "CNAME", ttl: 5, class: "IN", data: "y." } as Answer;
    const recs = [cname, a("y.", "1.1.1.1"), a("y.", "1.1.1.2"), a("y.", "1.1.1.3")];
    const out = shuffleAddresses(recs, () => 0);
    expect(out[0]).toBe(cname);
    expect(out.slice(1).map((r) => (r as { data: string }).data)).toEqual(["1.1.1.2", "1.1.1.3", "1.1.1.1"]);
  });
  it("formats CoreDNS's common log line", () => {
    const res = msg(0, [a("x.example.com.", "1.1.1.1")]);
    res.flags = Flag.AA | Flag.RD;
    expect(formatLine(COMMON_FORMAT, req(), res, 106, 0.112)).toBe(
      '127.0.0.1:5555 - 77 "A IN x.example.com. udp 40 false 512" NOERROR qr,aa,rd 106 0.000112s',
    );
    const v6 = { ...req(), remote: { address: "::1", port: 50759, family: 6 as const } };
    expect(formatLine("{remote}:{port}", v6, res, 0, 0)).toBe("[::1]:50759");
    const odd = {
      ...req(),
      question: { name: "x.", type: "UNKNOWN_65280", class: "UNKNOWN_254" },
    } as unknown as Request;
    expect(formatLine("{type} {class}", odd, res, 0, 0)).toBe("TYPE65280 CLASS254");
    expect(classify(msg(Rcode.NXDOMAIN, []))).toBe("denial");
    expect(classify(msg(0, [], [soa(5, 5)]))).toBe("denial");
    expect(classify(msg(Rcode.SERVFAIL, []))).toBe("error");
  });
  it("tries upstreams in the policy's order", () => {
    expect(pickOrder(3, "sequential", 5)).toEqual([0, 1, 2]);
    expect(pickOrder(3, "round_robin", 1)).toEqual([1, 2, 0]);
    expect(pickOrder(3, "random", 0, () => 0).sort()).toEqual([0, 1, 2]);
  });
  it("reads hosts(5) text with aliases, comments and both families", () => {
    const t = parseHostsText(
      "# c\n127.0.0.1 localhost\n10.0.0.1 db.lab db # primary\nfd00::1 db.lab\nbad line\n",
    );
    expect(t.v4.get("db.lab.")).toEqual(["10.0.0.1"]);
    expect(t.v4.get("db.")).toEqual(["10.0.0.1"]);
    expect(t.v6.get("db.lab.")).toEqual(["fd00::1"]);
    expect(t.reverse.get("10.0.0.1")).toEqual(["db.lab.", "db."]);
  });
});
