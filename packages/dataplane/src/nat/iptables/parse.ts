import { parseCidr, parseIPv4 } from "../ip.ts";
import {
  PROTOCOL_NUMBERS,
  type Match,
  type PortMatch,
  type Rule,
  type TableName,
  type Target,
} from "./types.ts";

// The `iptables-restore` input language, for the subset kube-proxy (and kubelet) write. Input
// from elsewhere is untrusted: every problem is a RestoreError naming the line, never a throw
// of anything else.

export class RestoreError extends Error {
  constructor(
    readonly line: number,
    readonly reason: string,
  ) {
    super(`iptables-restore: line ${line}: ${reason}`);
    this.name = "RestoreError";
  }
}

export type RestoreOp =
  | {
      op: "chain";
      line: number;
      chain: string;
      policy: "ACCEPT" | "DROP" | "-";
      packets: number;
      bytes: number;
    }
  | { op: "append"; line: number; chain: string; rule: Rule }
  | { op: "insert"; line: number; chain: string; position: number; rule: Rule }
  | { op: "delete-chain"; line: number; chain?: string }
  | { op: "flush"; line: number; chain?: string }
  | { op: "new-chain"; line: number; chain: string };

export interface RestoreTableBlock {
  table: TableName;
  line: number;
  ops: RestoreOp[];
}

const TABLES = new Set<TableName>(["filter", "nat", "mangle", "raw"]);
const CHAIN_NAME = /^[A-Za-z0-9_.\-]{1,28}$/;

/** Splits a line into words the way iptables-restore does: double quotes group, `\"` escapes. */
export function tokenize(line: string, lineNo: number): string[] {
  // Most lines have no quotes: split them without walking every character.
  if (!line.includes('"')) {
    const words = line.split(/[ \t]+/);
    if (words[0] === "") words.shift();
    if (words.length && words[words.length - 1] === "") words.pop();
    return words;
  }
  const out: string[] = [];
  let cur = "";
  let inWord = false;
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === "\\" && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"') {
      quoted = true;
      inWord = true;
    } else if (c === " " || c === "\t") {
      if (inWord) out.push(cur);
      cur = "";
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (quoted) throw new RestoreError(lineNo, "unterminated quoted string");
  if (inWord) out.push(cur);
  return out;
}

export function parseRestore(text: string): RestoreTableBlock[] {
  if (typeof text !== "string") throw new RestoreError(0, "input is not text");
  const blocks: RestoreTableBlock[] = [];
  let current: RestoreTableBlock | undefined;
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const raw = lines[i].replace(/\r$/, "");
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    if (line.startsWith("*")) {
      if (current)
        throw new RestoreError(
          lineNo,
          `table "${line.slice(1)}" starts before COMMIT of table "${current.table}"`,
        );
      const name = line.slice(1).trim();
      if (!TABLES.has(name as TableName)) throw new RestoreError(lineNo, `unknown table "${name}"`);
      current = { table: name as TableName, line: lineNo, ops: [] };
      continue;
    }
    if (line === "COMMIT") {
      if (!current) throw new RestoreError(lineNo, "COMMIT outside of a table");
      blocks.push(current);
      current = undefined;
      continue;
    }
    if (!current) throw new RestoreError(lineNo, "no table specified (a line must follow a *table line)");
    if (line.startsWith(":")) {
      current.ops.push(parseChainLine(line, lineNo));
      continue;
    }
    current.ops.push(parseCommand(line, lineNo));
  }
  if (current) throw new RestoreError(lines.length, `COMMIT expected for table "${current.table}"`);
  return blocks;
}

function parseChainLine(line: string, lineNo: number): RestoreOp {
  const m = /^:(\S+)\s+(\S+)(?:\s+\[(\d+):(\d+)\])?\s*$/.exec(line);
  if (!m)
    throw new RestoreError(
      lineNo,
      `malformed chain line "${line}" (expected ":CHAIN POLICY [packets:bytes]")`,
    );
  const [, chain, policy, p, b] = m;
  if (!CHAIN_NAME.test(chain)) throw new RestoreError(lineNo, `invalid chain name "${chain}"`);
  if (policy !== "ACCEPT" && policy !== "DROP" && policy !== "-") {
    throw new RestoreError(lineNo, `invalid policy "${policy}" for chain ${chain}`);
  }
  return { op: "chain", line: lineNo, chain, policy, packets: Number(p ?? 0), bytes: Number(b ?? 0) };
}

