import { formatIPv4 } from "../ip.ts";
import { RecentTables } from "./recent.ts";
import type { IptablesRuleset } from "./ruleset.ts";
import { formatRule } from "./save.ts";
import type { Chain, Match, Rule, Table, TableName } from "./types.ts";

// The kernel's walk of the netfilter hooks for the first packet of a connection: nat
// PREROUTING (or OUTPUT for the node's own traffic) → routing → filter INPUT/FORWARD/OUTPUT →
// nat POSTROUTING, rule by rule, so that the cost of a decision grows with the rules in the way,
// exactly as on a real node.

export interface EvalPacket {
  /** IP protocol number */
  proto: number;
  src: number;
  dst: number;
  sport: number;
  dport: number;
  /** bytes, for the counters */
  length: number;
  inIface?: string;
  outIface?: string;
  /** skb mark on entry (0 normally) */
  mark?: number;
}

export interface EvalEnv {
  /** addrtype LOCAL: is this one of the node's addresses (node IP, 127/8, kube-ipvs0 …)? */
  isLocalAddress(ip: number): boolean;
  /** [0, 1), for -m statistic --mode random; injectable for tests and reproducible runs */
  random(): number;
  /** milliseconds, for -m recent */
  now: number;
  /** where REDIRECT sends a packet from outside: the address of the interface it came in on */
  primaryAddress?: number;
}

export type Hook = "PREROUTING" | "OUTPUT";

export interface RuleHit {
  table: TableName;
  chain: string;
  /** 1-based position in the chain, as `iptables -L --line-numbers` counts */
  index: number;
  rule: string;
}

export interface IptablesDecision {
  verdict: "ACCEPT" | "DROP" | "REJECT";
  rejectWith?: string;
  dnat?: { ip: number; port?: number; chain: string };
  masquerade: boolean;
  randomFully: boolean;
  mark: number;
  /** every rule whose matches all held, in the order the kernel met them */
  hits: RuleHit[];
  /** rules examined: the work done, which is what grows with the ruleset */
  rulesEvaluated: number;
  /** the chain (and comment) of the rule that DNATed, rejected or dropped */
  decidedBy?: string;
}

interface WalkState {
  hook: Hook;
  pkt: EvalPacket;
  src: number;
  dst: number;
  dport: number;
  mark: number;
  dnatted: boolean;
  env: EvalEnv;
  hits: RuleHit[] | undefined;
  evaluated: number;
  decidedBy?: string;
}

type Terminal =
  | { kind: "ACCEPT" | "DROP" }
  | { kind: "REJECT"; rejectWith: string }
  | { kind: "DNAT"; ip: number; port?: number; chain: string }
  | { kind: "MASQUERADE"; randomFully: boolean }
  | { kind: "SNAT"; ip: number }
  | { kind: "policy" };

const MAX_DEPTH = 64;

export class IptablesEvaluator {
  readonly recent = new RecentTables();
  readonly nfacct = new Map<string, { packets: number; bytes: number }>();
  private seenGeneration = -1;

  constructor(private readonly ruleset: IptablesRuleset) {}

  /**
   * Decides the first packet of a connection. `trace` records every rule hit (for `klab trace`);
   * leave it off on the hot path.
   */
  evaluate(pkt: EvalPacket, hook: Hook, env: EvalEnv, trace = false): IptablesDecision {
    if (this.seenGeneration !== this.ruleset.generation) this.onReload();
    const st: WalkState = {
      hook,
      pkt,
      src: pkt.src,
      dst: pkt.dst,
      dport: pkt.dport,
      mark: pkt.mark ?? 0,
      dnatted: false,
      env,
      hits: trace ? [] : undefined,
      evaluated: 0,
    };
    let dnat: IptablesDecision["dnat"];
    const nat = this.ruleset.table("nat");
    const filter = this.ruleset.table("filter");

    const natFirst = nat ? this.walk(nat, hook, st) : ({ kind: "policy" } as Terminal);
    if (natFirst.kind === "DNAT") {
      dnat = { ip: natFirst.ip, port: natFirst.port, chain: natFirst.chain };
      st.dst = natFirst.ip;
      if (natFirst.port !== undefined) st.dport = natFirst.port;
      st.dnatted = true;
    } else if (natFirst.kind === "DROP") {
      return this.result("DROP", st, dnat, false, false);
    }

    const filterChain = hook === "OUTPUT" ? "OUTPUT" : env.isLocalAddress(st.dst) ? "INPUT" : "FORWARD";
    const f = filter ? this.walk(filter, filterChain, st) : ({ kind: "policy" } as Terminal);
    if (f.kind === "DROP") return this.result("DROP", st, dnat, false, false);
    if (f.kind === "REJECT")
      return { ...this.result("REJECT", st, dnat, false, false), rejectWith: f.rejectWith };
    if (f.kind === "policy" && filter?.chains.get(filterChain)?.policy === "DROP") {
      return this.result("DROP", st, dnat, false, false);
    }

    let masquerade = false;
    let randomFully = false;
    if (filterChain !== "INPUT" && nat) {
      const post = this.walk(nat, "POSTROUTING", st);
      if (post.kind === "MASQUERADE") {
        masquerade = true;
        randomFully = post.randomFully;
      }
    }
    return this.result("ACCEPT", st, dnat, masquerade, randomFully);
  }

