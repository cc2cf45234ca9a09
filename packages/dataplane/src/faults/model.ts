/**
 * The fault model: what a learner can break on purpose, as plain data. Faults are stored as YAML,
 * one per key of the ConfigMap kube-system/klab-faults, so everything here validates input that
 * a person typed and returns clear errors instead of throwing deep inside a dataplane.
 */
import { isIPv4 } from "node:net";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";

/** Link faults, as `tc qdisc … netem` / `tbf` would apply them on a link. */
export const LINK_FAULT_KINDS = [
  "delay",
  "loss",
  "duplicate",
  "corrupt",
  "bandwidth",
  "mtu",
  "partition",
] as const;
/** Service faults, named after Toxiproxy's toxics (reset_peer, timeout, slow_close, limit_data). */
export const SERVICE_FAULT_KINDS = ["reset", "timeout", "slow-close", "limit-data"] as const;
/** DNS faults, answered by CoreDNS's `fault` plugin. */
export const DNS_FAULT_KINDS = ["dns-servfail", "dns-nxdomain", "dns-delay"] as const;
/**
 * Node faults, applied by the node agent of the target node: its kubelet (kill-container,
 * freeze-node), its kube-proxy (stop-kube-proxy) or its conntrack table (flush, fill).
 */
export const NODE_FAULT_KINDS = [
  "kill-container",
  "freeze-node",
  "stop-kube-proxy",
  "conntrack-flush",
  "conntrack-fill",
] as const;
/** Faults that act once and are then removed from klab-faults by the node that carried them out. */
export const ONE_SHOT_FAULT_KINDS = ["kill-container", "conntrack-flush"] as const;
export const FAULT_KINDS = [
  ...LINK_FAULT_KINDS,
  ...SERVICE_FAULT_KINDS,
  ...DNS_FAULT_KINDS,
  ...NODE_FAULT_KINDS,
] as const;

export type LinkFaultKind = (typeof LINK_FAULT_KINDS)[number];
export type ServiceFaultKind = (typeof SERVICE_FAULT_KINDS)[number];
export type DnsFaultKind = (typeof DNS_FAULT_KINDS)[number];
export type NodeFaultKind = (typeof NODE_FAULT_KINDS)[number];
export type FaultKind = (typeof FAULT_KINDS)[number];

/**
 * Where a fault applies. Link faults: `pod` (traffic to and from that pod IP, applied by the
 * pod's node) or `node` (traffic between that node IP and every other node, or only `peer`).
 * Service faults: `service` "ClusterIP:port". DNS faults: `name`, a pattern where `*` matches
 * any run of characters ("*.example.com.", "web.default.svc.cluster.local.").
 * Node faults: `node` (a node IP); kill-container: `podName` "namespace/name" and optionally
 * `container`.
 */
export interface FaultTarget {
  pod?: string;
  podName?: string;
  container?: string;
  node?: string;
  peer?: string;
  service?: string;
  name?: string;
}

export interface Fault {
  id: string;
  kind: FaultKind;
  target: FaultTarget;
  /** delay, dns-delay: added latency in ms; slow-close: how long a FIN is held back (Toxiproxy's `delay`). */
  delayMs?: number;
  /** delay: uniform jitter ± ms. */
  jitterMs?: number;
  /** loss, duplicate, corrupt: the share of packets affected, 0–100. */
  percent?: number;
  /** bandwidth: the rate in bytes per second. */
  rateBytesPerSecond?: number;
  /** bandwidth: the bucket size in bytes. Default: 10 ms of the rate, at least 3000. */
  burstBytes?: number;
  /** bandwidth: how long a packet may wait for tokens before it is dropped. Default 200 ms. */
  queueMs?: number;
  /** mtu: packets larger than this with DF set vanish (no ICMP "fragmentation needed"). */
  mtu?: number;
  /** limit-data: bytes the Service may send on a connection before it is reset (`bytes`). */
  bytes?: number;
  /** conntrack-fill: nf_conntrack_max while the fault lasts (default 4096, or the node's if lower). */
  max?: number;
}

