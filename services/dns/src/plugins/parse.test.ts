import { describe, expect, it } from "vitest";
import pino from "pino";
import { parseCorefile, type Directive } from "../corefile/parse.ts";
import { parseKubernetes } from "./kubernetes/parse.ts";
import { parseForward, parseResolvConf } from "./forward/parse.ts";
import { parseCache } from "./cache/parse.ts";
import { parseLog, COMMON_FORMAT } from "./log/parse.ts";
import { parseHealth } from "./health/parse.ts";
import { parseReload } from "./reload/parse.ts";
import { parseRewrite } from "./rewrite/parse.ts";
import { parseHosts } from "./hosts/parse.ts";
import { parseErrors } from "./errors/parse.ts";
import { DnsServer } from "../server.ts";
import { PLUGIN_ORDER } from "./order.ts";

/** The directives named `name` of the first block of a Corefile named Testfile. */
function dirs(text: string, name: string): Directive[] {
  return parseCorefile(text, "Testfile").blocks[0]!.directives.filter((d) => d.name === name);
}

describe("plugin order", () => {
  it("is CoreDNS's plugin.cfg order, whatever order the Corefile uses", () => {
    expect(PLUGIN_ORDER.map(([n]) => n)).toEqual([
      "reload",
      "bind",
      "ready",
      "health",
      "prometheus",
      "errors",
      "log",
      // klab's own (not in CoreDNS's plugin.cfg): after log so faulted answers are logged, before cache.
      "fault",
      "loadbalance",
      "rewrite",
      "cache",
      "hosts",
      "kubernetes",
      "loop",
      "forward",
    ]);
  });
});

describe("kubernetes block", () => {
  it("reads kubeadm's options and defaults the rest as CoreDNS does", () => {
    const cfg = parseKubernetes(
      dirs(
        `.:53 {\n kubernetes cluster.local in-addr.arpa ip6.arpa {\n  pods insecure\n  fallthrough in-addr.arpa ip6.arpa\n  ttl 30\n }\n}`,
        "kubernetes",
      ),
      ["."],
    );
    expect(cfg).toMatchObject({
      zones: ["cluster.local.", "in-addr.arpa.", "ip6.arpa."],
      pods: "insecure",
      fallthrough: ["in-addr.arpa.", "ip6.arpa."],
      ttl: 30,
      startupTimeoutMs: 5000,
    });
    const bare = parseKubernetes(dirs(`cluster.local:53 {\n kubernetes\n}`, "kubernetes"), [
      "cluster.local.",
    ]);
    expect(bare).toMatchObject({
      zones: ["cluster.local."],
      pods: "disabled",
      ttl: 5,
      namespaces: [],
    });
  });
  it("takes kubeconfig with a context, endpoint, namespaces, endpoint_pod_names and CIDR zones", () => {
    const cfg = parseKubernetes(
      dirs(
        `. {\n kubernetes cluster.local 10.96.0.0/16 {\n  kubeconfig /k/config ctx\n  namespaces default kube-system\n  endpoint_pod_names\n }\n}`,
        "kubernetes",
      ),
      ["."],
    );
    expect(cfg).toMatchObject({
      zones: ["cluster.local.", "96.10.in-addr.arpa."],
      kubeconfig: { path: "/k/config", context: "ctx" },
      namespaces: ["default", "kube-system"],
      endpointPodNames: true,
    });
    expect(
      parseKubernetes(dirs(`. {\n kubernetes {\n  endpoint http://127.0.0.1:8001\n }\n}`, "kubernetes"), [
        ".",
      ]).endpoint,
    ).toBe("http://127.0.0.1:8001");
  });
  it("errors carry the plugin, file and line like CoreDNS", () => {
    const text = `.:53 {\n  kubernetes cluster.local {\n    pods fancy\n  }\n}`;
    expect(() => parseKubernetes(dirs(text, "kubernetes"), ["."])).toThrow(
      "plugin/kubernetes: Testfile:3 - Error during parsing: wrong value for pods: fancy,  must be one of: disabled, verified, insecure",
    );
    expect(() =>
      parseKubernetes(dirs(`.:53 {\n kubernetes {\n  ttl 5000\n }\n}`, "kubernetes"), ["."]),
    ).toThrow("plugin/kubernetes: Testfile:3 - Error during parsing: ttl must be in range [0, 3600]: 5000");
    expect(() => parseKubernetes(dirs(`.:53 {\n kubernetes {\n  pods\n }\n}`, "kubernetes"), ["."])).toThrow(
      "plugin/kubernetes: Testfile:3 - Error during parsing: Wrong argument count or unexpected line ending after 'pods'",
    );
    expect(() =>
      parseKubernetes(dirs(`.:53 {\n kubernetes {\n  bogus 1\n }\n}`, "kubernetes"), ["."]),
    ).toThrow("plugin/kubernetes: Testfile:3 - Error during parsing: unknown property 'bogus'");
    expect(() => parseKubernetes(dirs(`.:53 {\n kubernetes\n kubernetes\n}`, "kubernetes"), ["."])).toThrow(
      "plugin/kubernetes: Testfile:3 - Error during parsing: this plugin can only be used once per Server Block",
    );
  });
});

