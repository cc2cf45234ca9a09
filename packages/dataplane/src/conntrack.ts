/**
 * Connection tracking after Linux nf_conntrack: each connection is one entry reachable from its
 * original tuple (as the first packet had it) and its reply tuple (as replies will carry it,
 * i.e. after NAT, inverted). NAT is stored in the entry as the difference between the two.
 * TCP follows nf_conntrack's state table (without window tracking); timeouts are Linux's
 * defaults (net.netfilter.nf_conntrack_*_timeout*). The clock is injected so tests can age
 * entries without waiting.
 */
import { ipToString } from "./ip.ts";
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from "./packet.ts";
import type { PacketSource } from "./stages.ts";

export type TcpState =
  | "NONE"
  | "SYN_SENT"
  | "SYN_RECV"
  | "ESTABLISHED"
  | "FIN_WAIT"
  | "CLOSE_WAIT"
  | "LAST_ACK"
  | "TIME_WAIT"
  | "CLOSE"
  | "SYN_SENT2";

/** Seconds, as the sysctls name them. */
export interface ConntrackTimeouts {
  tcp_timeout_syn_sent: number;
  tcp_timeout_syn_recv: number;
  tcp_timeout_established: number;
  tcp_timeout_fin_wait: number;
  tcp_timeout_close_wait: number;
  tcp_timeout_last_ack: number;
  tcp_timeout_time_wait: number;
  tcp_timeout_close: number;
  udp_timeout: number;
  udp_timeout_stream: number;
  icmp_timeout: number;
}

/** Linux's defaults (Documentation/networking/nf_conntrack-sysctl.rst). */
export const DEFAULT_TIMEOUTS: Readonly<ConntrackTimeouts> = Object.freeze({
  tcp_timeout_syn_sent: 120,
  tcp_timeout_syn_recv: 60,
  tcp_timeout_established: 432000,
  tcp_timeout_fin_wait: 120,
  tcp_timeout_close_wait: 60,
  tcp_timeout_last_ack: 30,
  tcp_timeout_time_wait: 120,
  tcp_timeout_close: 10,
  udp_timeout: 30,
  udp_timeout_stream: 120,
  icmp_timeout: 30,
});

/** A UDP flow that still sees replies this long after it started is a "stream" (Linux: 2 s). */
const UDP_STREAM_AFTER_MS = 2000;

export interface Tuple {
  proto: number;
  src: number;
  srcPort: number;
  dst: number;
  dstPort: number;
}

export const ORIGINAL = 0;
export const REPLY = 1;
export type Direction = typeof ORIGINAL | typeof REPLY;

export interface ConntrackEntry {
  id: number;
  original: Tuple;
  reply: Tuple;
  /** TCP only. */
  tcpState?: TcpState;
  seenReply: boolean;
  assured: boolean;
  createdAt: number;
  expiresAt: number;
  /** [original, reply] */
  packets: [number, number];
  bytes: [number, number];
  source: PacketSource;
  /** What decided the translation (a kube-proxy chain, an IPVS service), for flow events. */
  rule?: string;
  /** The NetworkPolicy verdict that let the connection in, for flow events. */
  policy?: string;
  /** Set by the Service NAT stage's owner to be told when the entry goes. */
  notifyClose?: boolean;
}

export type RemovalReason = "expired" | "deleted" | "replaced" | "flushed";

export interface ConntrackOptions {
  now?: () => number;
  timeouts?: Partial<ConntrackTimeouts>;
  /** nf_conntrack_max. */
  max?: number;
  onRemove?: (entry: ConntrackEntry, reason: RemovalReason) => void;
}

export function tupleKey(proto: number, src: number, srcPort: number, dst: number, dstPort: number): string {
  return `${proto}/${src}/${srcPort}/${dst}/${dstPort}`;
}

export function invert(t: Tuple): Tuple {
  return { proto: t.proto, src: t.dst, srcPort: t.dstPort, dst: t.src, dstPort: t.srcPort };
}

export function hasDNAT(e: ConntrackEntry): boolean {
  return e.original.dst !== e.reply.src || e.original.dstPort !== e.reply.srcPort;
}

export function hasSNAT(e: ConntrackEntry): boolean {
  return e.original.src !== e.reply.dst || e.original.srcPort !== e.reply.dstPort;
}

