import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

// kube-proxy's own metric names (subsystem "kubeproxy"), so dashboards built for real nodes
// read these the same way.

export class ProxyMetrics {
  readonly registry = new Registry();
  private readonly buckets = Array.from({ length: 15 }, (_, i) => 0.001 * 2 ** i);
  readonly syncDuration = new Histogram({
    name: "kubeproxy_sync_proxy_rules_duration_seconds",
    help: "SyncProxyRules latency in seconds",
    buckets: this.buckets,
    registers: [this.registry],
  });
  readonly syncFullDuration = new Histogram({
    name: "kubeproxy_sync_full_proxy_rules_duration_seconds",
    help: "SyncProxyRules latency in seconds for full resyncs",
    buckets: this.buckets,
    registers: [this.registry],
  });
  readonly lastSync = new Gauge({
    name: "kubeproxy_sync_proxy_rules_last_timestamp_seconds",
    help: "The last time proxy rules were successfully synced",
    registers: [this.registry],
  });
  readonly lastQueued = new Gauge({
    name: "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds",
    help: "The last time a sync of proxy rules was queued",
    registers: [this.registry],
  });
  readonly endpointChanges = new Counter({
    name: "kubeproxy_sync_proxy_rules_endpoint_changes_total",
    help: "Cumulative proxy rules Endpoint changes",
    registers: [this.registry],
  });
  readonly serviceChanges = new Counter({
    name: "kubeproxy_sync_proxy_rules_service_changes_total",
    help: "Cumulative proxy rules Service changes",
    registers: [this.registry],
  });
  readonly iptablesTotal = new Gauge({
    name: "kubeproxy_sync_proxy_rules_iptables_total",
    help: "Total number of iptables rules owned by kube-proxy",
    labelNames: ["table"],
    registers: [this.registry],
  });
  readonly restoreFailures = new Counter({
    name: "kubeproxy_sync_proxy_rules_iptables_restore_failures_total",
    help: "Cumulative proxy iptables restore failures",
    registers: [this.registry],
  });
  readonly noLocalEndpoints = new Gauge({
    name: "kubeproxy_sync_proxy_rules_no_local_endpoints_total",
    help: "Number of services with a Local traffic policy and no endpoints",
    labelNames: ["traffic_policy"],
    registers: [this.registry],
  });
  readonly ipvsVirtualServers = new Gauge({
    name: "klab_proxy_ipvs_virtual_servers",
    help: "Virtual servers loaded in ipvs mode",
    registers: [this.registry],
  });

  constructor(defaults = true) {
    if (defaults) collectDefaultMetrics({ register: this.registry });
  }
}
