import { formatIPv4 } from "../ip.ts";
import type { IptablesRuleset } from "./ruleset.ts";
import {
  BUILTIN_CHAINS,
  type AddrMatch,
  type Match,
  type PortMatch,
  type Rule,
  type Target,
  type TableName,
} from "./types.ts";

// `iptables-save` output for the live ruleset, in the canonical form the kernel's rules print
// as (not as they were written): `-s/-d` with a prefix length and before `-p`, implicit matches
// named, MARK as --set-xmark, probabilities as the kernel's 31-bit threshold reads back.

export const IPTABLES_VERSION = "v1.8.9 (nf_tables)";

const SAFE_WORD = /^[A-Za-z0-9_\-]+$/;

function quote(s: string): string {
  return SAFE_WORD.test(s) ? s : `"${s.replace(/"/g, '\\"')}"`;
}

const bang = (invert: boolean) => (invert ? "! " : "");

function addr(flag: string, a: AddrMatch): string {
  return `${bang(a.invert)}${flag} ${formatIPv4(a.addr)}/${a.bits}`;
}

function ports(flag: string, p: PortMatch): string {
  return `${bang(p.invert)}${flag} ${p.from === p.to ? p.from : `${p.from}:${p.to}`}`;
}

const hex = (n: number) => "0x" + (n >>> 0).toString(16);

function formatMatch(m: Match): string {
  switch (m.kind) {
    case "comment":
      return `-m comment --comment ${quote(m.comment)}`;
    case "l4": {
      const parts = [`-m ${m.module}`];
      if (m.sport) parts.push(ports("--sport", m.sport));
      if (m.dport) parts.push(ports("--dport", m.dport));
      return parts.join(" ");
    }
    case "statistic":
      if (m.mode === "random") {
        return `-m statistic --mode random ${bang(m.invert)}--probability ${(m.threshold / 0x80000000).toFixed(11)}`;
      }
      return `-m statistic --mode nth ${bang(m.invert)}--every ${m.every} --packet ${m.packet}`;
    case "recent": {
      const parts = ["-m recent", `${bang(m.invert)}--${m.action}`];
      if (m.seconds !== undefined) parts.push(`--seconds ${m.seconds}`);
      if (m.reap) parts.push("--reap");
      if (m.hitcount !== undefined) parts.push(`--hitcount ${m.hitcount}`);
      parts.push(`--name ${m.name}`, `--mask ${formatIPv4(m.mask)}`, m.rdest ? "--rdest" : "--rsource");
      return parts.join(" ");
    }
    case "addrtype": {
      const parts = ["-m addrtype"];
      if (m.src) parts.push(`${bang(m.src.invert)}--src-type ${m.src.types.join(",")}`);
      if (m.dst) parts.push(`${bang(m.dst.invert)}--dst-type ${m.dst.types.join(",")}`);
      return parts.join(" ");
    }
    case "mark":
      return `-m mark ${bang(m.invert)}--mark ${hex(m.value)}${m.mask === 0xffffffff ? "" : "/" + hex(m.mask)}`;
    case "conntrack":
      return `-m conntrack ${bang(m.invert)}--ctstate ${m.ctstate.join(",")}`;
    case "nfacct":
      return `-m nfacct --nfacct-name ${m.name}`;
  }
}

function formatTarget(t: Target): string {
  switch (t.kind) {
    case "none":
      return "";
    case "ACCEPT":
    case "DROP":
    case "RETURN":
      return `-j ${t.kind}`;
    case "REJECT":
      return `-j REJECT --reject-with ${t.rejectWith}`;
    case "DNAT":
      return `-j DNAT --to-destination ${formatIPv4(t.toIP)}${t.toPort ? ":" + t.toPort : ""}${t.random ? " --random" : ""}`;
    case "SNAT":
      return `-j SNAT --to-source ${formatIPv4(t.toIP)}${t.toPort ? ":" + t.toPort : ""}${t.randomFully ? " --random-fully" : ""}`;
    case "MASQUERADE":
      return `-j MASQUERADE${t.toPorts ? " --to-ports " + t.toPorts : ""}${t.randomFully ? " --random-fully" : ""}`;
    case "REDIRECT":
      return `-j REDIRECT${t.toPort ? " --to-ports " + t.toPort : ""}`;
    case "MARK":
      return `-j MARK --set-xmark ${hex(t.value)}/${hex(t.mask)}`;
    case "chain":
      return `${t.goto ? "-g" : "-j"} ${t.name}`;
  }
}

/** The rule as iptables-save prints it, without "-A CHAIN". */
export function formatRule(r: Rule): string {
  const parts: string[] = [];
  if (r.src) parts.push(addr("-s", r.src));
  if (r.dst) parts.push(addr("-d", r.dst));
  if (r.inIface) parts.push(`${bang(r.inIface.invert)}-i ${r.inIface.name}`);
  if (r.outIface) parts.push(`${bang(r.outIface.invert)}-o ${r.outIface.name}`);
  if (r.proto && r.proto.num !== 0) parts.push(`${bang(r.proto.invert)}-p ${r.proto.name}`);
  for (const m of r.matches) parts.push(formatMatch(m));
  const target = formatTarget(r.target);
  if (target) parts.push(target);
  return parts.join(" ");
}

export interface SaveOptions {
  /** -t: only this table */
  table?: TableName;
  /** -c: rule counters */
  counters?: boolean;
  /** the time printed in the header comments */
  now?: Date;
}

function ctime(d: Date): string {
  // C's ctime(3) without the newline: "Thu Nov 26 16:00:00 2026"
  const days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
  const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  const p = (n: number) => String(n).padStart(2, "0");
  return `${days[d.getUTCDay()]} ${months[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, " ")} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} ${d.getUTCFullYear()}`;
}

export function iptablesSave(ruleset: IptablesRuleset, options: SaveOptions = {}): string {
  const when = ctime(options.now ?? new Date());
  const out: string[] = [];
  for (const name of ruleset.tableNames()) {
    if (options.table && options.table !== name) continue;
    const t = ruleset.table(name);
    if (!t) continue;
    out.push(`# Generated by iptables-save ${IPTABLES_VERSION} on ${when}`, `*${name}`);
    const builtins = BUILTIN_CHAINS[name].filter((c) => t.chains.has(c));
    const users = [...t.chains.values()]
      .filter((c) => !c.builtin)
      .map((c) => c.name)
      .sort();
    for (const c of builtins) {
      const chain = t.chains.get(c)!;
      out.push(`:${c} ${chain.policy} [${chain.packets}:${chain.bytes}]`);
    }
    for (const c of users) out.push(`:${c} - [0:0]`);
    for (const c of [...builtins, ...users]) {
      for (const r of t.chains.get(c)!.rules) {
        const prefix = options.counters ? `[${r.packets}:${r.bytes}] ` : "";
        out.push(`${prefix}-A ${c} ${formatRule(r)}`.trimEnd());
      }
    }
    out.push("COMMIT", `# Completed on ${when}`);
  }
  return out.length ? out.join("\n") + "\n" : "";
}
