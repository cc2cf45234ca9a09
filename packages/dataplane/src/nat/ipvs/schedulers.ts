// The IPVS schedulers, following the kernel's net/netfilter/ipvs/ip_vs_*.c algorithms: the same
// list walks, the same tie-breaking (first dest wins), the same overhead formulas and hash
// tables, so a sequence of picks matches what a real node makes for the same connection counts.

export interface Dest {
  addr: number;
  port: number;
  weight: number;
  activeConns: number;
  inactConns: number;
}

export interface ScheduleInput {
  srcAddr: number;
  srcPort: number;
  dstAddr: number;
  now: number;
}

export interface Scheduler {
  readonly name: string;
  /** Called whenever the dest list or a weight changes (ip_vs_scheduler ops->upd_dest). */
  update(dests: Dest[]): void;
  schedule(dests: Dest[], input: ScheduleInput): Dest | undefined;
}

export const KUBE_PROXY_SCHEDULERS = [
  "rr",
  "wrr",
  "lc",
  "wlc",
  "lblc",
  "lblcr",
  "sh",
  "dh",
  "sed",
  "nq",
] as const;
export const SCHEDULERS = [...KUBE_PROXY_SCHEDULERS, "mh"] as const;
export type SchedulerName = (typeof SCHEDULERS)[number];

/** ip_vs_dest_conn_overhead: active connections cost 256 times an inactive one. */
const connOverhead = (d: Dest) => d.activeConns * 256 + d.inactConns;

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

class RoundRobin implements Scheduler {
  readonly name = "rr";
  /** the last pick and where it was; -1 is the list head */
  private last: Dest | undefined;
  private lastIndex = -1;
  update(dests: Dest[]): void {
    // ip_vs_rr_del_dest: if the last pick is removed, continue from the entry before it.
    if (this.last && !dests.includes(this.last)) {
      this.last = undefined;
      this.lastIndex = Math.min(this.lastIndex, dests.length) - 1;
    }
  }
  schedule(dests: Dest[]): Dest | undefined {
    const n = dests.length;
    if (n === 0) return undefined;
    const from = this.last ? dests.indexOf(this.last) : this.lastIndex;
    // Walk from the one after the last pick, once round the list (the kernel's "wrap at most twice").
    for (let step = 1; step <= n; step++) {
      const i = (((from + step) % n) + n) % n;
      if (dests[i].weight > 0) {
        this.last = dests[i];
        this.lastIndex = i;
        return dests[i];
      }
    }
    return undefined;
  }
}

class WeightedRoundRobin implements Scheduler {
  readonly name = "wrr";
  private cl = -1;
  private cw = 0;
  private mw = 0;
  private di = 1;
  update(dests: Dest[]): void {
    const weights = dests.map((d) => d.weight).filter((w) => w > 0);
    this.di = weights.length ? weights.reduce(gcd) : 1;
    const max = weights.length ? Math.max(...weights) : 0;
    this.mw = max === 0 ? 0 : max - (this.di - 1);
    if (this.cw > this.mw || !this.cw) this.cw = this.mw;
    else if (this.di > 1) this.cw = Math.floor(this.cw / this.di) * this.di + 1;
    this.cl = -1;
  }
  schedule(dests: Dest[]): Dest | undefined {
    if (this.mw === 0 || dests.length === 0) return undefined;
    // At most (mw/di + 1) passes over the list find a dest whose weight reaches cw.
    const limit = (dests.length + 1) * (Math.ceil(this.mw / this.di) + 2);
    for (let step = 0; step < limit; step++) {
      this.cl++;
      if (this.cl >= dests.length) {
        this.cl = -1;
        this.cw -= this.di;
        if (this.cw <= 0) this.cw = this.mw;
        continue;
      }
      if (dests[this.cl].weight >= this.cw) return dests[this.cl];
    }
    return undefined;
  }
}

class LeastConnection implements Scheduler {
  readonly name = "lc";
  update(): void {}
  schedule(dests: Dest[]): Dest | undefined {
    let least: Dest | undefined;
    let loh = 0;
    for (const d of dests) {
      if (d.weight === 0) continue;
      const doh = connOverhead(d);
      if (!least || doh < loh) {
        least = d;
        loh = doh;
      }
    }
    return least;
  }
}

