import { describe, expect, it } from "vitest";
import { answer, defaultKubernetesOptions, type KubernetesOptions } from "./answer.ts";
import { indexCluster } from "./cluster.ts";
import { sampleCluster } from "../testing/cluster-fixture.ts";

const index = indexCluster(sampleCluster());
const opts: KubernetesOptions = {
  ...defaultKubernetesOptions,
  zones: ["cluster.local.", "in-addr.arpa.", "ip6.arpa."],
};
const ask = (
  name: string,
  type: string,
  o: Partial<KubernetesOptions> = {},
  synced = true,
  localIPs: string[] = ["10.244.0.2"],
) => answer({ name, type }, { index, synced, localIPs }, { ...opts, ...o })!;
const data = (name: string, type: string, o: Partial<KubernetesOptions> = {}) =>
  ask(name, type, o).answers.map((a) => (a as { data: unknown }).data);

describe("kubernetes answers: services (spec 2.3, 2.4)", () => {
  it("a ClusterIP Service has an A record with its cluster IP", () => {
    const r = ask("web.default.svc.cluster.local.", "A");
    expect(r.rcode).toBe("NOERROR");
    expect(r.answers).toEqual([
      { name: "web.default.svc.cluster.local.", type: "A", ttl: 5, class: "IN", data: "10.96.0.20" },
    ]);
    expect(r.authorities).toEqual([]);
  });

  it("an IPv6 Service has AAAA; A on it and AAAA on an IPv4 Service are NODATA with the SOA", () => {
    expect(data("v6.default.svc.cluster.local.", "AAAA")).toEqual(["fd00::20"]);
    for (const [name, type] of [
      ["v6.default.svc.cluster.local.", "A"],
      ["web.default.svc.cluster.local.", "AAAA"],
    ] as const) {
      const r = ask(name, type);
      expect(r.rcode).toBe("NOERROR");
      expect(r.answers).toEqual([]);
      expect(r.authorities[0]!.type).toBe("SOA");
    }
  });

  it("a headless Service has one A per ready endpoint, never the not-ready one", () => {
    expect(data("headless.default.svc.cluster.local.", "A").sort()).toEqual(["10.244.1.10", "10.244.1.11"]);
  });

  it("a headless Service without ready endpoints is NXDOMAIN", () => {
    expect(ask("empty-headless.default.svc.cluster.local.", "A").rcode).toBe("NXDOMAIN");
  });

  it("endpoints are named by hostname, else by dashed IP, else (endpoint_pod_names) by pod name", () => {
    expect(data("my-pet.headless.default.svc.cluster.local.", "A")).toEqual(["10.244.1.10"]);
    expect(data("10-244-1-11.headless.default.svc.cluster.local.", "A")).toEqual(["10.244.1.11"]);
    expect(ask("db-1.headless.default.svc.cluster.local.", "A").rcode).toBe("NXDOMAIN");
    expect(data("db-1.headless.default.svc.cluster.local.", "A", { endpointPodNames: true })).toEqual([
      "10.244.1.11",
    ]);
    // CoreDNS answers endpoint names of ClusterIP Services too.
    expect(data("10-244-1-5.web.default.svc.cluster.local.", "A")).toEqual(["10.244.1.5"]);
    expect(ask("10-244-2-7.web.default.svc.cluster.local.", "A").rcode).toBe("NXDOMAIN");
  });

  it("SRV for a named port points at the Service with the A record in the additional section", () => {
    const r = ask("_http._tcp.web.default.svc.cluster.local.", "SRV");
    expect(r.answers).toEqual([
      {
        name: "_http._tcp.web.default.svc.cluster.local.",
        type: "SRV",
        ttl: 5,
        class: "IN",
        data: { priority: 0, weight: 100, port: 80, target: "web.default.svc.cluster.local." },
      },
    ]);
    expect(r.additionals).toEqual([
      { name: "web.default.svc.cluster.local.", type: "A", ttl: 5, class: "IN", data: "10.96.0.20" },
    ]);
  });

  it("SRV on the Service name lists every named port; weight splits 100", () => {
    const r = ask("web.default.svc.cluster.local.", "SRV");
    expect(
      r.answers
        .map((a) => (a as { data: { port: number; weight: number } }).data)
        .map((d) => [d.port, d.weight]),
    ).toEqual([
      [80, 50],
      [443, 50],
    ]);
  });

  it("headless SRV has one record per ready endpoint and port, targeting endpoint names", () => {
    const r = ask("_http._tcp.headless.default.svc.cluster.local.", "SRV");
    expect(
      r.answers.map((a) => (a as { data: { target: string; port: number } }).data.target).sort(),
    ).toEqual([
      "10-244-1-11.headless.default.svc.cluster.local.",
      "my-pet.headless.default.svc.cluster.local.",
    ]);
    expect(r.additionals.map((a) => `${a.name} ${(a as { data: string }).data}`).sort()).toEqual([
      "10-244-1-11.headless.default.svc.cluster.local. 10.244.1.11",
      "my-pet.headless.default.svc.cluster.local. 10.244.1.10",
    ]);
  });

  it("an unknown port or protocol is NXDOMAIN; unnamed ports have no SRV", () => {
    expect(ask("_ftp._tcp.web.default.svc.cluster.local.", "SRV").rcode).toBe("NXDOMAIN");
    expect(ask("_http._udp.web.default.svc.cluster.local.", "SRV").rcode).toBe("NXDOMAIN");
    expect(ask("_dns._udp.v6.default.svc.cluster.local.", "SRV").answers).toHaveLength(1);
    const unnamed = ask("unnamed.default.svc.cluster.local.", "SRV");
    expect(unnamed.rcode).toBe("NOERROR");
    expect((unnamed.answers[0] as { data: { port: number } }).data.port).toBe(8080);
  });

  it("a Service without ports still has its A record but no SRV", () => {
    expect(data("noports.default.svc.cluster.local.", "A")).toEqual(["10.96.0.30"]);
    const r = ask("noports.default.svc.cluster.local.", "SRV");
    expect([r.rcode, r.answers.length, r.authorities[0]?.type]).toEqual(["NOERROR", 0, "SOA"]);
  });
});

