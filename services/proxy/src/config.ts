import { parse as parseYaml } from "yaml";
import { KUBE_PROXY_SCHEDULERS } from "@klab/dataplane/nat/ipvs/schedulers.ts";

// KubeProxyConfiguration (kubeproxy.config.k8s.io/v1alpha1) as kube-proxy reads it from the
// ConfigMap kube-system/kube-proxy, key config.conf: parsed and validated once, here.

export type ProxyMode = "iptables" | "ipvs" | "userspace";

export interface ProxyConfig {
  mode: ProxyMode;
  /** clientConnection.kubeconfig: how this kube-proxy reaches the API server */
  kubeconfig?: string;
  clusterCIDR?: string;
  hostnameOverride?: string;
  /** host:port */
  healthzBindAddress: string;
  metricsBindAddress: string;
  nodePortAddresses: string[];
  iptables: {
    masqueradeAll: boolean;
    masqueradeBit: number;
    localhostNodePorts: boolean;
    minSyncPeriodMs: number;
    syncPeriodMs: number;
  };
  ipvs: {
    scheduler: string;
    minSyncPeriodMs: number;
    syncPeriodMs: number;
    strictARP: boolean;
  };
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(`KubeProxyConfiguration: ${message}`);
    this.name = "ConfigError";
  }
}

export const DEFAULT_CONFIG: ProxyConfig = {
  mode: "iptables",
  healthzBindAddress: "0.0.0.0:10256",
  metricsBindAddress: "127.0.0.1:10249",
  nodePortAddresses: [],
  iptables: {
    masqueradeAll: false,
    masqueradeBit: 14,
    localhostNodePorts: true,
    minSyncPeriodMs: 1000,
    syncPeriodMs: 30_000,
  },
  ipvs: { scheduler: "rr", minSyncPeriodMs: 1000, syncPeriodMs: 30_000, strictARP: false },
};

/** Go's time.Duration text ("1s", "30s", "500ms", "1m0s", "1h30m") in milliseconds. */
export function parseDuration(text: string, field: string): number {
  const units: Record<string, number> = {
    ns: 1e-6,
    us: 1e-3,
    µs: 1e-3,
    ms: 1,
    s: 1000,
    m: 60_000,
    h: 3_600_000,
  };
  if (text === "0") return 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    total += Number(m[1]) * units[m[2]];
    matched = re.lastIndex;
  }
  if (matched === 0 || matched !== text.length)
    throw new ConfigError(`${field}: "${text}" is not a duration (e.g. 1s, 30s, 500ms)`);
  return total;
}

function obj(v: unknown, field: string): Record<string, unknown> {
  if (v === undefined || v === null) return {};
  if (typeof v !== "object" || Array.isArray(v)) throw new ConfigError(`${field} must be a mapping`);
  return v as Record<string, unknown>;
}

function str(v: unknown, field: string): string | undefined {
  if (v === undefined || v === null || v === "") return undefined;
  if (typeof v !== "string") throw new ConfigError(`${field} must be a string`);
  return v;
}

function bool(v: unknown, field: string, dflt: boolean): boolean {
  if (v === undefined || v === null) return dflt;
  if (typeof v !== "boolean") throw new ConfigError(`${field} must be true or false`);
  return v;
}

function cidr(v: string, field: string): string {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(v.trim());
  if (!m || m.slice(1, 5).some((o) => Number(o) > 255) || Number(m[5]) > 32)
    throw new ConfigError(`${field}: "${v}" is not an IPv4 CIDR`);
  return v.trim();
}

function bindAddress(v: unknown, field: string, dflt: string): string {
  const s = str(v, field);
  if (!s) return dflt;
  if (!/^[\d.]+:\d{1,5}$/.test(s) && !/^[\d.]+$/.test(s))
    throw new ConfigError(`${field}: "${s}" is not host:port`);
  return s.includes(":") ? s : `${s}:${dflt.split(":")[1]}`;
}