/** wlc and sed share the walk; they differ in the overhead formula. */
class WeightedLeast implements Scheduler {
  constructor(
    readonly name: "wlc" | "sed",
    private readonly overhead: (d: Dest) => number,
  ) {}
  update(): void {}
  schedule(dests: Dest[]): Dest | undefined {
    const start = dests.findIndex((d) => d.weight > 0);
    if (start < 0) return undefined;
    let least = dests[start];
    let loh = this.overhead(least);
    for (let i = start + 1; i < dests.length; i++) {
      const d = dests[i];
      const doh = this.overhead(d);
      if (loh * d.weight > doh * least.weight) {
        least = d;
        loh = doh;
      }
    }
    return least;
  }
}

class NeverQueue implements Scheduler {
  readonly name = "nq";
  update(): void {}
  schedule(dests: Dest[]): Dest | undefined {
    let least: Dest | undefined;
    let loh = 0;
    for (const d of dests) {
      if (d.weight === 0) continue;
      const doh = d.activeConns + 1;
      // An idle server is taken at once.
      if (d.activeConns === 0) return d;
      if (!least || loh * d.weight > doh * least.weight) {
        least = d;
        loh = doh;
      }
    }
    return least;
  }
}

const TAB_BITS = 8;
const TAB_SIZE = 1 << TAB_BITS;

/** Linux hash_32 (GOLDEN_RATIO_32 since 4.7). */
export function hash32(val: number, bits: number): number {
  return Math.imul(val >>> 0, 0x61c88647) >>> (32 - bits);
}

class SourceHashing implements Scheduler {
  readonly name = "sh";
  private buckets: Array<Dest | undefined> = new Array(TAB_SIZE).fill(undefined);
  constructor(
    private readonly hashPort: boolean,
    private readonly fallback: boolean,
  ) {}
  update(dests: Dest[]): void {
    // ip_vs_sh_reassign: each dest takes `weight` consecutive buckets in turn (at least one).
    this.buckets = new Array(TAB_SIZE).fill(undefined);
    if (dests.length === 0) return;
    let p = 0;
    let count = 0;
    for (let i = 0; i < TAB_SIZE; i++) {
      const d = dests[p];
      this.buckets[i] = d;
      if (++count >= d.weight) {
        p = (p + 1) % dests.length;
        count = 0;
      }
    }
  }
  bucketOf(addr: number, port: number, offset = 0): number {
    return (offset + hash32((port + addr) >>> 0, TAB_BITS)) & (TAB_SIZE - 1);
  }
  schedule(_dests: Dest[], input: ScheduleInput): Dest | undefined {
    const port = this.hashPort ? input.srcPort : 0;
    const d = this.buckets[this.bucketOf(input.srcAddr, port)];
    if (d && d.weight > 0) return d;
    if (!this.fallback || !d) return undefined;
    // sh-fallback: walk the table from the original bucket (ip_vs_sh_get_fallback).
    for (let offset = 1; offset < TAB_SIZE; offset++) {
      const alt = this.buckets[this.bucketOf(input.srcAddr, port, offset)];
      if (alt && alt.weight > 0) return alt;
    }
    return undefined;
  }
}

class DestinationHashing implements Scheduler {
  readonly name = "dh";
  private buckets: Array<Dest | undefined> = new Array(TAB_SIZE).fill(undefined);
  update(dests: Dest[]): void {
    // ip_vs_dh_reassign: one bucket per dest in turn, weights ignored.
    this.buckets = new Array(TAB_SIZE).fill(undefined);
    if (dests.length === 0) return;
    for (let i = 0; i < TAB_SIZE; i++) this.buckets[i] = dests[i % dests.length];
  }
  static bucketOf(addr: number): number {
    return Math.imul(addr >>> 0, 2654435761 | 0) & (TAB_SIZE - 1);
  }
  schedule(_dests: Dest[], input: ScheduleInput): Dest | undefined {
    const d = this.buckets[DestinationHashing.bucketOf(input.dstAddr)];
    return d && d.weight > 0 ? d : undefined;
  }
}

/** lblc/lblcr's overload test: busier than its weight while some dest is under half of its own. */
function lblcOverloaded(dest: Dest, dests: Dest[]): boolean {
  if (dest.activeConns > dest.weight) {
    for (const d of dests) if (d.activeConns * 2 < d.weight) return true;
  }
  return false;
}

