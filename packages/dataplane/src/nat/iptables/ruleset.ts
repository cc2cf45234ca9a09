import { parseRestore, parseRuleSpec, RestoreError, tokenize, type RestoreTableBlock } from "./parse.ts";
import { formatRule } from "./save.ts";
import { BUILTIN_CHAINS, type Chain, type Rule, type Table, type TableName } from "./types.ts";

// The node's live iptables state. A restore replaces it in one atomic step: the input is parsed
// and applied to copies of the tables it names, validated, and only then swapped in; any error
// leaves the live rules untouched, as iptables-restore's single commit does.

export interface RestoreOptions {
  /** --noflush: chains not named in the input keep their rules (kube-proxy always passes it). */
  noflush?: boolean;
}

function emptyTable(name: TableName): Table {
  const chains = new Map<string, Chain>();
  for (const c of BUILTIN_CHAINS[name]) {
    chains.set(c, { name: c, builtin: true, policy: "ACCEPT", rules: [], packets: 0, bytes: 0 });
  }
  return { name, chains };
}

function cloneTable(t: Table): Table {
  const chains = new Map<string, Chain>();
  for (const [k, c] of t.chains) chains.set(k, { ...c, rules: c.rules.slice() });
  return { name: t.name, chains };
}

export class IptablesRuleset {
  private readonly tables = new Map<TableName, Table>();
  /** Bumped on every successful change, so evaluators can cache per generation. */
  generation = 0;

  constructor() {
    this.tables.set("filter", emptyTable("filter"));
    this.tables.set("nat", emptyTable("nat"));
  }

  table(name: TableName): Table | undefined {
    return this.tables.get(name);
  }

  tableNames(): TableName[] {
    return [...this.tables.keys()];
  }

  ruleCount(table?: TableName): number {
    let n = 0;
    for (const t of this.tables.values()) {
      if (table && t.name !== table) continue;
      for (const c of t.chains.values()) n += c.rules.length;
    }
    return n;
  }

  /** Applies `iptables-restore` input. Throws RestoreError (with the line) and changes nothing on error. */
  restore(text: string, options: RestoreOptions = {}): void {
    const blocks = parseRestore(text);
    const staged = new Map<TableName, Table>();
    for (const block of blocks) {
      const base = staged.get(block.table) ?? this.tables.get(block.table) ?? emptyTable(block.table);
      staged.set(block.table, applyBlock(base, block, options));
    }
    for (const [name, t] of staged) this.tables.set(name, t);
    this.generation++;
  }

  /**
   * `iptables -C` then `-I`/`-A`: what kube-proxy's EnsureRule does for the jumps out of the
   * built-in chains. Returns true if the rule was already there.
   */
  ensureRule(
    table: TableName,
    chain: string,
    ruleText: string,
    position: "prepend" | "append" = "prepend",
  ): boolean {
    const spec = parseRuleSpec(ruleTokens(ruleText), 1);
    const t = cloneTable(this.tables.get(table) ?? emptyTable(table));
    const c = t.chains.get(chain);
    if (!c) throw new RestoreError(1, `chain ${chain} does not exist in table ${table}`);
    const wanted = formatRule(spec);
    if (c.rules.some((r) => formatRule(r) === wanted)) return true;
    if (spec.target.kind === "chain" && !t.chains.has(spec.target.name)) {
      t.chains.set(spec.target.name, {
        name: spec.target.name,
        builtin: false,
        policy: "-",
        rules: [],
        packets: 0,
        bytes: 0,
      });
    }
    if (position === "prepend") c.rules.unshift(spec);
    else c.rules.push(spec);
    validateTable(t, 1);
    this.tables.set(table, t);
    this.generation++;
    return false;
  }

  /** A deep copy, to stage a change that must succeed as a whole before it goes live. */
  clone(): IptablesRuleset {
    const c = new IptablesRuleset();
    for (const [name, t] of this.tables) c.tables.set(name, cloneTable(t));
    return c;
  }

  /** Takes over another ruleset's tables (the staged copy) in one step. */
  adopt(other: IptablesRuleset): void {
    this.tables.clear();
    for (const [name, t] of other.tables) this.tables.set(name, t);
    this.generation++;
  }

  /** Zeroes every counter (iptables -Z). */
  zeroCounters(): void {
    for (const t of this.tables.values()) {
      for (const c of t.chains.values()) {
        c.packets = c.bytes = 0;
        for (const r of c.rules) r.packets = r.bytes = 0;
      }
    }
  }
}

function ruleTokens(text: string): string[] {
  return tokenize(text, 1);
}

