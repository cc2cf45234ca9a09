// xt_recent's tables, which outlive any one ruleset (a restore that keeps a --name keeps its
// entries) and have the kernel module's limits: ip_list_tot = 100 addresses per table, the
// least recently seen evicted first, and ip_pkt_list_tot = 20 timestamps per address.

export const IP_LIST_TOT = 100;
export const IP_PKT_LIST_TOT = 20;

interface Entry {
  stamps: number[];
  lastSeen: number;
}

export class RecentTables {
  private readonly tables = new Map<string, Map<number, Entry>>();

  private table(name: string): Map<number, Entry> {
    let t = this.tables.get(name);
    if (!t) {
      t = new Map();
      this.tables.set(name, t);
    }
    return t;
  }

  set(name: string, addr: number, now: number): void {
    const t = this.table(name);
    let e = t.get(addr);
    if (!e) {
      if (t.size >= IP_LIST_TOT) {
        // Map keeps insertion order and every touch re-inserts, so the first key is the LRU one.
        const oldest = t.keys().next().value as number;
        t.delete(oldest);
      }
      e = { stamps: [], lastSeen: now };
    } else t.delete(addr);
    e.stamps.push(now);
    if (e.stamps.length > IP_PKT_LIST_TOT) e.stamps.shift();
    e.lastSeen = now;
    t.set(addr, e);
  }

  /**
   * --rcheck/--update: does `addr` have a stamp within `seconds` (or at all), `hitcount` times?
   * With reap, an entry whose newest stamp is older than the window is removed.
   */
  check(
    name: string,
    addr: number,
    now: number,
    seconds: number | undefined,
    hitcount: number | undefined,
    reap: boolean,
  ): boolean {
    const t = this.tables.get(name);
    const e = t?.get(addr);
    if (!t || !e) return false;
    const since = seconds !== undefined ? now - seconds * 1000 : -Infinity;
    let hits = 0;
    let matched = false;
    for (const s of e.stamps) {
      if (seconds !== undefined && s < since) continue;
      if (!hitcount || ++hits >= hitcount) {
        matched = true;
        break;
      }
    }
    if (reap && e.lastSeen < since) t.delete(addr);
    return matched;
  }

  remove(name: string, addr: number): boolean {
    return this.tables.get(name)?.delete(addr) ?? false;
  }

  /** Entries of one list, as /proc/net/xt_recent/<name> shows them. */
  entries(name: string): Array<{ addr: number; lastSeen: number; stamps: number[] }> {
    return [...(this.tables.get(name)?.entries() ?? [])].map(([addr, e]) => ({
      addr,
      lastSeen: e.lastSeen,
      stamps: e.stamps.slice(),
    }));
  }

  /** Drops lists no rule names any more, as the kernel frees a table with its last rule. */
  retain(names: Set<string>): void {
    for (const n of this.tables.keys()) if (!names.has(n)) this.tables.delete(n);
  }
}
