import { existsSync } from "node:fs";
import { isIP } from "node:net";
import { resolve } from "node:path";
import type { NodeAgentOptions } from "./agent.ts";

export interface NodeAgentFlags {
  kubeconfig: string;
  nodeName: string;
  nodeIP: string;
  stateDir: string;
  clusterDns?: string;
  clusterDomain?: string;
  netnsPrefix?: string;
  nodeNetns?: string;
  kubeletPort?: string;
  resolvConf?: string;
  podRoutes?: string;
  /** "tun" (the userspace dataplane) or "bridge" (a kernel bridge); default tun when /dev/net/tun exists */
  podNetwork?: string;
  /** false: no VXLAN overlay socket (a single node) */
  overlay?: boolean;
}

export class ConfigError extends Error {}

/** Parses and validates the flags once, at the edge. */
export function parseConfig(f: NodeAgentFlags, programs: Record<string, string>): NodeAgentOptions {
  if (!existsSync(f.kubeconfig)) throw new ConfigError(`--kubeconfig ${f.kubeconfig}: no such file`);
  if (!/^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$/.test(f.nodeName))
    throw new ConfigError(`--node-name ${JSON.stringify(f.nodeName)} is not a valid DNS-1123 subdomain`);
  if (isIP(f.nodeIP) !== 4)
    throw new ConfigError(`--node-ip ${JSON.stringify(f.nodeIP)} is not an IPv4 address`);
  const port = Number(f.kubeletPort ?? 10250);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new ConfigError(`--kubelet-port ${f.kubeletPort} is not a port`);
  const clusterDNS = (f.clusterDns ?? "10.96.0.10").split(",").map((s) => s.trim());
  for (const ip of clusterDNS)
    if (isIP(ip) !== 4) throw new ConfigError(`--cluster-dns ${ip} is not an IPv4 address`);
  const podNetwork = f.podNetwork ?? (existsSync("/dev/net/tun") ? "tun" : "bridge");
  if (podNetwork !== "tun" && podNetwork !== "bridge")
    throw new ConfigError(`--pod-network ${podNetwork}: use tun or bridge`);
  const prefix = f.netnsPrefix ?? "klab";
  if (!/^[a-z0-9-]{1,20}$/.test(prefix))
    throw new ConfigError(`--netns-prefix ${prefix}: use 1-20 of [a-z0-9-]`);
  return {
    kubeconfig: f.kubeconfig,
    nodeName: f.nodeName,
    nodeIP: f.nodeIP,
    stateDir: resolve(f.stateDir),
    clusterDNS,
    clusterDomain: f.clusterDomain ?? "cluster.local",
    netnsPrefix: prefix,
    network: {
      nodeNetns: f.nodeNetns,
      bridge: "cbr0",
      routes: (f.podRoutes ?? "10.244.0.0/16,10.96.0.0/12,172.29.0.0/16,203.0.113.0/24")
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean),
      mtu: podNetwork === "tun" ? 1450 : 1500,
    },
    podNetwork,
    overlay: f.overlay !== false,
    resolvConfPath: f.resolvConf ?? "/etc/resolv.conf",
    hostsPath: "/etc/hosts",
    programs,
    kubeletPort: port,
    kubeletBind: "0.0.0.0",
    heartbeatSeconds: 10,
  };
}
