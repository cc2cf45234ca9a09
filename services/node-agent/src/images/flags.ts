/** Go-style flag parsing (-x v, --x v, -x=v, --x=v, bare booleans) as agnhost and http-echo accept them. */
export interface ParsedFlags {
  flags: Map<string, string>;
  positional: string[];
}

export function parseGoFlags(args: string[], booleans: string[] = []): ParsedFlags {
  const flags = new Map<string, string>();
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--") {
      positional.push(...args.slice(i + 1));
      break;
    }
    const m = /^--?([A-Za-z0-9][\w-]*)(?:=(.*))?$/s.exec(a);
    if (!m) {
      positional.push(a);
      continue;
    }
    if (m[2] !== undefined) flags.set(m[1], m[2]);
    else if (booleans.includes(m[1])) flags.set(m[1], "true");
    else if (i + 1 < args.length) flags.set(m[1], args[++i]);
    else throw new Error(`flag needs an argument: ${a}`);
  }
  return { flags, positional };
}

export function intFlag(f: ParsedFlags, name: string, dflt: number): number {
  const v = f.flags.get(name);
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n))
    throw new Error(
      `invalid argument "${v}" for "--${name}" flag: strconv.ParseInt: parsing "${v}": invalid syntax`,
    );
  return n;
}

/** time.ParseDuration for the units agnhost flags use. */
export function parseGoDuration(s: string): number {
  if (s === "0") return 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let ms = 0;
  let matched = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    const unit = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2]] ?? 0;
    ms += Number(m[1]) * unit;
    matched = re.lastIndex;
  }
  if (!s || matched !== s.length) throw new Error(`time: invalid duration "${s}"`);
  return ms;
}
