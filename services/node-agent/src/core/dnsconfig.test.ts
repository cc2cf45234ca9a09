import { describe, expect, it } from "vitest";
import type { Pod } from "@klab/api";
import { formatResolvConf, parseResolvConf, podHostsFile, podResolvConf } from "./dnsconfig.ts";

const node = parseResolvConf(
  "# host\nnameserver 172.29.0.1\nnameserver 172.29.0.2\nsearch lab.internal corp.example\noptions edns0 timeout:2\n",
);
const cluster = { clusterDNS: ["10.96.0.10"], clusterDomain: "cluster.local" };
const pod = (spec: Partial<NonNullable<Pod["spec"]>> = {}, name = "web-0", ns = "shop"): Pod => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, namespace: ns, uid: "u1" },
  spec: { containers: [{ name: "c" }], ...spec },
});

describe("resolv.conf as kubelet writes it", () => {
  it("ClusterFirst points at kube-dns with the namespace search path, host searches and ndots:5", () => {
    expect(formatResolvConf(podResolvConf(pod(), node, cluster))).toBe(
      "search shop.svc.cluster.local svc.cluster.local cluster.local lab.internal corp.example\nnameserver 10.96.0.10\noptions ndots:5\n",
    );
  });
  it("Default copies the node's resolver", () => {
    expect(formatResolvConf(podResolvConf(pod({ dnsPolicy: "Default" }), node, cluster))).toBe(
      "search lab.internal corp.example\nnameserver 172.29.0.1\nnameserver 172.29.0.2\noptions edns0 timeout:2\n",
    );
  });
  it("a hostNetwork pod with ClusterFirst falls back to Default", () => {
    expect(podResolvConf(pod({ hostNetwork: true }), node, cluster).nameservers).toEqual([
      "172.29.0.1",
      "172.29.0.2",
    ]);
  });
  it("ClusterFirstWithHostNet keeps cluster DNS for hostNetwork pods", () => {
    expect(
      podResolvConf(pod({ hostNetwork: true, dnsPolicy: "ClusterFirstWithHostNet" }), node, cluster)
        .nameservers,
    ).toEqual(["10.96.0.10"]);
  });
  it("None takes only dnsConfig, and options merge by name", () => {
    const p = pod({
      dnsPolicy: "None",
      dnsConfig: {
        nameservers: ["1.2.3.4"],
        searches: ["ns1.svc.cluster-domain.example", "my.dns.search.suffix"],
        options: [{ name: "ndots", value: "2" }, { name: "edns0" }],
      },
    });
    expect(formatResolvConf(podResolvConf(p, node, cluster))).toBe(
      "search ns1.svc.cluster-domain.example my.dns.search.suffix\nnameserver 1.2.3.4\noptions ndots:2 edns0\n",
    );
  });
  it("dnsConfig on ClusterFirst appends and overrides ndots", () => {
    const rc = podResolvConf(
      pod({
        dnsConfig: { nameservers: ["10.96.0.10", "9.9.9.9"], options: [{ name: "ndots", value: "1" }] },
      }),
      node,
      cluster,
    );
    expect(rc.nameservers).toEqual(["10.96.0.10", "9.9.9.9"]);
    expect(rc.options).toEqual(["ndots:1"]);
  });
  it("keeps at most three nameservers", () => {
    const rc = podResolvConf(
      pod({ dnsPolicy: "None", dnsConfig: { nameservers: ["1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4"] } }),
      node,
      cluster,
    );
    expect(rc.nameservers).toHaveLength(3);
  });
});

describe("/etc/hosts as kubelet writes it", () => {
  it("has the managed header, localhost lines and the pod IP with its hostname", () => {
    expect(podHostsFile(pod(), ["10.244.1.5"], "cluster.local", "")).toBe(
      "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n10.244.1.5\tweb-0\n",
    );
  });
  it("writes the FQDN for hostname+subdomain and HostAliases one per line", () => {
    const text = podHostsFile(
      pod({
        hostname: "db",
        subdomain: "backend",
        hostAliases: [{ ip: "127.0.0.1", hostnames: ["foo.local", "bar.local"] }],
      }),
      ["10.244.1.6"],
      "cluster.local",
      "",
    );
    expect(text).toContain("10.244.1.6\tdb.backend.shop.svc.cluster.local\tdb\n");
    expect(
      text.endsWith("\n# Entries added by HostAliases.\n127.0.0.1\tfoo.local\n127.0.0.1\tbar.local\n"),
    ).toBe(true);
  });
  it("hostNetwork pods get the node's hosts file under the host-network header", () => {
    expect(
      podHostsFile(pod({ hostNetwork: true }), ["172.29.0.3"], "cluster.local", "127.0.0.1 localhost\n"),
    ).toBe("# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n");
  });
});
