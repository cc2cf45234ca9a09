// The apiserver's configuration, parsed and checked once at the edge (CLI flags or a test).
import { isIP } from "node:net";

export interface PortRange {
  base: number;
  size: number;
}

export interface ApiServerConfig {
  /** Holds the database, the PKI, the admin token and the kubeconfig. */
  stateDir: string;
  /** 0 picks a free port. */
  port: number;
  bind: string;
  /** The address the `kubernetes` Endpoints point at (kube's --advertise-address). */
  advertiseAddress: string;
  serviceCidr: string;
  clusterCidr: string;
  nodePortRange: PortRange;
  /** More subject alternative names for the serving certificate (IPs or DNS names). */
  extraSans: string[];
  /** How many recent changes watches can resume from before they get 410 Gone. */
  watchWindow: number;
}

export interface ApiServerFlags {
  stateDir: string;
  port?: number | string;
  bind?: string;
  advertiseAddress?: string;
  serviceCidr?: string;
  clusterCidr?: string;
  nodePortRange?: string;
  extraSans?: string[];
  watchWindow?: number;
}

export class ConfigError extends Error {}

function parseCidr(flag: string, value: string): string {
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d+)$/.exec(value);
  if (!m || isIP(m[1]!) !== 4 || Number(m[2]) > 32) {
    throw new ConfigError(`--${flag}: "${value}" is not an IPv4 CIDR such as 10.96.0.0/12`);
  }
  return value;
}

export function parsePortRange(value: string): PortRange {
  const m = /^(\d+)-(\d+)$/.exec(value.trim());
  const base = m ? Number(m[1]) : NaN;
  const last = m ? Number(m[2]) : NaN;
  if (!m || base < 1 || last > 65535 || last < base) {
    throw new ConfigError(`--node-port-range: "${value}" is not a port range such as 30000-32767`);
  }
  return { base, size: last - base + 1 };
}

export function parseConfig(flags: ApiServerFlags): ApiServerConfig {
  if (!flags.stateDir) throw new ConfigError("--state-dir is required");
  const port = Number(flags.port ?? 6443);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigError(`--port: "${flags.port}" is not a TCP port`);
  }
  const bind = flags.bind ?? "127.0.0.1";
  if (!isIP(bind)) throw new ConfigError(`--bind: "${bind}" is not an IP address`);
  const advertiseAddress = flags.advertiseAddress ?? (bind === "0.0.0.0" ? "127.0.0.1" : bind);
  if (isIP(advertiseAddress) !== 4) {
    throw new ConfigError(`--advertise-address: "${advertiseAddress}" is not an IPv4 address`);
  }
  return {
    stateDir: flags.stateDir,
    port,
    bind,
    advertiseAddress,
    serviceCidr: parseCidr("service-cidr", flags.serviceCidr ?? "10.96.0.0/12"),
    clusterCidr: parseCidr("cluster-cidr", flags.clusterCidr ?? "10.244.0.0/16"),
    nodePortRange: parsePortRange(flags.nodePortRange ?? "30000-32767"),
    extraSans: flags.extraSans ?? [],
    watchWindow: flags.watchWindow ?? 100_000,
  };
}

/** The first usable address of the service CIDR: the `kubernetes` Service's ClusterIP. */
export function firstServiceIP(cidr: string): string {
  const [ip, bits] = cidr.split("/") as [string, string];
  const n = ip.split(".").reduce((a, o) => a * 256 + Number(o), 0);
  const mask = Number(bits) === 0 ? 0 : (0xffffffff << (32 - Number(bits))) >>> 0;
  const first = ((n & mask) >>> 0) + 1;
  return [24, 16, 8, 0].map((s) => (first >>> s) & 255).join(".");
}