function weightedLeastConn(dests: Dest[]): Dest | undefined {
  const start = dests.findIndex((d) => d.weight > 0);
  if (start < 0) return undefined;
  let least = dests[start];
  let loh = connOverhead(least);
  for (let i = start + 1; i < dests.length; i++) {
    const d = dests[i];
    const doh = connOverhead(d);
    if (loh * d.weight > doh * least.weight) {
      least = d;
      loh = doh;
    }
  }
  return least;
}

/** Default lblc/lblcr expiration (sysctl lblc_expiration / lblcr_expiration): 24 hours. */
const LBLC_EXPIRATION_MS = 24 * 3600 * 1000;

class LocalityLeastConn implements Scheduler {
  readonly name = "lblc";
  private readonly table = new Map<number, { dest: Dest; lastUse: number }>();
  update(dests: Dest[]): void {
    const live = new Set(dests);
    for (const [k, e] of this.table) if (!live.has(e.dest)) this.table.delete(k);
  }
  schedule(dests: Dest[], input: ScheduleInput): Dest | undefined {
    const en = this.table.get(input.dstAddr);
    if (en && input.now - en.lastUse < LBLC_EXPIRATION_MS) {
      en.lastUse = input.now;
      if (en.dest.weight > 0 && !lblcOverloaded(en.dest, dests)) return en.dest;
    }
    const dest = weightedLeastConn(dests);
    if (!dest) return undefined;
    this.table.set(input.dstAddr, { dest, lastUse: input.now });
    return dest;
  }
}

class LocalityLeastConnReplication implements Scheduler {
  readonly name = "lblcr";
  private readonly table = new Map<number, { set: Dest[]; lastMod: number; lastUse: number }>();
  update(dests: Dest[]): void {
    const live = new Set(dests);
    for (const e of this.table.values()) e.set = e.set.filter((d) => live.has(d));
  }
  private setMin(set: Dest[]): Dest | undefined {
    return weightedLeastConn(set);
  }
  private setMax(set: Dest[]): Dest | undefined {
    let most: Dest | undefined;
    let moh = 0;
    for (const d of set) {
      const doh = connOverhead(d);
      if (!most || doh * most.weight > moh * d.weight) {
        most = d;
        moh = doh;
      }
    }
    return most;
  }
  schedule(dests: Dest[], input: ScheduleInput): Dest | undefined {
    let en = this.table.get(input.dstAddr);
    if (en && input.now - en.lastUse >= LBLC_EXPIRATION_MS) {
      this.table.delete(input.dstAddr);
      en = undefined;
    }
    if (en) {
      en.lastUse = input.now;
      const dest = this.setMin(en.set);
      // A set that has not changed for a while sheds its busiest member.
      if (en.set.length > 1 && input.now - en.lastMod > LBLC_EXPIRATION_MS) {
        const m = this.setMax(en.set);
        if (m) en.set = en.set.filter((d) => d !== m);
        en.lastMod = input.now;
      }
      if (dest && !lblcOverloaded(dest, dests)) return dest;
      const fresh = weightedLeastConn(dests);
      if (!fresh) return undefined;
      if (!en.set.includes(fresh)) {
        en.set.push(fresh);
        en.lastMod = input.now;
      }
      return fresh;
    }
    const dest = weightedLeastConn(dests);
    if (!dest) return undefined;
    this.table.set(input.dstAddr, { set: [dest], lastMod: input.now, lastUse: input.now });
    return dest;
  }
}

// ---- Maglev (mh) --------------------------------------------------------------------------

const MH_TAB_SIZE = 251;

/** SipHash-1-3 over 64-bit words, which is what the kernel's hsiphash is on 64-bit machines. */
function hsiphash(data: Uint8Array, k0: bigint, k1: bigint): number {
  const M = (1n << 64n) - 1n;
  const rotl = (x: bigint, b: bigint) => ((x << b) | (x >> (64n - b))) & M;
  let v0 = 0x736f6d6570736575n ^ k0;
  let v1 = 0x646f72616e646f6dn ^ k1;
  let v2 = 0x6c7967656e657261n ^ k0;
  let v3 = 0x7465646279746573n ^ k1;
  const round = () => {
    v0 = (v0 + v1) & M;
    v1 = rotl(v1, 13n);
    v1 ^= v0;
    v0 = rotl(v0, 32n);
    v2 = (v2 + v3) & M;
    v3 = rotl(v3, 16n);
    v3 ^= v2;
    v0 = (v0 + v3) & M;
    v3 = rotl(v3, 21n);
    v3 ^= v0;
    v2 = (v2 + v1) & M;
    v1 = rotl(v1, 17n);
    v1 ^= v2;
    v2 = rotl(v2, 32n);
  };
  const len = data.length;
  const full = len - (len % 8);
  for (let i = 0; i < full; i += 8) {
    let m = 0n;
    for (let j = 7; j >= 0; j--) m = (m << 8n) | BigInt(data[i + j]);
    v3 ^= m;
    round();
    v0 ^= m;
  }
  let b = BigInt(len) << 56n;
  for (let j = len - 1; j >= full; j--) b |= BigInt(data[j]) << BigInt(8 * (j - full));
  v3 ^= b;
  round();
  v0 ^= b;
  v2 ^= 0xffn;
  round();
  round();
  round();
  const r = (v0 ^ v1 ^ v2 ^ v3) & M;
  return Number(r & 0xffffffffn);
}