function parseCommand(line: string, lineNo: number): RestoreOp {
  let words = tokenize(line, lineNo);
  let counters: [number, number] | undefined;
  const c = /^\[(\d+):(\d+)\]$/.exec(words[0] ?? "");
  if (c) {
    counters = [Number(c[1]), Number(c[2])];
    words = words.slice(1);
  }
  const cmd = words[0];
  const chainArg = (): string => {
    const chain = words[1];
    if (!chain) throw new RestoreError(lineNo, `option "${cmd}" requires a chain name`);
    if (!CHAIN_NAME.test(chain)) throw new RestoreError(lineNo, `invalid chain name "${chain}"`);
    return chain;
  };
  switch (cmd) {
    case "-A":
    case "--append": {
      const chain = chainArg();
      const rule = parseRuleSpec(words.slice(2), lineNo);
      if (counters) [rule.packets, rule.bytes] = counters;
      return { op: "append", line: lineNo, chain, rule };
    }
    case "-I":
    case "--insert": {
      const chain = chainArg();
      let rest = words.slice(2);
      let position = 1;
      if (rest[0] !== undefined && /^\d+$/.test(rest[0])) {
        position = Number(rest[0]);
        if (position < 1) throw new RestoreError(lineNo, `invalid rule number "${rest[0]}"`);
        rest = rest.slice(1);
      }
      const rule = parseRuleSpec(rest, lineNo);
      if (counters) [rule.packets, rule.bytes] = counters;
      return { op: "insert", line: lineNo, chain, position, rule };
    }
    case "-X":
    case "--delete-chain":
      return { op: "delete-chain", line: lineNo, chain: words[1] ? chainArg() : undefined };
    case "-F":
    case "--flush":
      return { op: "flush", line: lineNo, chain: words[1] ? chainArg() : undefined };
    case "-N":
    case "--new-chain":
      return { op: "new-chain", line: lineNo, chain: chainArg() };
    default:
      throw new RestoreError(
        lineNo,
        `unknown command "${cmd ?? ""}" (this dataplane accepts -A, -I, -N, -F, -X)`,
      );
  }
}

type ModuleName =
  "comment" | "tcp" | "udp" | "sctp" | "statistic" | "recent" | "addrtype" | "mark" | "conntrack" | "nfacct";
const MODULES = new Set<string>([
  "comment",
  "tcp",
  "udp",
  "sctp",
  "statistic",
  "recent",
  "addrtype",
  "mark",
  "conntrack",
  "nfacct",
]);

const MODULE_OPTIONS: Record<ModuleName, string[]> = {
  comment: ["--comment"],
  tcp: ["--dport", "--destination-port", "--sport", "--source-port"],
  udp: ["--dport", "--destination-port", "--sport", "--source-port"],
  sctp: ["--dport", "--destination-port", "--sport", "--source-port"],
  statistic: ["--mode", "--probability", "--every", "--packet"],
  recent: [
    "--name",
    "--set",
    "--rcheck",
    "--update",
    "--remove",
    "--seconds",
    "--reap",
    "--hitcount",
    "--rsource",
    "--rdest",
    "--mask",
  ],
  addrtype: ["--src-type", "--dst-type", "--limit-iface-in", "--limit-iface-out"],
  mark: ["--mark"],
  conntrack: ["--ctstate"],
  nfacct: ["--nfacct-name"],
};
const FLAG_OPTIONS = new Set([
  "--set",
  "--rcheck",
  "--update",
  "--remove",
  "--reap",
  "--rsource",
  "--rdest",
  "--limit-iface-in",
  "--limit-iface-out",
]);
const TARGET_OPTIONS: Record<string, string[]> = {
  REJECT: ["--reject-with"],
  DNAT: ["--to-destination", "--random", "--persistent"],
  SNAT: ["--to-source", "--random", "--random-fully", "--persistent"],
  MASQUERADE: ["--random", "--random-fully", "--to-ports"],
  REDIRECT: ["--to-ports", "--random"],
  MARK: ["--or-mark", "--xor-mark", "--and-mark", "--set-mark", "--set-xmark"],
};
const TARGET_FLAGS = new Set(["--random", "--random-fully", "--persistent"]);
const REJECT_TYPES = new Set([
  "icmp-net-unreachable",
  "icmp-host-unreachable",
  "icmp-port-unreachable",
  "icmp-proto-unreachable",
  "icmp-net-prohibited",
  "icmp-host-prohibited",
  "icmp-admin-prohibited",
  "tcp-reset",
]);
const ADDR_TYPES = new Set([
  "UNSPEC",
  "UNICAST",
  "LOCAL",
  "BROADCAST",
  "ANYCAST",
  "MULTICAST",
  "BLACKHOLE",
  "UNREACHABLE",
  "PROHIBIT",
  "THROW",
  "NAT",
  "XRESOLVE",
]);
const CT_STATES = new Set(["INVALID", "NEW", "ESTABLISHED", "RELATED", "UNTRACKED", "SNAT", "DNAT"]);