describe("forward block", () => {
  it("reads upstreams, a resolv.conf file and options with CoreDNS's defaults", () => {
    const f = parseForward(
      dirs(
        `. {\n forward . 127.0.0.1:5300 [::1]:5301 dns://127.0.0.2 /etc/resolv.conf {\n  policy round_robin\n  max_fails 3\n  health_check 1s no_rec\n  except example.org\n  max_concurrent 1000\n }\n}`,
        "forward",
      )[0]!,
      () => "nameserver 127.0.0.53\nsearch x\n",
    );
    expect(f.to).toEqual([
      { host: "127.0.0.1", port: 5300 },
      { host: "::1", port: 5301 },
      { host: "127.0.0.2", port: 53 },
      { host: "127.0.0.53", port: 53 },
    ]);
    expect(f).toMatchObject({
      from: ".",
      policy: "round_robin",
      maxFails: 3,
      healthCheckMs: 1000,
      healthCheckRecursionDesired: false,
      except: ["example.org."],
      maxConcurrent: 1000,
      expireMs: 10_000,
      readTimeoutMs: 2000,
    });
    expect(parseResolvConf("# c\nnameserver 10.0.0.1\nnameserver fe80::1%eth0\noptions ndots:5\n")).toEqual([
      { host: "10.0.0.1", port: 53 },
      { host: "fe80::1", port: 53 },
    ]);
  });
  it("rejects what CoreDNS rejects, at the right line", () => {
    expect(() => parseForward(dirs(`. {\n forward .\n}`, "forward")[0]!)).toThrow(
      "plugin/forward: Testfile:2 - Error during parsing: Wrong argument count or unexpected line ending after '.'",
    );
    expect(() =>
      parseForward(dirs(`. {\n forward . 127.0.0.1 {\n  policy fastest\n }\n}`, "forward")[0]!),
    ).toThrow("plugin/forward: Testfile:3 - Error during parsing: unknown policy 'fastest'");
    expect(() =>
      parseForward(dirs(`. {\n forward . 127.0.0.1 {\n  force_tcp\n  prefer_udp\n }\n}`, "forward")[0]!),
    ).toThrow(/force_tcp and prefer_udp can not be used together/);
    expect(() => parseForward(dirs(`. {\n forward . tls://1.1.1.1\n}`, "forward")[0]!)).toThrow(
      /Testfile:2 - Error during parsing: unsupported protocol 'tls:\/\/'/,
    );
  });
});