/** Parses config.conf; an empty document gives kube-proxy's defaults. */
export function parseProxyConfig(text: string): ProxyConfig {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`not valid YAML: ${(err as Error).message.split("\n")[0]}`);
  }
  const root = obj(doc, "the document");
  const kind = str(root.kind, "kind");
  if (kind && kind !== "KubeProxyConfiguration")
    throw new ConfigError(`kind is "${kind}", expected KubeProxyConfiguration`);
  const apiVersion = str(root.apiVersion, "apiVersion");
  if (apiVersion && apiVersion !== "kubeproxy.config.k8s.io/v1alpha1") {
    throw new ConfigError(
      `apiVersion "${apiVersion}" is not supported (use kubeproxy.config.k8s.io/v1alpha1)`,
    );
  }
  const mode = str(root.mode, "mode") ?? "iptables";
  if (mode !== "iptables" && mode !== "ipvs" && mode !== "userspace") {
    throw new ConfigError(`mode "${mode}" is not supported here (use iptables, ipvs or userspace)`);
  }
  const ipt = obj(root.iptables, "iptables");
  const clientConnection = obj(root.clientConnection, "clientConnection");
  const ipvs = obj(root.ipvs, "ipvs");
  const scheduler = str(ipvs.scheduler, "ipvs.scheduler") ?? "rr";
  if (!(KUBE_PROXY_SCHEDULERS as readonly string[]).includes(scheduler)) {
    throw new ConfigError(`ipvs.scheduler "${scheduler}" is not one of ${KUBE_PROXY_SCHEDULERS.join(", ")}`);
  }
  const masqueradeBit = ipt.masqueradeBit ?? 14;
  if (!Number.isInteger(masqueradeBit) || (masqueradeBit as number) < 0 || (masqueradeBit as number) > 31) {
    throw new ConfigError("iptables.masqueradeBit must be an integer from 0 to 31");
  }
  const dur = (v: unknown, field: string, dflt: number) => {
    const s = str(v, field);
    return s === undefined ? dflt : parseDuration(s, field);
  };
  const nodePortAddresses = root.nodePortAddresses ?? [];
  if (!Array.isArray(nodePortAddresses)) throw new ConfigError("nodePortAddresses must be a list of CIDRs");
  const clusterCIDR = str(root.clusterCIDR, "clusterCIDR");
  const cfg: ProxyConfig = {
    mode,
    ...(str(clientConnection.kubeconfig, "clientConnection.kubeconfig")
      ? { kubeconfig: str(clientConnection.kubeconfig, "clientConnection.kubeconfig") }
      : {}),
    clusterCIDR: clusterCIDR ? cidr(clusterCIDR.split(",")[0], "clusterCIDR") : undefined,
    hostnameOverride: str(root.hostnameOverride, "hostnameOverride"),
    healthzBindAddress: bindAddress(
      root.healthzBindAddress,
      "healthzBindAddress",
      DEFAULT_CONFIG.healthzBindAddress,
    ),
    metricsBindAddress: bindAddress(
      root.metricsBindAddress,
      "metricsBindAddress",
      DEFAULT_CONFIG.metricsBindAddress,
    ),
    nodePortAddresses: nodePortAddresses
      .filter((a) => a !== "primary")
      .map((a, i) => cidr(String(a), `nodePortAddresses[${i}]`)),
    iptables: {
      masqueradeAll: bool(ipt.masqueradeAll, "iptables.masqueradeAll", false),
      masqueradeBit: masqueradeBit as number,
      localhostNodePorts: bool(ipt.localhostNodePorts, "iptables.localhostNodePorts", true),
      minSyncPeriodMs: dur(ipt.minSyncPeriod, "iptables.minSyncPeriod", 1000),
      syncPeriodMs: dur(ipt.syncPeriod, "iptables.syncPeriod", 30_000),
    },
    ipvs: {
      scheduler,
      minSyncPeriodMs: dur(ipvs.minSyncPeriod, "ipvs.minSyncPeriod", 1000),
      syncPeriodMs: dur(ipvs.syncPeriod, "ipvs.syncPeriod", 30_000),
      strictARP: bool(ipvs.strictARP, "ipvs.strictARP", false),
    },
  };
  for (const [name, v] of [
    ["iptables.syncPeriod", cfg.iptables.syncPeriodMs],
    ["ipvs.syncPeriod", cfg.ipvs.syncPeriodMs],
  ] as const) {
    if (v <= 0) throw new ConfigError(`${name} must be greater than 0`);
  }
  return cfg;
}

export function syncPeriods(cfg: ProxyConfig): { minSyncPeriodMs: number; syncPeriodMs: number } {
  return cfg.mode === "ipvs" ? cfg.ipvs : cfg.iptables;
}
