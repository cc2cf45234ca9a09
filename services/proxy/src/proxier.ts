import type { EndpointSlice, Node, Service } from "@klab/api";
import { natRequest } from "@klab/dataplane/nat/loader.ts";
import type { NatLoad } from "@klab/dataplane/nat/service-nat.ts";
import { syncPeriods, type ProxyConfig } from "./config.ts";
import type { ProxierHealth, ServiceHealthServers } from "./health.ts";
import { buildIptablesRuleset, iptablesJumpRules } from "./iptables-rules.ts";
import { buildIpvsRuleset } from "./ipvs-rules.ts";
import type { ProxyMetrics } from "./metrics.ts";
import { buildServicePorts, nodeInfo, type NodeInfo, type ServicePortInfo } from "./service-ports.ts";
import { staleUdp, udpState, type UdpState } from "./stale-udp.ts";
import { BoundedFrequencyRunner } from "./sync-runner.ts";
import { buildUserspaceRules, USERSPACE_JUMP_RULES, type UserspaceProxier } from "./userspace.ts";

// The thin shell around the pure builders: informers say something changed, the runner decides
// when to sync, syncProxyRules builds the whole ruleset from the caches and loads it in one step.

export interface ProxierSource {
  services(): Service[];
  endpointSlices(): EndpointSlice[];
  node(): Node | undefined;
}

/** Where the rules go: the node dataplane's loader socket, or anything that loads the same way. */
export interface NatSink {
  load(req: NatLoad): Promise<void>;
  /** nat chains present now (kube-proxy reads them with iptables-save to delete stale ones) */
  natChains?(): Promise<string[]>;
}

export interface ProxierLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface ProxierOptions {
  config: ProxyConfig;
  nodeName: string;
  /** used until the Node object lists its addresses */
  nodeIPs?: string[];
  source: ProxierSource;
  sink: NatSink;
  metrics: ProxyMetrics;
  health: ProxierHealth;
  log: ProxierLogger;
  userspace?: UserspaceProxier;
  serviceHealth?: ServiceHealthServers;
}

export function socketSink(socketPath: string): NatSink {
  return {
    async load(req) {
      const res = await natRequest(socketPath, { op: "load", ...req });
      if (!res.ok) throw new Error(res.error);
    },
    async natChains() {
      const res = await natRequest(socketPath, { op: "iptables-save", table: "nat" });
      if (!res.ok) throw new Error(res.error);
      return (res.text ?? "")
        .split("\n")
        .filter((l) => l.startsWith(":"))
        .map((l) => l.slice(1).split(" ")[0]);
    },
  };
}

export class Proxier {
  readonly runner: BoundedFrequencyRunner;
  private needFullSync = true;
  private activeNatChains: Set<string> | undefined;
  private lastServicePorts: ServicePortInfo[] = [];
  private lastUdp: UdpState | undefined;
  syncs = 0;

  constructor(private readonly o: ProxierOptions) {
    const { minSyncPeriodMs, syncPeriodMs } = syncPeriods(o.config);
    this.runner = new BoundedFrequencyRunner(() => this.syncProxyRules(), minSyncPeriodMs, syncPeriodMs);
  }

  get mode(): ProxyConfig["mode"] {
    return this.o.config.mode;
  }

  start(): void {
    this.runner.start();
    this.runner.run();
  }

  stop(): void {
    this.runner.stop();
  }

  /** An informer saw a change: queue a sync (rate-limited by minSyncPeriod). */
  changed(kind: "service" | "endpoints" | "node"): void {
    if (kind === "service") this.o.metrics.serviceChanges.inc();
    if (kind === "endpoints") this.o.metrics.endpointChanges.inc();
    this.o.metrics.lastQueued.set(Date.now() / 1000);
    this.o.health.queued();
    this.runner.run();
  }

  servicePorts(): ServicePortInfo[] {
    return this.lastServicePorts;
  }

  private node(): NodeInfo {
    const n = this.o.source.node();
    const info = n ? nodeInfo(n) : { name: this.o.nodeName, ips: [] };
    return { name: this.o.nodeName, ips: info.ips.length ? info.ips : (this.o.nodeIPs ?? []) };
  }