  private result(
    verdict: IptablesDecision["verdict"],
    st: WalkState,
    dnat: IptablesDecision["dnat"],
    masquerade: boolean,
    randomFully: boolean,
  ): IptablesDecision {
    return {
      verdict,
      dnat,
      masquerade,
      randomFully,
      mark: st.mark,
      hits: st.hits ?? [],
      rulesEvaluated: st.evaluated,
      decidedBy: st.decidedBy,
    };
  }

  private onReload(): void {
    this.seenGeneration = this.ruleset.generation;
    const names = new Set<string>();
    for (const tn of this.ruleset.tableNames()) {
      for (const c of this.ruleset.table(tn)?.chains.values() ?? []) {
        for (const r of c.rules) for (const m of r.matches) if (m.kind === "recent") names.add(m.name);
      }
    }
    this.recent.retain(names);
  }

  private walk(table: Table, start: string, st: WalkState): Terminal {
    const first = table.chains.get(start);
    if (!first) return { kind: "policy" };
    const stack: Array<{ chain: Chain; index: number }> = [];
    let chain: Chain = first;
    let i = 0;
    for (;;) {
      if (i >= chain.rules.length) {
        // Falling off a user chain returns to the caller; off a built-in chain, the policy applies.
        const frame = stack.pop();
        if (!frame) {
          chain.packets++;
          chain.bytes += st.pkt.length;
          return chain.policy === "DROP" ? { kind: "DROP" } : { kind: "policy" };
        }
        chain = frame.chain;
        i = frame.index;
        continue;
      }
      const rule = chain.rules[i];
      st.evaluated++;
      if (!this.matches(rule, st)) {
        i++;
        continue;
      }
      rule.packets++;
      rule.bytes += st.pkt.length;
      if (st.hits)
        st.hits.push({ table: table.name, chain: chain.name, index: i + 1, rule: formatRule(rule) });
      const t = rule.target;
      switch (t.kind) {
        case "none":
          i++;
          continue;
        case "MARK":
          st.mark = ((st.mark & ~t.mask) ^ t.value) >>> 0;
          i++;
          continue;
        case "RETURN": {
          const frame = stack.pop();
          if (!frame) {
            chain.packets++;
            chain.bytes += st.pkt.length;
            return chain.policy === "DROP" ? { kind: "DROP" } : { kind: "policy" };
          }
          chain = frame.chain;
          i = frame.index;
          continue;
        }
        case "ACCEPT":
        case "DROP":
          if (t.kind === "DROP") st.decidedBy = describeRule(table, chain, rule);
          return { kind: t.kind };
        case "REJECT":
          st.decidedBy = describeRule(table, chain, rule);
          return { kind: "REJECT", rejectWith: t.rejectWith };
        case "DNAT":
          st.decidedBy = chain.name;
          return { kind: "DNAT", ip: t.toIP, port: t.toPort, chain: chain.name };
        case "SNAT":
          return { kind: "SNAT", ip: t.toIP };
        case "REDIRECT": {
          st.decidedBy = chain.name;
          // Locally generated packets are redirected to 127.0.0.1, others to the incoming interface.
          const to = st.hook === "OUTPUT" ? 0x7f000001 : (st.env.primaryAddress ?? 0x7f000001);
          return { kind: "DNAT", ip: to, port: t.toPort, chain: chain.name };
        }
        case "MASQUERADE":
          return { kind: "MASQUERADE", randomFully: t.randomFully };
        case "chain": {
          const next = table.chains.get(t.name);
          if (!next) {
            i++;
            continue;
          }
          // -g does not come back here: RETURN from the target goes to our caller.
          if (!t.goto) stack.push({ chain, index: i + 1 });
          if (stack.length > MAX_DEPTH) return { kind: "DROP" };
          chain = next;
          i = 0;
          continue;
        }
      }
    }
  }