const MH_KEY1 = 2654435761n;
const MH_KEY2 = 2654446892n;

function mhHash(addr: number, port: number, key: bigint): number {
  // ip_vs_mh_hashkey hashes the address and port as one 32-bit word pair.
  const buf = new Uint8Array(8);
  new DataView(buf.buffer).setUint32(0, addr >>> 0, false);
  new DataView(buf.buffer).setUint16(4, port, false);
  return hsiphash(buf, key, key);
}

class MaglevHashing implements Scheduler {
  readonly name = "mh";
  private lookup: Array<Dest | undefined> = new Array(MH_TAB_SIZE).fill(undefined);
  constructor(
    private readonly hashPort: boolean,
    private readonly fallback: boolean,
  ) {}
  update(dests: Dest[]): void {
    this.lookup = new Array(MH_TAB_SIZE).fill(undefined);
    const live = dests.filter((d) => d.weight > 0);
    if (live.length === 0) return;
    const g = live.map((d) => d.weight).reduce(gcd);
    const perms = live.map((d) => {
      const offset = mhHash(d.addr, d.port, MH_KEY1) % MH_TAB_SIZE;
      const skip = (mhHash(d.addr, d.port, MH_KEY2) % (MH_TAB_SIZE - 1)) + 1;
      return { d, offset, skip, perm: 0, turns: d.weight / g };
    });
    let filled = 0;
    while (filled < MH_TAB_SIZE) {
      for (const p of perms) {
        for (let t = 0; t < p.turns && filled < MH_TAB_SIZE; t++) {
          let c = (p.offset + p.perm * p.skip) % MH_TAB_SIZE;
          while (this.lookup[c] !== undefined) {
            p.perm++;
            c = (p.offset + p.perm * p.skip) % MH_TAB_SIZE;
          }
          this.lookup[c] = p.d;
          p.perm++;
          filled++;
        }
      }
    }
  }
  schedule(_dests: Dest[], input: ScheduleInput): Dest | undefined {
    const port = this.hashPort ? input.srcPort : 0;
    const h = mhHash(input.srcAddr, port, MH_KEY1);
    const d = this.lookup[h % MH_TAB_SIZE];
    if (d && d.weight > 0) return d;
    if (!this.fallback) return undefined;
    for (let offset = 1; offset < MH_TAB_SIZE; offset++) {
      const alt = this.lookup[(h + offset) % MH_TAB_SIZE];
      if (alt && alt.weight > 0) return alt;
    }
    return undefined;
  }
}

/** Flags as ipvsadm takes them with -b: sh-port, sh-fallback, mh-port, mh-fallback. */
export function createScheduler(name: SchedulerName, flags: string[] = []): Scheduler {
  switch (name) {
    case "rr":
      return new RoundRobin();
    case "wrr":
      return new WeightedRoundRobin();
    case "lc":
      return new LeastConnection();
    case "wlc":
      return new WeightedLeast("wlc", connOverhead);
    case "sed":
      return new WeightedLeast("sed", (d) => d.activeConns + 1);
    case "nq":
      return new NeverQueue();
    case "sh":
      return new SourceHashing(flags.includes("sh-port"), flags.includes("sh-fallback"));
    case "dh":
      return new DestinationHashing();
    case "lblc":
      return new LocalityLeastConn();
    case "lblcr":
      return new LocalityLeastConnReplication();
    case "mh":
      return new MaglevHashing(flags.includes("mh-port"), flags.includes("mh-fallback"));
  }
}

export function isSchedulerName(s: string): s is SchedulerName {
  return (SCHEDULERS as readonly string[]).includes(s);
}
