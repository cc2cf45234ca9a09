import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { hostname } from "node:os";
import pino, { type Logger } from "pino";
import type { ConfigMap, EndpointSlice, Node, Service } from "@klab/api";
import { Informer, KubeClient } from "@klab/client";
import { ConfigError, DEFAULT_CONFIG, parseProxyConfig, syncPeriods, type ProxyConfig } from "./config.ts";
import { createHealthzServer, ProxierHealth, ServiceHealthServers } from "./health.ts";
import { ProxyMetrics } from "./metrics.ts";
import { Proxier, socketSink, type NatSink } from "./proxier.ts";
import { UserspaceProxier } from "./userspace.ts";

// kube-proxy as a process: read the configuration, watch Services, EndpointSlices and this Node,
// sync rules into the node dataplane, serve /healthz (10256) and /metrics (10249).

export interface ProxyRunOptions {
  kubeconfig?: string;
  /** the Node this proxy serves (--hostname-override); defaults to the host name */
  nodeName?: string;
  /** node addresses to use until the Node object lists them */
  nodeIPs?: string[];
  /** the dataplane's loader socket (or a sink, for tests) */
  natSocket?: string;
  sink?: NatSink;
  /** a KubeProxyConfiguration file instead of ConfigMap kube-system/kube-proxy */
  configFile?: string;
  /** overrides for the configuration (flags win over the file, as in kube-proxy) */
  overrides?: Partial<
    Pick<ProxyConfig, "mode" | "healthzBindAddress" | "metricsBindAddress" | "clusterCIDR">
  >;
  /** where userspace mode and health check node ports listen (0.0.0.0 on a node) */
  listenHost?: string;
  log?: Logger;
  client?: KubeClient;
}

export interface RunningProxy {
  config: ProxyConfig;
  proxier: Proxier;
  healthzPort: number;
  metricsPort: number;
  metrics: ProxyMetrics;
  stop(): Promise<void>;
}

export async function loadProxyConfig(client: KubeClient, file?: string): Promise<ProxyConfig> {
  if (file) return parseProxyConfig(readFileSync(file, "utf8"));
  const cm = await client.get<ConfigMap>("v1", "configmaps", "kube-system", "kube-proxy");
  const text = cm?.data?.["config.conf"];
  return text === undefined ? { ...DEFAULT_CONFIG } : parseProxyConfig(text);
}

function listen(server: Server, bind: string): Promise<number> {
  const i = bind.lastIndexOf(":");
  const host = bind.slice(0, i);
  const port = Number(bind.slice(i + 1));
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve((server.address() as { port: number }).port);
    });
  });
}

export async function run(options: ProxyRunOptions): Promise<RunningProxy> {
  const log = options.log ?? pino({ name: "kube-proxy" });
  let config: ProxyConfig;
  let client: KubeClient;
  try {
    // With --config the file also says how to reach the API server (clientConnection.kubeconfig);
    // without it, the configuration comes from ConfigMap kube-system/kube-proxy.
    const fromFile = options.configFile
      ? parseProxyConfig(readFileSync(options.configFile, "utf8"))
      : undefined;
    client = options.client ?? KubeClient.resolve(options.kubeconfig ?? fromFile?.kubeconfig);
    config = { ...(fromFile ?? (await loadProxyConfig(client))), ...stripUndefined(options.overrides ?? {}) };
  } catch (err) {
    if (err instanceof ConfigError) log.error({ err: err.message }, "invalid kube-proxy configuration");
    throw err;
  }
  const nodeName = options.nodeName ?? config.hostnameOverride ?? hostname();
  const sink = options.sink ?? socketSink(requireSocket(options.natSocket));
  log.info(
    {
      mode: config.mode,
      node: nodeName,
      scheduler: config.mode === "ipvs" ? config.ipvs.scheduler : undefined,
    },
    "Using " + config.mode + " Proxier",
  );

  const services = new Informer<Service>(client, "v1", "services");
  const slices = new Informer<EndpointSlice>(client, "discovery.k8s.io/v1", "endpointslices");
  const nodes = new Informer<Node>(client, "v1", "nodes", { fieldSelector: `metadata.name=${nodeName}` });
  const metrics = new ProxyMetrics();
  const health = new ProxierHealth(2 * syncPeriods(config).syncPeriodMs);
  const listenHost = options.listenHost ?? "0.0.0.0";
  const serviceHealth = new ServiceHealthServers(
    listenHost,
    () => health.healthy(),
    (port, err) => log.warn({ port, err: err.message }, "cannot open health check node port"),
  );
  const userspace = config.mode === "userspace" ? new UserspaceProxier(listenHost, log) : undefined;
  const proxier = new Proxier({
    config,
    nodeName,
    nodeIPs: options.nodeIPs,
    source: {
      services: () => services.list(),
      endpointSlices: () => slices.list(),
      node: () => nodes.list()[0],
    },
    sink,
    metrics,
    health,
    log,
    userspace,
    serviceHealth,
  });
  for (const [inf, kind] of [
    [services, "service"],
    [slices, "endpoints"],
    [nodes, "node"],
  ] as const) {
    const inform = inf as Informer;
    inform.on("add", () => proxier.changed(kind));
    inform.on("update", () => proxier.changed(kind));
    inform.on("delete", () => proxier.changed(kind));
    inform.on("error", (err) =>
      log.warn({ resource: inform.plural, err: err.message }, "watch failed; relisting"),
    );
  }

  const healthz = createHealthzServer(health);
  const metricsServer = createServer(async (req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/metrics") {
      res.writeHead(200, { "Content-Type": metrics.registry.contentType });
      res.end(await metrics.registry.metrics());
    } else if (path === "/proxyMode") {
      res.writeHead(200, { "Content-Type": "text/plain; charset=utf-8" });
      res.end(config.mode);
    } else if (path === "/healthz" || path === "/livez") {
      res.writeHead(200, { "Content-Type": "text/plain; charset=utf-8" });
      res.end("ok");
    } else {
      res.writeHead(404);
      res.end("404 page not found\n");
    }
  });
  const healthzPort = await listen(healthz, config.healthzBindAddress);
  const metricsPort = await listen(metricsServer, config.metricsBindAddress);

  // kube-proxy does not sync until it has seen Services and endpoints once.
  await Promise.all([services.start(), slices.start(), nodes.start()]);
  proxier.start();

  return {
    config,
    proxier,
    healthzPort,
    metricsPort,
    metrics,
    async stop() {
      proxier.stop();
      services.stop();
      slices.stop();
      nodes.stop();
      await userspace?.close();
      await serviceHealth.close();
      await Promise.all([healthz, metricsServer].map((s) => new Promise((r) => s.close(r))));
      if (!options.client) await client.close();
    },
  };
}

function requireSocket(path: string | undefined): string {
  const p = path ?? process.env.KLAB_NAT_SOCKET;
  if (!p)
    throw new Error(
      "kube-proxy needs the node dataplane's socket: pass --nat-socket PATH (or set KLAB_NAT_SOCKET)",
    );
  return p;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