  private matches(r: Rule, st: WalkState): boolean {
    if (r.src && ((st.src & r.src.mask) >>> 0 === r.src.addr) === r.src.invert) return false;
    if (r.dst && ((st.dst & r.dst.mask) >>> 0 === r.dst.addr) === r.dst.invert) return false;
    if (r.proto && r.proto.num !== 0 && (st.pkt.proto === r.proto.num) === r.proto.invert) return false;
    if (r.inIface && (st.pkt.inIface === r.inIface.name) === r.inIface.invert) return false;
    if (r.outIface && (st.pkt.outIface === r.outIface.name) === r.outIface.invert) return false;
    for (const m of r.matches) if (!this.match(m, st)) return false;
    return true;
  }

  private match(m: Match, st: WalkState): boolean {
    switch (m.kind) {
      case "comment":
        return true;
      case "l4": {
        if (m.dport && (st.dport >= m.dport.from && st.dport <= m.dport.to) === m.dport.invert) return false;
        if (m.sport && (st.pkt.sport >= m.sport.from && st.pkt.sport <= m.sport.to) === m.sport.invert)
          return false;
        return true;
      }
      case "statistic": {
        if (m.mode === "random") {
          // xt_statistic: (get_random_u32() & 0x7FFFFFFF) < threshold
          const r = Math.floor(st.env.random() * 0x100000000) & 0x7fffffff;
          return r < m.threshold !== m.invert;
        }
        const hit = m.counter.n === m.packet;
        m.counter.n = (m.counter.n + 1) % m.every;
        return hit !== m.invert;
      }
      case "recent": {
        const addr = ((m.rdest ? st.dst : st.src) & m.mask) >>> 0;
        let ok: boolean;
        switch (m.action) {
          case "set":
            this.recent.set(m.name, addr, st.env.now);
            ok = true;
            break;
          case "rcheck":
            ok = this.recent.check(m.name, addr, st.env.now, m.seconds, m.hitcount, m.reap);
            break;
          case "update":
            ok = this.recent.check(m.name, addr, st.env.now, m.seconds, m.hitcount, m.reap);
            if (ok) this.recent.set(m.name, addr, st.env.now);
            break;
          case "remove":
            ok = this.recent.remove(m.name, addr);
            break;
        }
        return ok !== m.invert;
      }
      case "addrtype": {
        if (m.src && this.isType(st.src, m.src.types, st.env) === m.src.invert) return false;
        if (m.dst && this.isType(st.dst, m.dst.types, st.env) === m.dst.invert) return false;
        return true;
      }
      case "mark":
        return ((st.mark & m.mask) >>> 0 === (m.value & m.mask) >>> 0) !== m.invert;
      case "conntrack": {
        // A first packet is NEW, and DNAT once the nat table rewrote its destination.
        const has = m.ctstate.some((s) => s === "NEW" || (s === "DNAT" && st.dnatted));
        return has !== m.invert;
      }
      case "nfacct": {
        const c = this.nfacct.get(m.name) ?? { packets: 0, bytes: 0 };
        c.packets++;
        c.bytes += st.pkt.length;
        this.nfacct.set(m.name, c);
        return true;
      }
    }
  }

  private isType(ip: number, types: string[], env: EvalEnv): boolean {
    for (const t of types) {
      if (t === "LOCAL" && env.isLocalAddress(ip)) return true;
      if (t === "UNICAST" && ip >>> 28 !== 14 && ip !== 0xffffffff) return true;
      if (t === "MULTICAST" && ip >>> 28 === 14) return true;
      if (t === "BROADCAST" && ip === 0xffffffff) return true;
    }
    return false;
  }
}

function describeRule(table: Table, chain: Chain, rule: Rule): string {
  const comment = rule.matches.find((m) => m.kind === "comment");
  return `${table.name} ${chain.name}${comment && comment.kind === "comment" ? ` "${comment.comment}"` : ""}`;
}

export function describeHit(h: RuleHit): string {
  return `${h.table} ${h.chain} #${h.index}: -A ${h.chain} ${h.rule}`;
}

export { formatIPv4 };
