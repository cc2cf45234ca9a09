import { afterAll, beforeAll, expect, it } from "vitest";
import { describeWith } from "../support/prereq.ts";
import {
  startDns,
  records,
  status,
  flags,
  section,
  type Harness,
} from "../../services/dns/src/testing/harness.ts";
import { startUpstream, internetZone, type TestUpstream } from "../../services/dns/src/testing/upstream.ts";

describeWith({ tools: ["dig", "nslookup"] }, "cluster DNS answers real dig and nslookup", () => {
  let dns: Harness;
  let up: TestUpstream;
  beforeAll(async () => {
    up = await startUpstream(internetZone());
    dns = await startDns(`.:0 {
    bind 127.0.0.1
    errors
    log
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    forward . 127.0.0.1:${up.port}
    cache 30 {
        disable success cluster.local
        disable denial cluster.local
    }
    loadbalance
}
`);
  });
  afterAll(async () => {
    await dns?.stop();
    await up?.close();
  });

  it("a Service name resolves to its cluster IP, authoritatively, with the configured TTL", async () => {
    const out = await dns.dig("web.default.svc.cluster.local", "A");
    expect(status(out)).toBe("NOERROR");
    expect(flags(out)).toEqual(["qr", "aa", "rd"]);
    expect(section(out, "ANSWER")).toEqual([
      ["web.default.svc.cluster.local.", "30", "IN", "A", "10.96.0.20"],
    ]);
  });

  it("the query log prints CoreDNS's line", async () => {
    await dns.dig("web.default.svc.cluster.local", "A", "+noedns");
    expect(
      dns.lines.some((l) =>
        /^\[INFO\] 127\.0\.0\.1:\d+ - \d+ "A IN web\.default\.svc\.cluster\.local\. udp \d+ false 512" NOERROR qr,aa,rd \d+ \d+(\.\d+)?s$/.test(
          l,
        ),
      ),
    ).toBe(true);
  });

  it("a headless Service gives every ready endpoint", async () => {
    const out = await dns.dig("headless.default.svc.cluster.local", "+noall", "+answer");
    expect(
      records(out)
        .map((r) => r[4])
        .sort(),
    ).toEqual(["10.244.1.10", "10.244.1.11"]);
  });

  it("an endpoint hostname and a dashed endpoint IP resolve", async () => {
    expect(records(await dns.dig("my-pet.headless.default.svc.cluster.local", "+short")).flat()).toEqual([
      "10.244.1.10",
    ]);
    expect(records(await dns.dig("10-244-1-11.headless.default.svc.cluster.local", "+short")).flat()).toEqual(
      ["10.244.1.11"],
    );
  });

  it("SRV for a named port, with the address in the additional section", async () => {
    const out = await dns.dig("_https._tcp.web.default.svc.cluster.local", "SRV");
    expect(section(out, "ANSWER")).toEqual([
      [
        "_https._tcp.web.default.svc.cluster.local.",
        "30",
        "IN",
        "SRV",
        "0",
        "100",
        "443",
        "web.default.svc.cluster.local.",
      ],
    ]);
    expect(section(out, "ADDITIONAL")).toContainEqual([
      "web.default.svc.cluster.local.",
      "30",
      "IN",
      "A",
      "10.96.0.20",
    ]);
  });

  it("PTR for a Service IP and for a pod IP behind an endpoint (dig -x)", async () => {
    expect(records(await dns.dig("-x", "10.96.0.20", "+short")).flat()).toEqual([
      "web.default.svc.cluster.local.",
    ]);
    expect(records(await dns.dig("-x", "10.244.1.10", "+short")).flat()).toEqual([
      "my-pet.headless.default.svc.cluster.local.",
    ]);
    expect(records(await dns.dig("-x", "10.244.1.5", "+short")).flat()).toEqual([
      "10-244-1-5.web.default.svc.cluster.local.",
    ]);
  });

  it("a reverse name outside the cluster falls through to forward", async () => {
    const out = await dns.dig("-x", "192.0.2.1");
    expect(status(out)).toBe("NXDOMAIN");
    expect(up.seen).toContain("1.2.0.192.in-addr.arpa PTR udp");
  });

  it("an ExternalName Service is a CNAME whose target is resolved upstream", async () => {
    const out = await dns.dig("ext.default.svc.cluster.local", "A", "+noall", "+answer");
    expect(records(out)).toEqual([
      ["ext.default.svc.cluster.local.", "30", "IN", "CNAME", "www.example.com."],
      // The target's lookup went through this server's cache, which caps TTLs at 30.
      ["www.example.com.", "30", "IN", "A", "203.0.113.80"],
    ]);
  });

  it('dns-version.cluster.local TXT is "1.1.0"', async () => {
    expect(records(await dns.dig("dns-version.cluster.local", "TXT", "+noall", "+answer"))).toEqual([
      ["dns-version.cluster.local.", "28800", "IN", "TXT", '"1.1.0"'],
    ]);
  });

  it("SOA and NS at the zone apex", async () => {
    const soa = records(await dns.dig("cluster.local", "SOA", "+noall", "+answer"))[0]!;
    expect(soa.slice(0, 6)).toEqual([
      "cluster.local.",
      "30",
      "IN",
      "SOA",
      "ns.dns.cluster.local.",
      "hostmaster.cluster.local.",
    ]);
    expect(soa.slice(7)).toEqual(["7200", "1800", "86400", "30"]);
    expect(records(await dns.dig("cluster.local", "NS", "+short")).flat()).toEqual([
      "kube-dns.kube-system.svc.cluster.local.",
    ]);
  });

  it("NXDOMAIN for a missing Service, NODATA for a missing type, both with the SOA", async () => {
    const nx = await dns.dig("nope.default.svc.cluster.local", "A");
    expect(status(nx)).toBe("NXDOMAIN");
    expect(section(nx, "AUTHORITY")[0]!.slice(0, 4)).toEqual(["cluster.local.", "30", "IN", "SOA"]);
    const nodata = await dns.dig("web.default.svc.cluster.local", "AAAA");
    expect(status(nodata)).toBe("NOERROR");
    expect(section(nodata, "ANSWER")).toEqual([]);
    expect(section(nodata, "AUTHORITY")[0]![3]).toBe("SOA");
  });

  it("pod records (pods insecure)", async () => {
    expect(records(await dns.dig("10-244-1-5.default.pod.cluster.local", "+short")).flat()).toEqual([
      "10.244.1.5",
    ]);
  });

  it("names outside the cluster are forwarded", async () => {
    expect(records(await dns.dig("api.example.com", "+short")).flat()).toEqual(["203.0.113.10"]);
  });

  it("answers over TCP", async () => {
    expect(records(await dns.dig("+tcp", "web.default.svc.cluster.local", "+short")).flat()).toEqual([
      "10.96.0.20",
    ]);
  });

  it("nslookup: a short name resolves in its namespace's search domain, another namespace needs .ns", async () => {
    const search = ["-ndots=5", "-domain=default.svc.cluster.local"];
    const short = await dns.nslookup(...search, "web", "127.0.0.1");
    expect(short).toMatch(/Name:\s+web\.default\.svc\.cluster\.local\s+Address: 10\.96\.0\.20/);
    const elsewhere = await dns.nslookup(...search, "api", "127.0.0.1");
    expect(elsewhere).toMatch(/server can't find api: NXDOMAIN/);
    const qualified = await dns.nslookup(...search, "api.other.svc.cluster.local", "127.0.0.1");
    expect(qualified).toMatch(/Name:\s+api\.other\.svc\.cluster\.local\s+Address: 10\.96\.0\.40/);
    const missing = await dns.nslookup("nope.default.svc.cluster.local", "127.0.0.1");
    expect(missing).toMatch(/server can't find nope\.default\.svc\.cluster\.local: NXDOMAIN/);
  });
});