describe("kubernetes answers: PTR (spec 2.3.3, 2.4.3)", () => {
  it("a cluster IP points back to its Service", () => {
    expect(data("20.0.96.10.in-addr.arpa.", "PTR")).toEqual(["web.default.svc.cluster.local."]);
  });
  it("an endpoint IP points to its hostname under the Service, or its dashed IP", () => {
    expect(data("10.1.244.10.in-addr.arpa.", "PTR")).toEqual(["my-pet.headless.default.svc.cluster.local."]);
    expect(data("5.1.244.10.in-addr.arpa.", "PTR")).toEqual(["10-244-1-5.web.default.svc.cluster.local."]);
  });
  it("an IPv6 cluster IP has a nibble PTR", () => {
    const rev = "0.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.";
    expect(data(rev, "PTR")).toEqual(["v6.default.svc.cluster.local."]);
  });
  it("an IP nothing in the cluster owns is NXDOMAIN, and falls through when asked to", () => {
    expect(ask("9.9.9.10.in-addr.arpa.", "PTR").rcode).toBe("NXDOMAIN");
    expect(
      ask("9.9.9.10.in-addr.arpa.", "PTR", { fallthrough: ["in-addr.arpa.", "ip6.arpa."] }).fallthrough,
    ).toBe(true);
    expect(
      ask("nope.default.svc.cluster.local.", "A", { fallthrough: ["in-addr.arpa.", "ip6.arpa."] })
        .fallthrough,
    ).toBe(false);
  });
});