interface ModuleState {
  name: ModuleName;
  opts: Map<string, { value?: string; invert: boolean }>;
}

function parseNumber(text: string | undefined, lineNo: number, what: string): number {
  if (text === undefined || !/^(0x[0-9a-fA-F]+|\d+)$/.test(text)) {
    throw new RestoreError(lineNo, `invalid ${what} "${text ?? ""}"`);
  }
  return Number(text);
}

function parseMarkValue(
  text: string | undefined,
  lineNo: number,
  what: string,
): { value: number; mask: number } {
  const [v, m] = (text ?? "").split("/");
  const value = parseNumber(v, lineNo, what);
  const mask = m === undefined ? 0xffffffff : parseNumber(m, lineNo, `${what} mask`);
  if (value > 0xffffffff || mask > 0xffffffff)
    throw new RestoreError(lineNo, `${what} "${text}" is out of range`);
  return { value: value >>> 0, mask: mask >>> 0 };
}

function parsePort(text: string | undefined, invert: boolean, lineNo: number): PortMatch {
  const m = /^(\d{1,5})(?::(\d{1,5}))?$/.exec(text ?? "");
  if (!m) throw new RestoreError(lineNo, `invalid port "${text ?? ""}"`);
  const from = Number(m[1]);
  const to = m[2] !== undefined ? Number(m[2]) : from;
  if (from > 65535 || to > 65535 || to < from) throw new RestoreError(lineNo, `invalid port range "${text}"`);
  return { from, to, invert };
}

function takeArg(words: string[], i: number, opt: string, lineNo: number): string {
  const v = words[i + 1];
  if (v === undefined) throw new RestoreError(lineNo, `option "${opt}" requires an argument`);
  return v;
}

function loadMatch(modules: ModuleState[], name: string, lineNo: number): ModuleState {
  if (!MODULES.has(name))
    throw new RestoreError(lineNo, `couldn't load match "${name}" (not supported here)`);
  if (name === "tcp" || name === "udp" || name === "sctp") {
    const existing = modules.find((m) => m.name === name);
    if (existing) return existing;
  }
  const m: ModuleState = { name: name as ModuleName, opts: new Map() };
  modules.push(m);
  return m;
}

function ownerOf(modules: ModuleState[], opt: string): ModuleState | undefined {
  for (let i = modules.length - 1; i >= 0; i--)
    if (MODULE_OPTIONS[modules[i].name].includes(opt)) return modules[i];
  return undefined;
}

