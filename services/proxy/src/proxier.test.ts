import { describe, expect, it } from "vitest";
import { ServiceNat, type NatLoad } from "@klab/dataplane/nat/index.ts";
import { DEFAULT_CONFIG } from "./config.ts";
import { ProxierHealth } from "./health.ts";
import { ProxyMetrics } from "./metrics.ts";
import { Proxier, type NatSink } from "./proxier.ts";
import { ep, service, slice, tcp } from "./test-fixtures.ts";

const silent = { info() {}, warn() {}, error() {} };

function proxier(sink: NatSink, config = DEFAULT_CONFIG) {
  const svc = service("default", "web", { clusterIP: "10.96.100.10", ports: [tcp("http", 80)] });
  const eps = slice("default", "web", [{ name: "http", port: 8080 }], [ep("10.244.1.5", "node-1")]);
  return new Proxier({
    config: { ...config, clusterCIDR: "10.244.0.0/16" },
    nodeName: "node-1",
    nodeIPs: ["172.29.0.3"],
    source: { services: () => [svc], endpointSlices: () => [eps], node: () => undefined },
    sink,
    metrics: new ProxyMetrics(false),
    health: new ProxierHealth(60_000),
    log: silent,
  });
}

describe("syncProxyRules", () => {
  it("ensures the jumps on the first (full) sync only, and deletes chains left by a previous run", async () => {
    const nat = new ServiceNat();
    nat.load({ mode: "iptables", iptablesRestore: "*nat\n:KUBE-SVC-LEFTOVERAAAAAAAA - [0:0]\nCOMMIT\n" });
    const loads: NatLoad[] = [];
    const p = proxier({
      async load(req) {
        loads.push(req);
        nat.load(req);
      },
      async natChains() {
        return [...(nat.iptables.table("nat")?.chains.keys() ?? [])];
      },
    });
    await p.syncProxyRules();
    await p.syncProxyRules();
    expect(loads[0].ensureRules?.length).toBeGreaterThan(0);
    expect(loads[1].ensureRules).toBeUndefined();
    expect(loads[0].iptablesRestore).toContain("-X KUBE-SVC-LEFTOVERAAAAAAAA");
    expect(nat.iptables.table("nat")?.chains.has("KUBE-SVC-LEFTOVERAAAAAAAA")).toBe(false);
    expect(nat.iptables.table("nat")?.chains.get("PREROUTING")?.rules).toHaveLength(1);
  });

  it("keeps running when the dataplane refuses or is not there, and syncs fully next time", async () => {
    let fail = true;
    const loads: NatLoad[] = [];
    const p = proxier({
      async load(req) {
        if (fail) throw new Error("no node dataplane is listening at /nowhere");
        loads.push(req);
      },
    });
    await p.syncProxyRules();
    expect(p.syncs).toBe(0);
    fail = false;
    await p.syncProxyRules();
    expect(p.syncs).toBe(1);
    expect(loads[0].ensureRules).toBeDefined();
    p.stop();
  });
});