describe("kubernetes answers: ExternalName (spec 2.5)", () => {
  it("is a CNAME; A and AAAA chase the target outside the zone through the upstream", () => {
    expect(data("ext.default.svc.cluster.local.", "CNAME")).toEqual(["www.example.com."]);
    const r = ask("ext.default.svc.cluster.local.", "A");
    expect(r.answers).toEqual([
      {
        name: "ext.default.svc.cluster.local.",
        type: "CNAME",
        ttl: 5,
        class: "IN",
        data: "www.example.com.",
      },
    ]);
    expect(r.chase).toEqual({ target: "www.example.com.", type: "A" });
  });
  it("a target inside the cluster zone is resolved here", () => {
    const r = ask("inzone.default.svc.cluster.local.", "A");
    expect(r.answers.map((a) => `${a.type} ${(a as { data: string }).data}`)).toEqual([
      "CNAME web.default.svc.cluster.local.",
      "A 10.96.0.20",
    ]);
    expect(r.chase).toBeUndefined();
  });
  it("has no SRV and no endpoint names", () => {
    expect(ask("ext.default.svc.cluster.local.", "SRV").answers).toEqual([]);
    expect(ask("x.ext.default.svc.cluster.local.", "A").rcode).toBe("NXDOMAIN");
  });
});

describe("kubernetes answers: zone records (spec 2.2, SOA, NS)", () => {
  it("dns-version TXT is 1.1.0 with TTL 28800", () => {
    expect(ask("dns-version.cluster.local.", "TXT").answers).toEqual([
      { name: "dns-version.cluster.local.", type: "TXT", ttl: 28800, class: "IN", data: "1.1.0" },
    ]);
  });
  it("the apex has a SOA as CoreDNS writes it", () => {
    const r = ask("cluster.local.", "SOA");
    expect(r.answers).toEqual([
      {
        name: "cluster.local.",
        type: "SOA",
        ttl: 5,
        class: "IN",
        data: {
          mname: "ns.dns.cluster.local.",
          rname: "hostmaster.cluster.local.",
          serial: 1_700_000_000,
          refresh: 7200,
          retry: 1800,
          expire: 86400,
          minimum: 5,
        },
      },
    ]);
    expect(ask("cluster.local.", "SOA", { ttl: 3600 }).answers[0]!).toMatchObject({ ttl: 300 });
  });
  it("NS at the apex names the Service whose endpoint is this server", () => {
    const r = ask("cluster.local.", "NS");
    expect(r.answers).toEqual([
      {
        name: "cluster.local.",
        type: "NS",
        ttl: 5,
        class: "IN",
        data: "kube-dns.kube-system.svc.cluster.local.",
      },
    ]);
    expect(r.additionals).toEqual([
      { name: "kube-dns.kube-system.svc.cluster.local.", type: "A", ttl: 5, class: "IN", data: "10.96.0.10" },
    ]);
    const standalone = answer(
      { name: "cluster.local.", type: "NS" },
      { index, synced: true, localIPs: ["192.0.2.1"] },
      opts,
    )!;
    expect(standalone.answers[0]).toMatchObject({ data: "ns.dns.cluster.local." });
    expect(
      answer(
        { name: "ns.dns.cluster.local.", type: "A" },
        { index, synced: true, localIPs: ["192.0.2.1"] },
        opts,
      )!.answers[0],
    ).toMatchObject({ data: "192.0.2.1" });
  });
});

describe("kubernetes answers: NXDOMAIN against NODATA", () => {
  it.each([
    ["nope.default.svc.cluster.local.", "A"],
    ["web.nope.svc.cluster.local.", "A"],
    ["web.default.cluster.local.", "A"],
    ["foo.cluster.local.", "A"],
    ["a.b.c.web.default.svc.cluster.local.", "A"],
    ["*.default.svc.cluster.local.", "A"],
    ["nope.default.svc.cluster.local.", "TXT"],
    ["nope.default.svc.cluster.local.", "HINFO"],
    ["nope.default.svc.cluster.local.", "MX"],
  ])("%s %s is NXDOMAIN with the SOA", (name, type) => {
    const r = ask(name, type);
    expect(r.rcode).toBe("NXDOMAIN");
    expect(r.authorities.map((a) => a.type)).toEqual(["SOA"]);
  });
  it.each([
    ["svc.cluster.local.", "A"],
    ["default.svc.cluster.local.", "A"],
    ["cluster.local.", "A"],
    ["web.default.svc.cluster.local.", "TXT"],
    ["web.default.svc.cluster.local.", "MX"],
    ["web.default.svc.cluster.local.", "HINFO"],
    ["web.default.svc.cluster.local.", "SOA"],
    ["web.default.svc.cluster.local.", "NS"],
  ])("%s %s is NODATA (NOERROR, no answer, SOA)", (name, type) => {
    const r = ask(name, type);
    expect(r.rcode).toBe("NOERROR");
    expect(r.answers).toEqual([]);
    expect(r.authorities.map((a) => a.type)).toEqual(["SOA"]);
  });
  it("zone transfers are REFUSED", () => {
    expect(ask("cluster.local.", "AXFR").rcode).toBe("REFUSED");
  });
  it("before the informers synced, a would-be NXDOMAIN is SERVFAIL", () => {
    expect(ask("nope.default.svc.cluster.local.", "A", {}, false).rcode).toBe("SERVFAIL");
  });
  it("names outside the zones are left to the next plugin", () => {
    expect(
      answer({ name: "example.com.", type: "A" }, { index, synced: true, localIPs: [] }, opts),
    ).toBeUndefined();
  });
});