/** Parses the words after "-A CHAIN" into a Rule with zeroed counters. */
export function parseRuleSpec(words: string[], lineNo: number): Rule {
  // Every rule gets the same shape, so the evaluator's property loads stay monomorphic.
  const rule: Rule = {
    src: undefined,
    dst: undefined,
    proto: undefined,
    inIface: undefined,
    outIface: undefined,
    matches: [],
    target: { kind: "none" },
    packets: 0,
    bytes: 0,
  };
  const modules: ModuleState[] = [];
  let targetName: string | undefined;
  let targetGoto = false;
  const targetOpts = new Map<string, string | true>();
  let invert = false;

  const take = (i: number, opt: string): string => {
    const v = words[i + 1];
    if (v === undefined) throw new RestoreError(lineNo, `option "${opt}" requires an argument`);
    return v;
  };
  const loadModule = (name: string): ModuleState => {
    if (!MODULES.has(name))
      throw new RestoreError(lineNo, `couldn't load match "${name}" (not supported here)`);
    const existing = modules.find((m) => m.name === name && name !== "comment");
    if (existing && ["tcp", "udp", "sctp"].includes(name)) return existing;
    const m: ModuleState = { name: name as ModuleName, opts: new Map() };
    modules.push(m);
    return m;
  };

  for (let i = 0; i < words.length; i++) {
    const w = words[i];
    if (w === "!") {
      if (invert) throw new RestoreError(lineNo, 'multiple "!" flags are not allowed');
      invert = true;
      continue;
    }
    const inv = invert;
    invert = false;
    switch (w) {
      case "-s":
      case "--source":
      case "--src":
      case "-d":
      case "--destination":
      case "--dst": {
        const v = takeArg(words, i++, w, lineNo);
        const cidr = parseCidr(v);
        if (!cidr)
          throw new RestoreError(lineNo, `host/network "${v}" not found (expected an IPv4 address or CIDR)`);
        const isSrc = w === "-s" || w === "--source" || w === "--src";
        if (isSrc ? rule.src : rule.dst)
          throw new RestoreError(lineNo, `multiple ${isSrc ? "-s" : "-d"} flags are not allowed`);
        if (isSrc) rule.src = { ...cidr, invert: inv };
        else rule.dst = { ...cidr, invert: inv };
        continue;
      }
      case "-p":
      case "--protocol": {
        const v = takeArg(words, i++, w, lineNo).toLowerCase();
        const num = PROTOCOL_NUMBERS[v] ?? (/^\d+$/.test(v) ? Number(v) : undefined);
        if (num === undefined || num > 255) throw new RestoreError(lineNo, `unknown protocol "${v}"`);
        rule.proto = { num, name: v, invert: inv };
        continue;
      }
      case "-i":
      case "--in-interface":
      case "-o":
      case "--out-interface": {
        const v = takeArg(words, i++, w, lineNo);
        if (!/^[A-Za-z0-9_.+\-@]{1,15}$/.test(v))
          throw new RestoreError(lineNo, `invalid interface name "${v}"`);
        if (w === "-i" || w === "--in-interface") rule.inIface = { name: v, invert: inv };
        else rule.outIface = { name: v, invert: inv };
        continue;
      }
      case "-m":
      case "--match":
        if (inv) throw new RestoreError(lineNo, `"!" is not allowed before ${w}`);
        loadMatch(modules, takeArg(words, i++, w, lineNo), lineNo);
        continue;
      case "-j":
      case "--jump":
      case "-g":
      case "--goto":
        if (inv) throw new RestoreError(lineNo, `"!" is not allowed before ${w}`);
        if (targetName) throw new RestoreError(lineNo, "multiple targets (-j/-g) are not allowed");
        targetName = takeArg(words, i++, w, lineNo);
        targetGoto = w === "-g" || w === "--goto";
        continue;
    }
    if (!w.startsWith("--")) throw new RestoreError(lineNo, `unexpected argument "${w}"`);

    // A target's own options first (kube-proxy writes them last), then the most recent match
    // that knows the option, as iptables hands unknown options to each loaded extension.
    if (targetName && TARGET_OPTIONS[targetName]?.includes(w)) {
      if (inv) throw new RestoreError(lineNo, `"!" is not allowed before ${w}`);
      targetOpts.set(w, TARGET_FLAGS.has(w) ? true : takeArg(words, i++, w, lineNo));
      continue;
    }
    let owner = ownerOf(modules, w);
    if (
      !owner &&
      (w === "--dport" || w === "--sport" || w === "--destination-port" || w === "--source-port")
    ) {
      // `-p tcp --dport 80` loads the tcp match implicitly.
      const p = rule.proto?.name;
      if (p === "tcp" || p === "udp" || p === "sctp") owner = loadMatch(modules, p, lineNo);
    }
    if (!owner) throw new RestoreError(lineNo, `unknown option "${w}"`);
    if (owner.opts.has(w)) throw new RestoreError(lineNo, `option "${w}" given more than once`);
    owner.opts.set(w, {
      value: FLAG_OPTIONS.has(w) ? undefined : takeArg(words, i++, w, lineNo),
      invert: inv,
    });
  }
  if (invert) throw new RestoreError(lineNo, '"!" at the end of the rule');

  for (const m of modules) rule.matches.push(buildMatch(m, rule, lineNo));
  rule.target = buildTarget(targetName, targetGoto, targetOpts, rule, lineNo);
  return rule;
}

