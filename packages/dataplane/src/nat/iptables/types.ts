// The subset of iptables that kube-proxy writes, as data: what the restore parser produces and
// what the evaluator walks. Addresses are unsigned 32-bit numbers.

export type TableName = "filter" | "nat" | "mangle" | "raw";

export const BUILTIN_CHAINS: Record<TableName, string[]> = {
  filter: ["INPUT", "FORWARD", "OUTPUT"],
  nat: ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
  mangle: ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"],
  raw: ["PREROUTING", "OUTPUT"],
};

export interface AddrMatch {
  addr: number;
  mask: number;
  bits: number;
  invert: boolean;
}

export interface PortMatch {
  from: number;
  to: number;
  invert: boolean;
}

export type Match =
  | { kind: "comment"; comment: string }
  | { kind: "l4"; module: "tcp" | "udp" | "sctp"; dport?: PortMatch; sport?: PortMatch }
  | { kind: "statistic"; mode: "random"; probability: number; threshold: number; invert: boolean }
  | { kind: "statistic"; mode: "nth"; every: number; packet: number; invert: boolean; counter: { n: number } }
  | {
      kind: "recent";
      name: string;
      action: "set" | "rcheck" | "update" | "remove";
      seconds?: number;
      reap: boolean;
      hitcount?: number;
      rdest: boolean;
      mask: number;
      invert: boolean;
    }
  | {
      kind: "addrtype";
      src?: { types: string[]; invert: boolean };
      dst?: { types: string[]; invert: boolean };
    }
  | { kind: "mark"; value: number; mask: number; invert: boolean }
  | { kind: "conntrack"; ctstate: string[]; invert: boolean }
  | { kind: "nfacct"; name: string };

export type Target =
  | { kind: "ACCEPT" | "DROP" | "RETURN" }
  | { kind: "REJECT"; rejectWith: string }
  | { kind: "DNAT"; toIP: number; toPort?: number; random: boolean }
  | { kind: "SNAT"; toIP: number; toPort?: number; randomFully: boolean }
  | { kind: "MASQUERADE"; randomFully: boolean; toPorts?: string }
  /** DNAT to the address of the interface the packet came in on (kube-proxy's old userspace mode) */
  | { kind: "REDIRECT"; toPort?: number }
  /** MARK is kept as the kernel keeps it: new = (old & ~mask) ^ value (xt_MARK's set-xmark). */
  | { kind: "MARK"; value: number; mask: number }
  | { kind: "chain"; name: string; goto: boolean }
  /** A rule with no -j only counts packets (kube-proxy's KUBE-FW "will be dropped" rule). */
  | { kind: "none" };

export interface Rule {
  src?: AddrMatch;
  dst?: AddrMatch;
  /** IP protocol number, 0 for "all" */
  proto?: { num: number; name: string; invert: boolean };
  inIface?: { name: string; invert: boolean };
  outIface?: { name: string; invert: boolean };
  matches: Match[];
  target: Target;
  packets: number;
  bytes: number;
}

export interface Chain {
  name: string;
  builtin: boolean;
  /** ACCEPT or DROP for built-in chains; "-" for user chains */
  policy: "ACCEPT" | "DROP" | "-";
  rules: Rule[];
  /** packets/bytes that met the policy (built-in chains) */
  packets: number;
  bytes: number;
}

export interface Table {
  name: TableName;
  chains: Map<string, Chain>;
}

export const PROTOCOL_NUMBERS: Record<string, number> = { all: 0, icmp: 1, tcp: 6, udp: 17, sctp: 132 };
