import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type { Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ConfigMap, EndpointSlice, Service } from "@klab/api";
import { KubeClient } from "@klab/client";
import { ipvsadmList, iptablesSave, ServiceNat, startNatLoader } from "@klab/dataplane/nat/index.ts";
import { startApiServer, type TestApiServer } from "../../../test/support/apiserver.ts";
import { run, type RunningProxy } from "./app.ts";
import { serviceClusterChain } from "./chain-names.ts";

// kube-proxy end to end: a real API server, the proxy process logic with its informers, and
// the dataplane's loader socket; the proxy programs what the API says and follows changes.

let api: TestApiServer;
let client: KubeClient;
let dir: string;
let loader: Server;
const nat = new ServiceNat();
const socket = () => join(dir, "nat.sock");
let proxy: RunningProxy | undefined;

async function eventually<T>(what: string, fn: () => T | undefined | false, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const slice = (ips: string[]): EndpointSlice => ({
  apiVersion: "discovery.k8s.io/v1",
  kind: "EndpointSlice",
  metadata: {
    namespace: "default",
    name: "web-manual",
    labels: { "kubernetes.io/service-name": "web", "endpointslice.kubernetes.io/managed-by": "klab-test" },
  },
  addressType: "IPv4",
  endpoints: ips.map((ip) => ({ addresses: [ip], conditions: { ready: true }, nodeName: "node-1" })),
  ports: [{ name: "http", port: 8080, protocol: "TCP" }],
});

async function setMode(mode: string): Promise<void> {
  const cm: ConfigMap = {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { namespace: "kube-system", name: "kube-proxy" },
    data: {
      "config.conf": `apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: ${mode}\nclusterCIDR: 10.244.0.0/16\n`,
    },
  };
  const existing = await client.get<ConfigMap>("v1", "configmaps", "kube-system", "kube-proxy");
  if (existing)
    await client.update({
      ...cm,
      metadata: { ...cm.metadata, resourceVersion: existing.metadata.resourceVersion },
    });
  else await client.create(cm);
}

async function startProxy(): Promise<RunningProxy> {
  return run({
    client,
    nodeName: "node-1",
    nodeIPs: ["172.29.0.3"],
    natSocket: socket(),
    overrides: { healthzBindAddress: "127.0.0.1:0", metricsBindAddress: "127.0.0.1:0" },
    listenHost: "127.0.0.1",
    log: pino({ level: "silent" }),
  });
}

beforeAll(async () => {
  api = await startApiServer();
  client = KubeClient.fromKubeconfig(api.kubeconfig);
  dir = mkdtempSync(join(tmpdir(), "klab-proxy-"));
  loader = await startNatLoader(nat, socket());
  const svc: Service = {
    apiVersion: "v1",
    kind: "Service",
    metadata: { namespace: "default", name: "web" },
    spec: { ports: [{ name: "http", port: 80, protocol: "TCP", targetPort: 8080 }] },
  };
  await client.create(svc);
  await client.create(slice(["10.244.1.5", "10.244.1.6", "10.244.2.7"]));
});

afterAll(async () => {
  await proxy?.stop();
  await new Promise((r) => loader?.close(r));
  await client?.close();
  await api?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("kube-proxy process", () => {
  it("programs IPVS from the ConfigMap's mode and follows endpoint changes", async () => {
    await setMode("ipvs");
    proxy = await startProxy();
    expect(proxy.config.mode).toBe("ipvs");
    const svc = await client.get<Service>("v1", "services", "default", "web");
    const vip = svc?.spec?.clusterIP as string;
    await eventually("the virtual server", () =>
      ipvsadmList(nat.ipvsStage.table).includes(`TCP  ${vip}:80 rr`),
    );
    expect(nat.mode).toBe("ipvs");
    expect(nat.holdsAddress(vip)).toBe(true);
    expect(ipvsadmList(nat.ipvsStage.table)).toContain("-> 10.244.2.7:8080");

    const current = await client.get<EndpointSlice>(
      "discovery.k8s.io/v1",
      "endpointslices",
      "default",
      "web-manual",
    );
    await client.update({
      ...slice(["10.244.1.5"]),
      metadata: { ...slice([]).metadata, resourceVersion: current?.metadata.resourceVersion },
    });
    await eventually(
      "the removed endpoints to go",
      () => !ipvsadmList(nat.ipvsStage.table).includes("10.244.2.7"),
    );
  });

  it("serves /healthz, /metrics and /proxyMode like kube-proxy", async () => {
    const p = proxy as RunningProxy;
    const healthz = await fetch(`http://127.0.0.1:${p.healthzPort}/healthz`);
    expect(healthz.status).toBe(200);
    const body = (await healthz.json()) as {
      lastUpdated: string;
      currentTime: string;
      nodeEligible: boolean;
    };
    expect(body.lastUpdated).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \+0000 UTC$/);
    expect(body.nodeEligible).toBe(true);
    const metrics = await (await fetch(`http://127.0.0.1:${p.metricsPort}/metrics`)).text();
    expect(metrics).toMatch(/kubeproxy_sync_proxy_rules_duration_seconds_count [1-9]/);
    expect(metrics).toContain("kubeproxy_sync_proxy_rules_last_timestamp_seconds");
    expect(await (await fetch(`http://127.0.0.1:${p.metricsPort}/proxyMode`)).text()).toBe("ipvs");
  });

  it("switches the dataplane to iptables when the ConfigMap changes and kube-proxy restarts", async () => {
    await proxy?.stop();
    proxy = undefined;
    await setMode("iptables");
    proxy = await startProxy();
    const chain = serviceClusterChain("default/web:http", "tcp");
    await eventually(
      "iptables rules",
      () => nat.mode === "iptables" && iptablesSave(nat.iptables).includes(`:${chain} - [0:0]`),
    );
    expect(nat.ipvsStage.table.size).toBe(0);
    expect(nat.holdsAddress("10.96.0.1")).toBe(false);
    // The kubernetes Service reaches the API server through kube-proxy's well-known chain.
    expect(iptablesSave(nat.iptables)).toContain("-j KUBE-SVC-NPX46M4PTMTKRN6Y");
  });

  it("takes --config FILE with the API server from clientConnection.kubeconfig, as the DaemonSet runs it", async () => {
    await proxy?.stop();
    proxy = undefined;
    const file = join(dir, "config.conf");
    writeFileSync(
      file,
      `apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nclientConnection:\n  kubeconfig: ${api.kubeconfig}\nmode: ipvs\nipvs:\n  scheduler: ""\nhealthzBindAddress: 127.0.0.1:0\nmetricsBindAddress: 127.0.0.1:0\n`,
    );
    proxy = await run({
      configFile: file,
      nodeName: "node-1",
      natSocket: socket(),
      listenHost: "127.0.0.1",
      log: pino({ level: "silent" }),
    });
    await eventually("ipvs mode from the file", () => nat.mode === "ipvs" && nat.ipvsStage.table.size > 0);
    await proxy.stop();
    proxy = undefined;
  });

  it("refuses to start on a broken configuration, saying what is wrong", async () => {
    await setMode("nftables");
    await expect(startProxy()).rejects.toThrow(/mode "nftables" is not supported here/);
  });
});