function buildMatch(m: ModuleState, rule: Rule, lineNo: number): Match {
  const o = (k: string) => m.opts.get(k);
  switch (m.name) {
    case "comment": {
      const c = o("--comment");
      if (!c?.value && c?.value !== "") throw new RestoreError(lineNo, 'match "comment" requires --comment');
      if (c.value.length > 255) throw new RestoreError(lineNo, "comment is longer than 255 characters");
      return { kind: "comment", comment: c.value };
    }
    case "tcp":
    case "udp":
    case "sctp": {
      if (!rule.proto || rule.proto.name !== m.name || rule.proto.invert) {
        throw new RestoreError(lineNo, `match "${m.name}" needs "-p ${m.name}"`);
      }
      const d = o("--dport") ?? o("--destination-port");
      const s = o("--sport") ?? o("--source-port");
      return {
        kind: "l4",
        module: m.name,
        dport: d ? parsePort(d.value, d.invert, lineNo) : undefined,
        sport: s ? parsePort(s.value, s.invert, lineNo) : undefined,
      };
    }
    case "statistic": {
      const mode = o("--mode")?.value;
      if (mode === "random") {
        const p = o("--probability");
        if (!p || !/^(0(\.\d+)?|1(\.0+)?|\.\d+)$/.test(p.value ?? "")) {
          throw new RestoreError(lineNo, `invalid --probability "${p?.value ?? ""}" (a number from 0 to 1)`);
        }
        const probability = Number(p.value);
        // xt_statistic keeps the probability as a 31-bit threshold: lround(0x80000000 * p).
        return {
          kind: "statistic",
          mode: "random",
          probability,
          threshold: Math.round(0x80000000 * probability),
          invert: p.invert,
        };
      }
      if (mode === "nth") {
        const every = parseNumber(o("--every")?.value, lineNo, "--every");
        const packet = o("--packet") ? parseNumber(o("--packet")?.value, lineNo, "--packet") : 0;
        if (every < 1 || packet >= every) throw new RestoreError(lineNo, "--packet must be below --every");
        return {
          kind: "statistic",
          mode: "nth",
          every,
          packet,
          invert: !!o("--every")?.invert,
          counter: { n: 0 },
        };
      }
      throw new RestoreError(lineNo, `statistic: --mode must be "random" or "nth", not "${mode ?? ""}"`);
    }
    case "recent": {
      const actions = (["set", "rcheck", "update", "remove"] as const).filter((a) => m.opts.has(`--${a}`));
      if (actions.length !== 1)
        throw new RestoreError(
          lineNo,
          "recent: exactly one of --set, --rcheck, --update, --remove is required",
        );
      const name = o("--name")?.value ?? "DEFAULT";
      if (!/^[A-Za-z0-9_.\-]{1,200}$/.test(name))
        throw new RestoreError(lineNo, `recent: invalid --name "${name}"`);
      const seconds = o("--seconds") ? parseNumber(o("--seconds")?.value, lineNo, "--seconds") : undefined;
      const hitcount = o("--hitcount")
        ? parseNumber(o("--hitcount")?.value, lineNo, "--hitcount")
        : undefined;
      if (o("--reap") && seconds === undefined)
        throw new RestoreError(lineNo, "recent: --reap needs --seconds");
      const maskText = o("--mask")?.value;
      const mask = maskText === undefined ? 0xffffffff : parseIPv4(maskText);
      if (mask === undefined) throw new RestoreError(lineNo, `recent: invalid --mask "${maskText}"`);
      const action = actions[0];
      return {
        kind: "recent",
        name,
        action,
        seconds,
        hitcount,
        reap: m.opts.has("--reap"),
        rdest: m.opts.has("--rdest"),
        mask,
        invert: !!m.opts.get(`--${action}`)?.invert,
      };
    }
    case "addrtype": {
      const types = (k: string) => {
        const v = o(k);
        if (!v) return undefined;
        const list = (v.value ?? "").split(",");
        for (const t of list)
          if (!ADDR_TYPES.has(t)) throw new RestoreError(lineNo, `addrtype: unknown type "${t}"`);
        return { types: list, invert: v.invert };
      };
      const src = types("--src-type");
      const dst = types("--dst-type");
      if (!src && !dst) throw new RestoreError(lineNo, "addrtype: --src-type or --dst-type is required");
      return { kind: "addrtype", src, dst };
    }
    case "mark": {
      const v = o("--mark");
      if (!v) throw new RestoreError(lineNo, "mark: --mark is required");
      return { kind: "mark", ...parseMarkValue(v.value, lineNo, "--mark"), invert: v.invert };
    }
    case "conntrack": {
      const v = o("--ctstate");
      if (!v)
        throw new RestoreError(
          lineNo,
          "conntrack: --ctstate is required (the only conntrack option supported)",
        );
      const states = (v.value ?? "").split(",");
      for (const s of states)
        if (!CT_STATES.has(s)) throw new RestoreError(lineNo, `conntrack: unknown state "${s}"`);
      return { kind: "conntrack", ctstate: states, invert: v.invert };
    }
    case "nfacct": {
      const v = o("--nfacct-name")?.value;
      if (!v) throw new RestoreError(lineNo, "nfacct: --nfacct-name is required");
      return { kind: "nfacct", name: v };
    }
  }
}