describe("kubernetes answers: pods, namespaces, case, ttl", () => {
  it("pod records are NXDOMAIN when disabled (the default)", () => {
    expect(ask("10-244-1-5.default.pod.cluster.local.", "A").rcode).toBe("NXDOMAIN");
  });
  it("pods insecure answers any dashed IP in an existing namespace", () => {
    expect(data("10-244-9-9.default.pod.cluster.local.", "A", { pods: "insecure" })).toEqual(["10.244.9.9"]);
    expect(data("fd00-10-244--5.default.pod.cluster.local.", "AAAA", { pods: "insecure" })).toEqual([
      "fd00:10:244::5",
    ]);
    expect(ask("10-244-9-9.nope.pod.cluster.local.", "A", { pods: "insecure" }).rcode).toBe("NXDOMAIN");
    expect(ask("not-an-ip.default.pod.cluster.local.", "A", { pods: "insecure" }).rcode).toBe("NXDOMAIN");
  });
  it("pods verified answers only a pod that exists with that IP in that namespace", () => {
    expect(data("10-244-3-3.default.pod.cluster.local.", "A", { pods: "verified" })).toEqual(["10.244.3.3"]);
    expect(ask("10-244-9-9.default.pod.cluster.local.", "A", { pods: "verified" }).rcode).toBe("NXDOMAIN");
    expect(ask("10-244-3-3.other.pod.cluster.local.", "A", { pods: "verified" }).rcode).toBe("NXDOMAIN");
  });
  it("namespaces limits what is exposed", () => {
    expect(ask("api.other.svc.cluster.local.", "A", { namespaces: ["default"] }).rcode).toBe("NXDOMAIN");
    expect(data("api.other.svc.cluster.local.", "A", { namespaces: ["other"] })).toEqual(["10.96.0.40"]);
  });
  it("owner names echo the query's case; names match case-insensitively", () => {
    const r = ask("WEB.Default.SVC.Cluster.Local.", "A");
    expect(r.answers[0]).toMatchObject({ name: "WEB.Default.SVC.Cluster.Local.", data: "10.96.0.20" });
    const srv = ask("_HTTP._TCP.web.default.svc.Cluster.Local.", "SRV");
    expect((srv.answers[0] as { data: { target: string } }).data.target).toBe(
      "web.default.svc.Cluster.Local.",
    );
  });
  it("ttl sets record TTLs", () => {
    expect(ask("web.default.svc.cluster.local.", "A", { ttl: 30 }).answers[0]).toMatchObject({ ttl: 30 });
  });
  it("noendpoints drops endpoint and headless records; ignore empty_service hides ClusterIPs without endpoints", () => {
    expect(ask("headless.default.svc.cluster.local.", "A", { noEndpoints: true }).rcode).toBe("NXDOMAIN");
    expect(data("web.default.svc.cluster.local.", "A", { noEndpoints: true })).toEqual(["10.96.0.20"]);
    expect(ask("noports.default.svc.cluster.local.", "A", { ignoreEmptyService: true }).rcode).toBe(
      "NXDOMAIN",
    );
    expect(data("web.default.svc.cluster.local.", "A", { ignoreEmptyService: true })).toEqual(["10.96.0.20"]);
  });
});