  /** Builds the whole ruleset for the current state and loads it; never throws. */
  async syncProxyRules(): Promise<void> {
    const start = process.hrtime.bigint();
    const full = this.needFullSync;
    const cfg = this.o.config;
    const services = this.o.source.services();
    const slices = this.o.source.endpointSlices();
    const node = this.node();
    try {
      let servicePorts: ServicePortInfo[];
      if (cfg.mode === "iptables") {
        let existing = this.activeNatChains;
        if (!existing && this.o.sink.natChains) existing = new Set(await this.o.sink.natChains());
        const r = buildIptablesRuleset(services, slices, node, {
          clusterCIDR: cfg.clusterCIDR,
          masqueradeAll: cfg.iptables.masqueradeAll,
          masqueradeBit: cfg.iptables.masqueradeBit,
          localhostNodePorts: cfg.iptables.localhostNodePorts,
          nodePortAddresses: cfg.nodePortAddresses,
          existingNatChains: existing,
        });
        const udp = udpState(r.servicePorts);
        await this.o.sink.load({
          mode: "iptables",
          iptablesRestore: r.text,
          conntrackFlush: staleUdp(this.lastUdp, udp),
          ...(full
            ? { ensureRules: iptablesJumpRules({ localhostNodePorts: cfg.iptables.localhostNodePorts }) }
            : {}),
        });
        this.activeNatChains = r.activeNatChains;
        this.lastUdp = udp;
        servicePorts = r.servicePorts;
        this.o.metrics.iptablesTotal.set({ table: "filter" }, r.filterRules);
        this.o.metrics.iptablesTotal.set({ table: "nat" }, r.natRules);
        this.o.metrics.noLocalEndpoints.set({ traffic_policy: "internal" }, r.noLocalEndpointsInternal);
        this.o.metrics.noLocalEndpoints.set({ traffic_policy: "external" }, r.noLocalEndpointsExternal);
      } else if (cfg.mode === "ipvs") {
        const r = buildIpvsRuleset(services, slices, node, {
          scheduler: cfg.ipvs.scheduler,
          nodePortAddresses: cfg.nodePortAddresses,
        });
        const udp = udpState(r.servicePorts);
        await this.o.sink.load({
          mode: "ipvs",
          conntrackFlush: staleUdp(this.lastUdp, udp),
          ipvs: r.virtualServers,
          ipvsAddresses: r.addresses,
          clusterCIDR: cfg.clusterCIDR,
          masqueradeAll: cfg.iptables.masqueradeAll,
        });
        this.lastUdp = udp;
        servicePorts = r.servicePorts;
        this.o.metrics.ipvsVirtualServers.set(r.virtualServers.length);
      } else {
        servicePorts = buildServicePorts(services, slices, node);
        const portals = await (this.o.userspace as UserspaceProxier).sync(servicePorts);
        await this.o.sink.load({
          mode: "userspace",
          iptablesRestore: buildUserspaceRules(portals, node.ips[0] ?? "127.0.0.1"),
          ...(full ? { ensureRules: USERSPACE_JUMP_RULES } : {}),
        });
      }
      this.lastServicePorts = servicePorts;
      await this.o.serviceHealth?.sync(servicePorts);
      this.needFullSync = false;
      this.syncs++;
      this.o.health.updated();
      this.o.metrics.lastSync.set(Date.now() / 1000);
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      this.o.metrics.syncDuration.observe(seconds);
      if (full) this.o.metrics.syncFullDuration.observe(seconds);
      this.o.log.info(
        { mode: cfg.mode, servicePorts: servicePorts.length, full, elapsed: seconds },
        "SyncProxyRules complete",
      );
    } catch (err) {
      this.o.metrics.restoreFailures.inc();
      this.needFullSync = true;
      this.activeNatChains = undefined;
      const message = (err as Error).message;
      // A dataplane that is not up yet (node agent still starting) is retried soon; a refused
      // ruleset waits for syncPeriod, as kube-proxy does after a failed iptables-restore.
      const notUp = message.includes("no node dataplane is listening");
      const { minSyncPeriodMs, syncPeriodMs } = syncPeriods(cfg);
      const retryMs = notUp ? Math.max(1000, minSyncPeriodMs) : syncPeriodMs;
      this.o.log.error({ mode: cfg.mode, err: message, retryMs }, "Sync failed");
      this.runner.retryAfter(retryMs);
    }
  }
}
