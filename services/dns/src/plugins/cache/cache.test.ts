/**
 * The cache plugin in a running server, over UDP on loopback, with its clock in the test's hands:
 * hits count their TTLs down and carry each query's id and question, answers and denials stay
 * cached while the cluster changes, and an expired entry is asked for again.
 */
import { createSocket } from "node:dgram";
import dnsPacket, { type Packet } from "dns-packet";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { startDns, type Harness } from "../../testing/harness.ts";
import { sampleCluster, service } from "../../testing/cluster-fixture.ts";
import { Rcode } from "../../message.ts";

let now = 1_700_000_000_000;
let h: Harness;
const sock = createSocket("udp4");

beforeAll(async () => {
  // before the server starts: the cache takes its clock when it is set up
  vi.spyOn(Date, "now").mockImplementation(() => now);
  h = await startDns(`.:0 {\n bind 127.0.0.1\n cache 30\n kubernetes cluster.local {\n  ttl 30\n }\n}`);
  await new Promise<void>((r) => sock.bind(0, "127.0.0.1", () => r()));
});
afterAll(async () => {
  sock.close();
  await h?.stop();
  vi.restoreAllMocks();
});

function ask(name: string, id: number): Promise<Packet> {
  const buf = dnsPacket.encode({
    id,
    type: "query",
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type: "A", class: "IN" }],
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no reply for ${name}`)), 5000);
    const on = (msg: Buffer) => {
      if (msg.readUInt16BE(0) !== id) return;
      clearTimeout(timer);
      sock.off("message", on);
      resolve(dnsPacket.decode(msg));
    };
    sock.on("message", on);
    sock.send(buf, h.port, "127.0.0.1");
  });
}

const rcodeOf = (p: Packet) => (p.flags ?? 0) & 0xf;
const ttlOf = (p: Packet) => (p.answers![0] as { ttl: number }).ttl;
const ipOf = (p: Packet) => (p.answers![0] as { data: string }).data;
const soaTtl = (p: Packet) => (p.authorities!.find((a) => a.type === "SOA") as { ttl: number }).ttl;

function withWeb(ip: string) {
  const state = sampleCluster();
  const others = state.services.filter(
    (s) => !(s.metadata.name === "web" && s.metadata.namespace === "default"),
  );
  state.services = [
    ...others,
    service("default", "web", { clusterIP: ip, clusterIPs: [ip] }),
    service("default", "late", { clusterIP: "10.96.0.77", clusterIPs: ["10.96.0.77"] }),
  ];
  return state;
}

async function counter(name: string, type?: string): Promise<number> {
  const m = await h.server.metrics.registry.getSingleMetric(name)!.get();
  return m.values
    .filter((v) => type === undefined || v.labels.type === type)
    .reduce((sum, v) => sum + v.value, 0);
}

describe("cache plugin", () => {
  it("answers hits with aged TTLs, each query's id and question, until the entry expires", async () => {
    const first = await ask("web.default.svc.cluster.local", 1);
    expect(ipOf(first)).toBe("10.96.0.20");
    expect(ttlOf(first)).toBe(30);
    const missesBefore = await counter("coredns_cache_misses_total");

    // the cluster changes; the cache keeps its answer until it expires
    h.source.replace(withWeb("10.96.0.99"));
    now += 10_500;
    const hit = await ask("WEB.Default.svc.cluster.local", 4242);
    expect(hit.id).toBe(4242);
    expect(hit.questions![0]!.name).toBe("WEB.Default.svc.cluster.local");
    expect(hit.flags! & 0x400).toBe(0x400); // AA
    expect(hit.flags! & 0x100).toBe(0x100); // RD copied from the query
    expect(ipOf(hit)).toBe("10.96.0.20");
    expect(ttlOf(hit)).toBe(19);
    now += 1_000;
    expect(ttlOf(await ask("web.default.svc.cluster.local", 4243))).toBe(18);
    expect(await counter("coredns_cache_hits_total", "success")).toBeGreaterThanOrEqual(2);
    expect(await counter("coredns_cache_misses_total")).toBe(missesBefore);

    now += 19_000; // 30.5 s after it was stored
    const fresh = await ask("web.default.svc.cluster.local", 4244);
    expect(ipOf(fresh)).toBe("10.96.0.99");
    expect(ttlOf(fresh)).toBe(30);
    expect(await counter("coredns_cache_misses_total")).toBe(missesBefore + 1);
    h.source.replace(sampleCluster());
  });

  it("caches NXDOMAIN as a denial, its SOA's TTL counting down", async () => {
    const first = await ask("late.default.svc.cluster.local", 10);
    expect(rcodeOf(first)).toBe(Rcode.NXDOMAIN);
    const ttl = soaTtl(first);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(30);
    h.source.replace(withWeb("10.96.0.20"));
    now += 2_500;
    const hit = await ask("Late.default.svc.cluster.local", 11);
    expect(rcodeOf(hit)).toBe(Rcode.NXDOMAIN);
    expect(hit.questions![0]!.name).toBe("Late.default.svc.cluster.local");
    expect(soaTtl(hit)).toBe(ttl - 3);
    expect(await counter("coredns_cache_hits_total", "denial")).toBeGreaterThanOrEqual(1);
    now += ttl * 1000;
    const after = await ask("late.default.svc.cluster.local", 12);
    expect(rcodeOf(after)).toBe(Rcode.NOERROR);
    expect(ipOf(after)).toBe("10.96.0.77");
    h.source.replace(sampleCluster());
  });
});