describe("other plugin blocks", () => {
  it("cache: TTL caps, tiers, prefetch, serve_stale, disable", () => {
    const c = parseCache(
      dirs(
        `. {\n cache 30 {\n  success 5000 60 10\n  denial 2048\n  prefetch 10 1m 20%\n  serve_stale 1h verify\n  disable success cluster.local\n }\n}`,
        "cache",
      ),
      ["."],
    );
    expect(c.success).toEqual({ capacity: 5000, maxTtl: 60, minTtl: 10, disabledZones: ["cluster.local."] });
    expect(c.denial).toMatchObject({ capacity: 2048, maxTtl: 30, minTtl: 5 });
    expect(c.prefetch).toEqual({ amount: 10, durationMs: 60_000, percentage: 20 });
    expect(c.serveStale).toEqual({ durationMs: 3_600_000, mode: "verify" });
    expect(parseCache(dirs(`. {\n cache\n}`, "cache"), ["."]).success).toMatchObject({
      capacity: 10_000,
      maxTtl: 3600,
      minTtl: 5,
    });
  });
  it("log: default Common Log Format, classes", () => {
    expect(parseLog(dirs(`. {\n log\n}`, "log"), ["."])).toEqual([
      { zones: ["."], format: COMMON_FORMAT, classes: new Set(["success", "denial", "error"]) },
    ]);
    expect(parseLog(dirs(`. {\n log . {\n  class denial error\n }\n}`, "log"), ["."])[0]!.classes).toEqual(
      new Set(["denial", "error"]),
    );
  });
  it("health, reload, errors, hosts, rewrite", () => {
    expect(parseHealth(dirs(`. {\n health {\n  lameduck 5s\n }\n}`, "health"))).toEqual({
      address: ":8080",
      lameduckMs: 5000,
    });
    expect(parseReload(dirs(`. {\n reload\n}`, "reload"))).toEqual({ intervalMs: 30_000, jitterMs: 15_000 });
    expect(() => parseReload(dirs(`. {\n reload 1s\n}`, "reload"))).toThrow(
      "plugin/reload: Testfile:2 - Error during parsing: interval value must be greater or equal to 2s",
    );
    expect(
      parseErrors(dirs(`. {\n errors {\n  consolidate 5m ".* i/o timeout$" warning\n }\n}`, "errors"))
        .consolidate[0],
    ).toMatchObject({ periodMs: 300_000, level: "warning" });
    expect(
      parseHosts(
        dirs(
          `. {\n hosts /etc/hosts example.org {\n  10.0.0.1 a.example.org\n  ttl 60\n  fallthrough\n }\n}`,
          "hosts",
        ),
        ["."],
      ),
    ).toMatchObject({
      path: "/etc/hosts",
      zones: ["example.org."],
      inline: ["10.0.0.1 a.example.org"],
      ttl: 60,
      fallthrough: [],
    });
    const rules = parseRewrite(
      dirs(
        `. {\n rewrite name suffix .corp. .svc.cluster.local.\n rewrite continue type ANY A\n}`,
        "rewrite",
      ),
    );
    expect(rules.map((r) => [r.field, r.mode])).toEqual([
      ["name", "stop"],
      ["type", "continue"],
    ]);
    expect(() => parseRewrite(dirs(`. {\n rewrite edns0 local set 0xffee abc\n}`, "rewrite"))).toThrow(
      /Testfile:2 - Error during parsing: rewrite of 'edns0' is not supported/,
    );
  });
});

describe("server startup errors", () => {
  const start = (corefile: string) =>
    DnsServer.start({
      corefilePath: "Testfile",
      corefile,
      defaultPort: 0,
      defaultHost: "127.0.0.1",
      logger: pino({ level: "silent" }),
      out: () => {},
    });
  it("an unknown directive names its line", async () => {
    await expect(start(`.:0 {\n  log\n  whatever\n}`)).rejects.toThrow(
      "Testfile:3 - Error during parsing: Unknown directive 'whatever'",
    );
  });
  it("the same zone twice on one port is refused", async () => {
    await expect(start(`example.org:0 {\n log\n}\nexample.org:0 {\n log\n}`)).rejects.toThrow(
      /cannot serve dns:\/\/example\.org\.:0 - it is already defined/,
    );
  });
  it("kubernetes without a kubeconfig outside a cluster says so", async () => {
    const env = { ...process.env };
    delete process.env.KUBERNETES_SERVICE_HOST;
    try {
      await expect(start(`.:0 {\n kubernetes cluster.local\n}`)).rejects.toThrow(
        /plugin\/kubernetes: Testfile:2 - Error during parsing: not running in a cluster/,
      );
    } finally {
      process.env = env;
    }
  });
});