// nf_conntrack's TCP state table, indexed [direction][packet kind][current state].
// Packet kinds: SYN, SYN+ACK, FIN, ACK, RST, none. "IV" = invalid, "IG" = ignore.
const S: TcpState[] = [
  "NONE",
  "SYN_SENT",
  "SYN_RECV",
  "ESTABLISHED",
  "FIN_WAIT",
  "CLOSE_WAIT",
  "LAST_ACK",
  "TIME_WAIT",
  "CLOSE",
  "SYN_SENT2",
];
type Next = TcpState | "IV" | "IG";
//                 NO          SS           SR             ES             FW             CW             LA           TW           CL       S2
const TCP_TABLE: Next[][][] = [
  [
    ["SYN_SENT", "SYN_SENT", "IG", "IG", "IG", "IG", "IG", "SYN_SENT", "SYN_SENT", "SYN_SENT2"], // syn
    ["IV", "IV", "SYN_RECV", "IV", "IV", "IV", "IV", "IV", "IV", "SYN_RECV"], // syn+ack
    ["IV", "IV", "FIN_WAIT", "FIN_WAIT", "LAST_ACK", "LAST_ACK", "LAST_ACK", "TIME_WAIT", "CLOSE", "IV"], // fin
    [
      "ESTABLISHED",
      "IV",
      "ESTABLISHED",
      "ESTABLISHED",
      "CLOSE_WAIT",
      "CLOSE_WAIT",
      "TIME_WAIT",
      "TIME_WAIT",
      "CLOSE",
      "IV",
    ], // ack
    ["IV", "CLOSE", "CLOSE", "CLOSE", "CLOSE", "CLOSE", "CLOSE", "CLOSE", "CLOSE", "CLOSE"], // rst
    ["IV", "IV", "IV", "IV", "IV", "IV", "IV", "IV", "IV", "IV"], // none
  ],
  [
    ["IV", "SYN_SENT2", "IV", "IV", "IV", "IV", "IV", "SYN_SENT", "IV", "SYN_SENT2"], // syn
    ["IV", "SYN_RECV", "IG", "IG", "IG", "IG", "IG", "IG", "IG", "SYN_RECV"], // syn+ack
    ["IV", "IV", "FIN_WAIT", "FIN_WAIT", "LAST_ACK", "LAST_ACK", "LAST_ACK", "TIME_WAIT", "CLOSE", "IV"], // fin
    [
      "IV",
      "IG",
      "SYN_RECV",
      "ESTABLISHED",
      "CLOSE_WAIT",
      "CLOSE_WAIT",
      "TIME_WAIT",
      "TIME_WAIT",
      "CLOSE",
      "IG",
    ], // ack
    ["IV", "CLOSE", "CLOSE", "CLOSE", "CLOSE", "CLOSE", "CLOSE", "CLOSE", "CLOSE", "CLOSE"], // rst
    ["IV", "IV", "IV", "IV", "IV", "IV", "IV", "IV", "IV", "IV"], // none
  ],
];
const STATE_INDEX = new Map(S.map((s, i) => [s, i]));

function tcpKind(flags: number): number {
  if (flags & TCP_RST) return 4;
  if (flags & TCP_SYN) return flags & TCP_ACK ? 1 : 0;
  if (flags & TCP_FIN) return 2;
  if (flags & TCP_ACK) return 3;
  return 5;
}

/** The state a new connection starts in for its first packet's flags, or undefined if invalid. */
export function tcpInitialState(flags: number): TcpState | undefined {
  const next = TCP_TABLE[ORIGINAL][tcpKind(flags)][0];
  return next === "IV" || next === "IG" ? undefined : next;
}

export type UpdateResult = "ok" | "invalid" | "reopen";

export class Conntrack {
  readonly timeouts: ConntrackTimeouts;
  /** nf_conntrack_max: a sysctl, so it may be changed while the table is in use. */
  max: number;
  private readonly table = new Map<string, { entry: ConntrackEntry; dir: Direction }>();
  private readonly byId = new Map<number, ConntrackEntry>();
  private readonly now: () => number;
  private readonly onRemove?: ConntrackOptions["onRemove"];
  private nextId = 1;