export class FaultError extends Error {}

const ID_RE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** "100ms", "1.5s", "250" (ms) → milliseconds. */
export function parseDuration(input: string | number, what = "duration"): number {
  if (typeof input === "number") {
    if (!Number.isFinite(input) || input < 0) throw new FaultError(`${what} must be a non-negative number`);
    return input;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*(us|µs|ms|s|m)?\s*$/.exec(input);
  if (!m) throw new FaultError(`${what} ${JSON.stringify(input)} is not a duration (e.g. 100ms, 1.5s)`);
  const n = Number(m[1]);
  const unit = m[2] ?? "ms";
  const factor = unit === "s" ? 1000 : unit === "m" ? 60_000 : unit === "ms" ? 1 : 0.001;
  return n * factor;
}

/** "5%", "5", 0.5 → 0–100. */
export function parsePercent(input: string | number, what = "percentage"): number {
  const n = typeof input === "number" ? input : Number(/^\s*([\d.]+)\s*%?\s*$/.exec(input)?.[1] ?? NaN);
  if (!Number.isFinite(n) || n < 0 || n > 100)
    throw new FaultError(`${what} ${JSON.stringify(input)} must be between 0% and 100%`);
  return n;
}

const RATE_UNITS: Record<string, number> = {
  bit: 1 / 8,
  kbit: 1000 / 8,
  mbit: 1e6 / 8,
  gbit: 1e9 / 8,
  bps: 1,
  kbps: 1000,
  mbps: 1e6,
  gbps: 1e9,
};

/** tc's rate units: "1mbit" (bits/s), "100kbps" (bytes/s) → bytes per second. */
export function parseRate(input: string | number): number {
  if (typeof input === "number") {
    if (!Number.isFinite(input) || input <= 0)
      throw new FaultError(`rate must be a positive number of bytes per second`);
    return input;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*$/i.exec(input);
  const factor = m ? RATE_UNITS[m[2].toLowerCase()] : undefined;
  if (!m || factor === undefined || Number(m[1]) <= 0)
    throw new FaultError(`rate ${JSON.stringify(input)} is not a rate (e.g. 1mbit, 512kbit, 100kbps)`);
  return Number(m[1]) * factor;
}

function ipv4(v: unknown, what: string): string {
  if (typeof v !== "string" || !isIPv4(v))
    throw new FaultError(`${what} must be an IPv4 address, got ${JSON.stringify(v)}`);
  return v;
}

/** "10.96.0.10:53" → its IP and port. */
export function parseHostPort(v: unknown): { ip: string; port: number } {
  const m = typeof v === "string" ? /^([\d.]+):(\d+)$/.exec(v) : null;
  const port = m ? Number(m[2]) : NaN;
  if (!m || !isIPv4(m[1]) || port < 1 || port > 65535)
    throw new FaultError(`service must be "ClusterIP:port" (e.g. 10.96.0.20:80), got ${JSON.stringify(v)}`);
  return { ip: m[1], port };
}

function num(v: unknown, what: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = typeof v === "string" ? Number(v) : v;
  if (typeof n !== "number" || !Number.isFinite(n) || n < min || n > max)
    throw new FaultError(`${what} must be a number between ${min} and ${max}, got ${JSON.stringify(v)}`);
  return n;
}

/** Validate a fault read from YAML/JSON or built by the CLI. Throws FaultError with what is wrong. */
export function validateFault(input: unknown): Fault {
  if (typeof input !== "object" || input === null || Array.isArray(input))
    throw new FaultError("a fault must be an object with id, kind and target");
  const o = input as Record<string, unknown>;
  if (typeof o.id !== "string" || !ID_RE.test(o.id))
    throw new FaultError(
      `fault id ${JSON.stringify(o.id)} must be a DNS label (lowercase letters, digits, '-')`,
    );
  const kind = o.kind as FaultKind;
  if (!FAULT_KINDS.includes(kind))
    throw new FaultError(
      `fault ${o.id}: unknown kind ${JSON.stringify(o.kind)}; one of ${FAULT_KINDS.join(", ")}`,
    );
  const t = (o.target ?? {}) as Record<string, unknown>;
  if (typeof t !== "object" || Array.isArray(t))
    throw new FaultError(`fault ${o.id}: target must be an object`);
  const target: FaultTarget = {};
  const f: Fault = { id: o.id, kind, target };
  const where = `fault ${o.id} (${kind})`;
  if ((LINK_FAULT_KINDS as readonly string[]).includes(kind)) {
    if (t.pod !== undefined) target.pod = ipv4(t.pod, `${where}: target pod`);
    if (t.node !== undefined) target.node = ipv4(t.node, `${where}: target node`);
    if (t.peer !== undefined) target.peer = ipv4(t.peer, `${where}: target peer`);
    if (!target.pod === !target.node)
      throw new FaultError(`${where}: target needs exactly one of pod (a pod IP) or node (a node IP)`);
    if (target.peer && !target.node) throw new FaultError(`${where}: peer only goes with a node target`);
    if (kind === "partition" && !target.node) throw new FaultError(`${where}: a partition targets a node`);
  } else if ((SERVICE_FAULT_KINDS as readonly string[]).includes(kind)) {
    parseHostPort(t.service);
    target.service = t.service as string;
  } else if ((NODE_FAULT_KINDS as readonly string[]).includes(kind)) {
    if (kind === "kill-container") {
      if (typeof t.podName !== "string" || !/^[a-z0-9][-a-z0-9.]*\/[a-z0-9][-a-z0-9.]*$/.test(t.podName))
        throw new FaultError(`${where}: target podName must be "namespace/name"`);
      target.podName = t.podName;
      if (t.container !== undefined) {
        if (typeof t.container !== "string" || !ID_RE.test(t.container))
          throw new FaultError(`${where}: target container must be a container name`);
        target.container = t.container;
      }
    } else target.node = ipv4(t.node, `${where}: target node`);
  } else {
    if (typeof t.name !== "string" || t.name === "" || !/^[-a-zA-Z0-9_.*]+$/.test(t.name))
      throw new FaultError(`${where}: target name must be a DNS name pattern (e.g. *.example.com.)`);
    target.name = t.name;
  }
  switch (kind) {
    case "delay":
    case "dns-delay":
      if (o.delayMs === undefined) throw new FaultError(`${where}: delayMs is required`);
      f.delayMs = num(o.delayMs, `${where}: delayMs`, 0, 60_000);
      if (o.jitterMs !== undefined) f.jitterMs = num(o.jitterMs, `${where}: jitterMs`, 0, f.delayMs);
      break;
    case "loss":
    case "duplicate":
    case "corrupt":
      if (o.percent === undefined) throw new FaultError(`${where}: percent is required`);
      f.percent = parsePercent(o.percent as number, `${where}: percent`);
      break;
    case "bandwidth":
      if (o.rateBytesPerSecond === undefined)
        throw new FaultError(`${where}: rateBytesPerSecond is required`);
      f.rateBytesPerSecond = num(o.rateBytesPerSecond, `${where}: rateBytesPerSecond`, 1);
      if (o.burstBytes !== undefined) f.burstBytes = num(o.burstBytes, `${where}: burstBytes`, 1500);
      if (o.queueMs !== undefined) f.queueMs = num(o.queueMs, `${where}: queueMs`, 1, 60_000);
      break;
    case "mtu":
      if (o.mtu === undefined) throw new FaultError(`${where}: mtu is required`);
      f.mtu = num(o.mtu, `${where}: mtu`, 68, 65535);
      break;
    case "slow-close":
      if (o.delayMs === undefined) throw new FaultError(`${where}: delayMs is required`);
      f.delayMs = num(o.delayMs, `${where}: delayMs`, 0, 60_000);
      break;
    case "limit-data":
      if (o.bytes === undefined) throw new FaultError(`${where}: bytes is required`);
      f.bytes = num(o.bytes, `${where}: bytes`, 0);
      break;
    case "conntrack-fill":
      if (o.max !== undefined) f.max = num(o.max, `${where}: max`, 1, 4_194_304);
      break;
  }
  return f;
}

export function isLinkFault(f: Fault): boolean {
  return (LINK_FAULT_KINDS as readonly string[]).includes(f.kind);
}
export function isServiceFault(f: Fault): boolean {
  return (SERVICE_FAULT_KINDS as readonly string[]).includes(f.kind);
}
export function isDnsFault(f: Fault): boolean {
  return (DNS_FAULT_KINDS as readonly string[]).includes(f.kind);
}
export function isNodeFault(f: Fault): boolean {
  return (NODE_FAULT_KINDS as readonly string[]).includes(f.kind);
}
export function isOneShotFault(f: Fault): boolean {
  return (ONE_SHOT_FAULT_KINDS as readonly string[]).includes(f.kind);
}

/** A DNS name pattern as a RegExp: `*` is any run of characters, case-insensitive, trailing dot optional. */
export function namePattern(pattern: string): RegExp {
  const body = pattern
    .replace(/\.$/, "")
    .split("*")
    .map((s) => s.replace(/[.+?^${}()|[\]\\-]/g, "\\$&"))
    .join(".*");
  return new RegExp(`^${body}\\.?$`, "i");
}

/** A short human description, as `klab fault list` prints it. */
export function describeFault(f: Fault): string {
  const t = f.target;
  const where = t.pod
    ? `pod ${t.pod}`
    : t.podName
      ? `pod ${t.podName}${t.container ? ` container ${t.container}` : ""}`
      : t.node
        ? `node ${t.node}${t.peer ? ` <-> ${t.peer}` : ""}`
        : t.service
          ? `service ${t.service}`
          : `name ${t.name}`;
  const opts: string[] = [];
  if (f.delayMs !== undefined) opts.push(`delay=${f.delayMs}ms`);
  if (f.jitterMs) opts.push(`jitter=${f.jitterMs}ms`);
  if (f.percent !== undefined) opts.push(`${f.percent}%`);
  if (f.rateBytesPerSecond !== undefined)
    opts.push(`rate=${Math.round((f.rateBytesPerSecond * 8) / 1000)}kbit`);
  if (f.mtu !== undefined) opts.push(`mtu=${f.mtu}`);
  if (f.bytes !== undefined) opts.push(`bytes=${f.bytes}`);
  if (f.max !== undefined) opts.push(`max=${f.max}`);
  return `${where} ${opts.join(" ")}`.trim();
}

/**
 * The faults in the ConfigMap kube-system/klab-faults: one key per fault id, its value the
 * fault as YAML (its `id` defaults to the key). A bad entry is reported and skipped, so one
 * typo does not take the other faults away.
 */
export function faultsFromData(data: Record<string, string> | undefined): {
  faults: Fault[];
  errors: string[];
} {
  const faults: Fault[] = [];
  const errors: string[] = [];
  for (const [key, text] of Object.entries(data ?? {}).sort(([x], [y]) => x.localeCompare(y))) {
    try {
      const value: unknown = parseYaml(text);
      const withId =
        typeof value === "object" && value !== null && !Array.isArray(value) ? { id: key, ...value } : value;
      const fault = validateFault(withId);
      if (fault.id !== key) throw new FaultError(`fault id ${fault.id} differs from its key ${key}`);
      faults.push(fault);
    } catch (err) {
      errors.push(`klab-faults key ${key}: ${(err as Error).message}`);
    }
  }
  return { faults, errors };
}

/** One ConfigMap value for a fault. */
export function faultToYaml(f: Fault): string {
  return stringifyYaml(f);
}
