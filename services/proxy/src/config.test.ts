import { describe, expect, it } from "vitest";
import { ConfigError, DEFAULT_CONFIG, parseDuration, parseProxyConfig } from "./config.ts";

describe("KubeProxyConfiguration", () => {
  it("defaults to iptables mode with kube-proxy's periods", () => {
    expect(parseProxyConfig("")).toEqual(DEFAULT_CONFIG);
    expect(
      parseProxyConfig(
        'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: ""\n',
      ).mode,
    ).toBe("iptables");
  });

  it("reads the mode, the IPVS scheduler and the cluster CIDR", () => {
    const cfg = parseProxyConfig(
      [
        "apiVersion: kubeproxy.config.k8s.io/v1alpha1",
        "kind: KubeProxyConfiguration",
        "mode: ipvs",
        "clusterCIDR: 10.244.0.0/16",
        "ipvs:",
        "  scheduler: wrr",
        "  minSyncPeriod: 0s",
        "  syncPeriod: 1m0s",
        "iptables:",
        "  masqueradeAll: true",
      ].join("\n"),
    );
    expect(cfg).toMatchObject({
      mode: "ipvs",
      clusterCIDR: "10.244.0.0/16",
      ipvs: { scheduler: "wrr", minSyncPeriodMs: 0, syncPeriodMs: 60_000 },
    });
    expect(cfg.iptables.masqueradeAll).toBe(true);
  });

  it("reads the file kubeadm writes into the kube-proxy ConfigMap", () => {
    const cfg = parseProxyConfig(
      [
        "apiVersion: kubeproxy.config.k8s.io/v1alpha1",
        "kind: KubeProxyConfiguration",
        "bindAddress: 0.0.0.0",
        "clientConnection:",
        "  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf",
        "clusterCIDR: 10.244.0.0/16",
        "healthzBindAddress: 0.0.0.0:10256",
        "metricsBindAddress: 0.0.0.0:10249",
        "ipvs:",
        '  scheduler: ""',
        'mode: ""',
      ].join("\n"),
    );
    expect(cfg).toMatchObject({
      mode: "iptables",
      kubeconfig: "/var/lib/kube-proxy/kubeconfig.conf",
      metricsBindAddress: "0.0.0.0:10249",
    });
    expect(cfg.ipvs.scheduler).toBe("rr");
  });

  it("parses Go durations", () => {
    expect(parseDuration("1s", "x")).toBe(1000);
    expect(parseDuration("500ms", "x")).toBe(500);
    expect(parseDuration("1h30m", "x")).toBe(5_400_000);
    expect(() => parseDuration("soon", "x")).toThrow(ConfigError);
  });

  it("explains what is wrong with a bad configuration", () => {
    expect(() => parseProxyConfig("mode: nftables")).toThrow(/mode "nftables" is not supported here/);
    expect(() => parseProxyConfig("mode: ipvs\nipvs:\n  scheduler: fastest")).toThrow(
      /ipvs.scheduler "fastest" is not one of rr, wrr/,
    );
    expect(() => parseProxyConfig("mode: [")).toThrow(/not valid YAML/);
    expect(() => parseProxyConfig("kind: Pod")).toThrow(/expected KubeProxyConfiguration/);
    expect(() => parseProxyConfig("clusterCIDR: banana")).toThrow(/not an IPv4 CIDR/);
    expect(() => parseProxyConfig("iptables:\n  syncPeriod: 0s")).toThrow(/greater than 0/);
    expect(() => parseProxyConfig("- a\n- b")).toThrow(/must be a mapping/);
  });
});