  constructor(opts: ConntrackOptions = {}) {
    this.now = opts.now ?? (() => performance.now());
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...opts.timeouts };
    this.max = opts.max ?? 262144;
    this.onRemove = opts.onRemove;
  }

  get size(): number {
    return this.byId.size;
  }

  /** Find the entry a packet belongs to, and in which direction it travels. Expired entries are gone. */
  lookup(
    proto: number,
    src: number,
    srcPort: number,
    dst: number,
    dstPort: number,
  ): { entry: ConntrackEntry; dir: Direction } | undefined {
    const hit = this.table.get(tupleKey(proto, src, srcPort, dst, dstPort));
    if (!hit) return undefined;
    if (hit.entry.expiresAt <= this.now()) {
      this.remove(hit.entry, "expired");
      return undefined;
    }
    return hit;
  }

  /** Whether a tuple is taken in either direction (NAT uses this to pick a free source port). */
  inUse(t: Tuple): boolean {
    const hit = this.table.get(tupleKey(t.proto, t.src, t.srcPort, t.dst, t.dstPort));
    if (!hit) return false;
    if (hit.entry.expiresAt <= this.now()) {
      this.remove(hit.entry, "expired");
      return false;
    }
    return true;
  }

  /**
   * Commit a new connection. `reply` is the tuple replies will carry (after NAT). Returns
   * undefined when the table is full or a tuple is already taken (the packet is dropped, as
   * the kernel drops on insert failure).
   */
  create(
    original: Tuple,
    reply: Tuple,
    init: { tcpFlags?: number; source: PacketSource; rule?: string; policy?: string; notifyClose?: boolean },
  ): ConntrackEntry | undefined {
    if (this.byId.size >= this.max) {
      this.sweep();
      if (this.byId.size >= this.max) return undefined;
    }
    const okey = tupleKey(original.proto, original.src, original.srcPort, original.dst, original.dstPort);
    const rkey = tupleKey(reply.proto, reply.src, reply.srcPort, reply.dst, reply.dstPort);
    if (this.table.has(okey) || this.table.has(rkey)) return undefined;
    const now = this.now();
    const entry: ConntrackEntry = {
      id: this.nextId++,
      original,
      reply,
      seenReply: false,
      assured: false,
      createdAt: now,
      expiresAt: now,
      packets: [0, 0],
      bytes: [0, 0],
      source: init.source,
      rule: init.rule,
      policy: init.policy,
      notifyClose: init.notifyClose,
    };
    if (original.proto === IPPROTO_TCP) {
      const state = tcpInitialState(init.tcpFlags ?? TCP_SYN);
      if (!state) return undefined;
      entry.tcpState = state;
      entry.expiresAt = now + this.tcpTimeout(state) * 1000;
    } else if (original.proto === IPPROTO_UDP) {
      entry.expiresAt = now + this.timeouts.udp_timeout * 1000;
    } else if (original.proto === IPPROTO_ICMP) {
      entry.expiresAt = now + this.timeouts.icmp_timeout * 1000;
    } else {
      return undefined;
    }
    this.table.set(okey, { entry, dir: ORIGINAL });
    this.table.set(rkey, { entry, dir: REPLY });
    this.byId.set(entry.id, entry);
    return entry;
  }

  /** Account a packet to its entry and advance its state. */
  update(entry: ConntrackEntry, dir: Direction, bytes: number, tcpFlags = 0): UpdateResult {
    const now = this.now();
    const proto = entry.original.proto;
    if (proto === IPPROTO_TCP) {
      const kind = tcpKind(tcpFlags);
      const old = entry.tcpState ?? "NONE";
      // A new SYN on a closed connection's tuple starts a new connection (the kernel kills
      // the old entry and lets the SYN through as NEW, so NAT is decided afresh).
      if (dir === ORIGINAL && kind === 0 && (old === "TIME_WAIT" || old === "CLOSE")) return "reopen";
      const next = TCP_TABLE[dir][kind][STATE_INDEX.get(old) ?? 0];
      if (next === "IV") return "invalid";
      this.account(entry, dir, bytes);
      if (next === "IG") return "ok";
      if (dir === REPLY) entry.seenReply = true;
      if (
        !entry.assured &&
        next === "ESTABLISHED" &&
        (old === "SYN_RECV" || old === "ESTABLISHED") &&
        entry.seenReply
      ) {
        entry.assured = true;
      }
      entry.tcpState = next;
      entry.expiresAt = now + this.tcpTimeout(next) * 1000;
      return "ok";
    }
    this.account(entry, dir, bytes);
    if (dir === REPLY) entry.seenReply = true;
    if (proto === IPPROTO_UDP) {
      let timeout = this.timeouts.udp_timeout;
      if (entry.seenReply && now - entry.createdAt > UDP_STREAM_AFTER_MS) {
        timeout = this.timeouts.udp_timeout_stream;
        entry.assured = true;
      }
      entry.expiresAt = now + timeout * 1000;
    } else {
      entry.expiresAt = now + this.timeouts.icmp_timeout * 1000;
    }
    return "ok";
  }

  private account(entry: ConntrackEntry, dir: Direction, bytes: number): void {
    entry.packets[dir]++;
    entry.bytes[dir] += bytes;
  }

  tcpTimeout(state: TcpState): number {
    const t = this.timeouts;
    switch (state) {
      case "SYN_SENT":
      case "SYN_SENT2":
        return t.tcp_timeout_syn_sent;
      case "SYN_RECV":
        return t.tcp_timeout_syn_recv;
      case "ESTABLISHED":
        return t.tcp_timeout_established;
      case "FIN_WAIT":
        return t.tcp_timeout_fin_wait;
      case "CLOSE_WAIT":
        return t.tcp_timeout_close_wait;
      case "LAST_ACK":
        return t.tcp_timeout_last_ack;
      case "TIME_WAIT":
        return t.tcp_timeout_time_wait;
      default:
        return t.tcp_timeout_close;
    }
  }

  /** Whether the entry is still in the table (not removed, flushed or expired). */
  has(entry: ConntrackEntry): boolean {
    if (this.byId.get(entry.id) !== entry) return false;
    if (entry.expiresAt > this.now()) return true;
    this.remove(entry, "expired");
    return false;
  }

  /** Keep an entry for another `seconds` from now (as a packet seen on it would). */
  refresh(entry: ConntrackEntry, seconds: number): void {
    entry.expiresAt = this.now() + seconds * 1000;
  }

  /** Seconds left before the entry expires (what `conntrack -L` prints). */
  secondsLeft(entry: ConntrackEntry): number {
    return Math.max(0, Math.ceil((entry.expiresAt - this.now()) / 1000));
  }

  remove(entry: ConntrackEntry, reason: RemovalReason = "deleted"): void {
    if (this.byId.get(entry.id) !== entry) return;
    this.byId.delete(entry.id);
    const o = entry.original;
    const r = entry.reply;
    this.table.delete(tupleKey(o.proto, o.src, o.srcPort, o.dst, o.dstPort));
    this.table.delete(tupleKey(r.proto, r.src, r.srcPort, r.dst, r.dstPort));
    this.onRemove?.(entry, reason);
  }

  /** Remove expired entries; returns how many went. */
  sweep(): number {
    const now = this.now();
    let n = 0;
    for (const entry of this.byId.values()) {
      if (entry.expiresAt <= now) {
        this.remove(entry, "expired");
        n++;
      }
    }
    return n;
  }

  /** Delete every live entry that matches (e.g. UDP entries towards an endpoint that went away). */
  flush(match: (e: ConntrackEntry) => boolean = () => true): number {
    let n = 0;
    for (const entry of [...this.byId.values()]) {
      if (match(entry)) {
        this.remove(entry, "flushed");
        n++;
      }
    }
    return n;
  }

  /** Live entries, oldest first. */
  *entries(): IterableIterator<ConntrackEntry> {
    const now = this.now();
    for (const entry of this.byId.values()) if (entry.expiresAt > now) yield entry;
  }
}