function applyBlock(base: Table, block: RestoreTableBlock, options: RestoreOptions): Table {
  const t = cloneTable(base);
  if (!options.noflush) {
    for (const [name, c] of t.chains) {
      if (c.builtin) c.rules = [];
      else t.chains.delete(name);
    }
  }
  for (const op of block.ops) {
    switch (op.op) {
      case "chain": {
        const builtin = BUILTIN_CHAINS[block.table].includes(op.chain);
        if (builtin && op.policy === "-")
          throw new RestoreError(op.line, `built-in chain ${op.chain} needs a policy (ACCEPT or DROP)`);
        if (!builtin && op.policy !== "-")
          throw new RestoreError(
            op.line,
            `can't set policy "${op.policy}" on user-defined chain ${op.chain}`,
          );
        t.chains.set(op.chain, {
          name: op.chain,
          builtin,
          policy: op.policy,
          rules: [],
          packets: builtin ? op.packets : 0,
          bytes: builtin ? op.bytes : 0,
        });
        break;
      }
      case "new-chain":
        if (t.chains.has(op.chain)) throw new RestoreError(op.line, `chain ${op.chain} already exists`);
        t.chains.set(op.chain, {
          name: op.chain,
          builtin: false,
          policy: "-",
          rules: [],
          packets: 0,
          bytes: 0,
        });
        break;
      case "append":
      case "insert": {
        const c = t.chains.get(op.chain);
        if (!c) throw new RestoreError(op.line, `chain ${op.chain} does not exist in table ${block.table}`);
        if (op.op === "append") c.rules.push(op.rule);
        else {
          if (op.position > c.rules.length + 1)
            throw new RestoreError(op.line, `index of insertion too big (${op.position})`);
          c.rules.splice(op.position - 1, 0, op.rule);
        }
        break;
      }
      case "flush":
        if (op.chain === undefined) for (const c of t.chains.values()) c.rules = [];
        else {
          const c = t.chains.get(op.chain);
          if (!c) throw new RestoreError(op.line, `chain ${op.chain} does not exist in table ${block.table}`);
          c.rules = [];
        }
        break;
      case "delete-chain": {
        const names =
          op.chain === undefined
            ? [...t.chains.values()].filter((c) => !c.builtin).map((c) => c.name)
            : [op.chain];
        for (const name of names) {
          const c = t.chains.get(name);
          if (!c) throw new RestoreError(op.line, `chain ${name} does not exist in table ${block.table}`);
          if (c.builtin) throw new RestoreError(op.line, `can't delete built-in chain ${name}`);
          if (c.rules.length > 0) throw new RestoreError(op.line, `chain ${name} is not empty`);
          t.chains.delete(name);
        }
        for (const name of names) {
          const ref = findReference(t, name);
          if (ref) throw new RestoreError(op.line, `chain ${name} is still referenced from ${ref}`);
        }
        break;
      }
    }
  }
  validateTable(t, block.line);
  return t;
}

function findReference(t: Table, target: string): string | undefined {
  for (const c of t.chains.values()) {
    for (const r of c.rules) if (r.target.kind === "chain" && r.target.name === target) return c.name;
  }
  return undefined;
}

const NAT_ONLY = new Set(["DNAT", "SNAT", "MASQUERADE", "REDIRECT"]);

function validateTable(t: Table, line: number): void {
  for (const c of t.chains.values()) {
    for (const r of c.rules) {
      const k = r.target.kind;
      if (k === "chain") {
        const name = r.target.name;
        if (!t.chains.has(name))
          throw new RestoreError(
            line,
            `couldn't load target "${name}": no such chain in table ${t.name} (rule in ${c.name})`,
          );
        if (BUILTIN_CHAINS[t.name].includes(name))
          throw new RestoreError(line, `can't jump to built-in chain ${name}`);
      } else if (NAT_ONLY.has(k) && t.name !== "nat") {
        throw new RestoreError(
          line,
          `target ${k} is only valid in the nat table (rule in ${t.name} ${c.name})`,
        );
      } else if (k === "REJECT" && t.name !== "filter" && t.name !== "mangle") {
        throw new RestoreError(
          line,
          `target REJECT is only valid in the filter table (rule in ${t.name} ${c.name})`,
        );
      }
    }
  }
  // The kernel refuses rulesets whose jumps loop (ELOOP); so do we.
  const state = new Map<string, 1 | 2>();
  const visit = (name: string, path: string[]): void => {
    const s = state.get(name);
    if (s === 2) return;
    if (s === 1)
      throw new RestoreError(line, `jump loop in table ${t.name}: ${[...path, name].join(" -> ")}`);
    state.set(name, 1);
    for (const r of t.chains.get(name)?.rules ?? []) {
      if (r.target.kind === "chain") visit(r.target.name, [...path, name]);
    }
    state.set(name, 2);
  };
  for (const name of t.chains.keys()) visit(name, []);
}

export type { Rule };