function buildTarget(
  name: string | undefined,
  goto: boolean,
  opts: Map<string, string | true>,
  rule: Rule,
  lineNo: number,
): Target {
  if (name === undefined) return { kind: "none" };
  const str = (k: string) => {
    const v = opts.get(k);
    return typeof v === "string" ? v : undefined;
  };
  const needsPorts = () => {
    const p = rule.proto?.name;
    if (p !== "tcp" && p !== "udp" && p !== "sctp")
      throw new RestoreError(lineNo, `${name}: a port needs "-p tcp|udp|sctp"`);
  };
  switch (name) {
    case "ACCEPT":
    case "DROP":
    case "RETURN":
      return { kind: name };
    case "REJECT": {
      const w = str("--reject-with") ?? "icmp-port-unreachable";
      if (!REJECT_TYPES.has(w)) throw new RestoreError(lineNo, `REJECT: unknown --reject-with "${w}"`);
      if (w === "tcp-reset" && rule.proto?.name !== "tcp")
        throw new RestoreError(lineNo, "REJECT: tcp-reset needs -p tcp");
      return { kind: "REJECT", rejectWith: w };
    }
    case "DNAT":
    case "SNAT": {
      const key = name === "DNAT" ? "--to-destination" : "--to-source";
      const v = str(key);
      if (!v) throw new RestoreError(lineNo, `${name}: ${key} is required`);
      const m = /^([\d.]+)(?::(\d{1,5}))?$/.exec(v);
      const ip = m ? parseIPv4(m[1]) : undefined;
      if (!m || ip === undefined)
        throw new RestoreError(lineNo, `${name}: invalid ${key} "${v}" (expected IP[:port])`);
      let port: number | undefined;
      if (m[2] !== undefined) {
        needsPorts();
        port = Number(m[2]);
        if (port < 1 || port > 65535) throw new RestoreError(lineNo, `${name}: port ${m[2]} out of range`);
      }
      return name === "DNAT"
        ? { kind: "DNAT", toIP: ip, toPort: port, random: opts.has("--random") }
        : { kind: "SNAT", toIP: ip, toPort: port, randomFully: opts.has("--random-fully") };
    }
    case "MASQUERADE":
      return { kind: "MASQUERADE", randomFully: opts.has("--random-fully"), toPorts: str("--to-ports") };
    case "REDIRECT": {
      const p = str("--to-ports");
      if (p === undefined) return { kind: "REDIRECT" };
      needsPorts();
      if (!/^\d{1,5}$/.test(p) || Number(p) < 1 || Number(p) > 65535)
        throw new RestoreError(lineNo, `REDIRECT: invalid --to-ports "${p}"`);
      return { kind: "REDIRECT", toPort: Number(p) };
    }
    case "MARK": {
      const given = [...opts.keys()];
      if (given.length !== 1)
        throw new RestoreError(
          lineNo,
          "MARK: exactly one of --set-xmark, --set-mark, --or-mark, --and-mark, --xor-mark is required",
        );
      const k = given[0];
      const { value, mask } = parseMarkValue(str(k), lineNo, k);
      switch (k) {
        case "--or-mark":
          return { kind: "MARK", value, mask: value };
        case "--xor-mark":
          return { kind: "MARK", value, mask: 0 };
        case "--and-mark":
          return { kind: "MARK", value: 0, mask: ~value >>> 0 };
        case "--set-mark":
          return { kind: "MARK", value, mask: (mask | value) >>> 0 };
        default:
          return { kind: "MARK", value, mask };
      }
    }
    default:
      if (!CHAIN_NAME.test(name)) throw new RestoreError(lineNo, `invalid target "${name}"`);
      if (opts.size > 0)
        throw new RestoreError(lineNo, `unknown option "${[...opts.keys()][0]}" for chain target ${name}`);
      return { kind: "chain", name, goto };
  }
}