const PROTO_NAMES: Record<number, string> = {
  [IPPROTO_TCP]: "tcp",
  [IPPROTO_UDP]: "udp",
  [IPPROTO_ICMP]: "icmp",
};

export function protoName(proto: number): string {
  return PROTO_NAMES[proto] ?? String(proto);
}

/** A tuple as conntrack(8) prints it: "src=… dst=… sport=… dport=…" (ICMP: "type=… code=… id=…"). */
export function formatTuple(t: Tuple): string {
  if (t.proto === IPPROTO_ICMP) {
    const request = t.srcPort !== 0 || t.dstPort === 0;
    return `src=${ipToString(t.src)} dst=${ipToString(t.dst)} type=${request ? 8 : 0} code=0 id=${request ? t.srcPort : t.dstPort}`;
  }
  return `src=${ipToString(t.src)} dst=${ipToString(t.dst)} sport=${t.srcPort} dport=${t.dstPort}`;
}

/**
 * One entry as `conntrack -L` prints it, e.g.
 * "tcp      6 431999 ESTABLISHED src=… dst=… sport=… dport=… src=… dst=… sport=… dport=… [ASSURED] mark=0 use=1".
 */
export function formatConntrackEntry(e: ConntrackEntry, secondsLeft: number): string {
  const proto = e.original.proto;
  const parts = [`${protoName(proto).padEnd(8)} ${proto} ${secondsLeft}`];
  if (e.tcpState) parts.push(e.tcpState);
  parts.push(formatTuple(e.original));
  if (!e.seenReply) parts.push("[UNREPLIED]");
  parts.push(formatTuple(e.reply));
  if (e.assured) parts.push("[ASSURED]");
  parts.push("mark=0 use=1");
  return parts.join(" ");
}
