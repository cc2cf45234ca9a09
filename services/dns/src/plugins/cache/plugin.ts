import type { Answer } from "dns-packet";
import {
  DnsError,
  Flag,
  Rcode,
  fqdnCase,
  matchZone,
  rcodeOf,
  rrOf,
  wireSlot,
  type Message,
  type Plugin,
  type Request,
  type WireSlot,
} from "../../message.ts";
import { localCounter } from "../../metrics.ts";
import type { Setup } from "../../setup.ts";
import { parseCache, type CacheOptions } from "./parse.ts";

type Kind = "success" | "denial";

/**
 * One cached reply. Only what a hit needs is kept, in one fixed shape: a hit builds its reply
 * from these fields alone (spreading a decoded message copied its dozen dns-packet header
 * fields into every reply, and left the server reading objects of many shapes).
 */
export interface Item {
  kind: Kind;
  /** The reply's flags a hit keeps (RA, AD, TC, rcode) with AA set, as CoreDNS does. */
  flags: number;
  answers: Answer[];
  authorities: Answer[];
  additionals: Answer[];
  storedAt: number;
  /** Seconds the entry lives; also the reference for prefetch's percentage. */
  ttl: number;
  hits: number;
  /** Time of the last hit. */
  windowStart: number;
  prefetching: boolean;
  /** The records at the TTL last served, shared by every reply in that second (and their encoding). */
  aged: WireSlot | undefined;
  agedTtl: number;
}

/** The TTL CoreDNS derives for a response: lowest record TTL; for denials, the SOA's. */
export function minimalTtl(m: Message, kind: Kind): number | undefined {
  if (kind === "denial") {
    const soa = m.authorities.find((a) => a.type === "SOA");
    if (!soa) return undefined;
    const minimum = (soa.data as { minimum?: number }).minimum ?? soa.ttl ?? 0;
    return Math.min(soa.ttl ?? 0, minimum);
  }
  const records = [...m.answers, ...m.authorities, ...m.additionals].filter(
    (a) => (a.type as string) !== "OPT",
  );
  if (records.length === 0) return undefined;
  return Math.min(...records.map((r) => rrOf(r).ttl ?? 0));
}

export function classifyForCache(m: Message): Kind | "servfail" | undefined {
  const rcode = rcodeOf(m);
  if (m.flags & Flag.TC) return undefined;
  if (rcode === Rcode.NXDOMAIN) return "denial";
  if (rcode === Rcode.NOERROR) return m.answers.length === 0 ? "denial" : "success";
  if (rcode === Rcode.SERVFAIL) return "servfail";
  return undefined;
}

export function withTtl(records: Answer[], ttl: number): Answer[] {
  return records.map((r) => ((r.type as string) === "OPT" ? r : ({ ...r, ttl } as Answer)));
}

/** Header bits a cached reply takes from the query rather than from the stored reply. */
const QUERY_FLAGS = Flag.RD | Flag.CD | 0x7800;

/** Success and denial caches with CoreDNS's TTL clamping, prefetch and serve_stale. */
export class ResponseCache {
  /** Every entry by key: a hit costs one lookup whatever its kind. */
  private readonly entries = new Map<string, Item>();
  /** Each kind's entries in the order stored: capacity and eviction are per kind. */
  private readonly maps: Record<Kind, Map<string, Item>> = { success: new Map(), denial: new Map() };
  constructor(
    readonly opts: CacheOptions,
    private readonly now: () => number = Date.now,
    private readonly onEvict: (kind: Kind) => void = () => {},
  ) {}

  /**
   * The entry's key: the question's name (case-insensitive, as a FQDN), type and class, and the
   * DO bit. Built in one concatenation: the key is made, flattened and hashed once per query.
   */
  static key(req: Pick<Request, "question" | "do">): string {
    const q = req.question;
    const name = q.name.toLowerCase();
    const dot = name.length > 0 && name.charCodeAt(name.length - 1) === 46 ? "" : ".";
    return `${name}${dot}|${q.type}|${q.class ?? "IN"}|${req.do ? 1 : 0}`;
  }

  size(kind: Kind): number {
    return this.maps[kind].size;
  }

  /** Stores a response when its kind is cacheable for its name; returns the TTL it lives, or 0. */
  store(key: string, name: string, msg: Message): number {
    const cls = classifyForCache(msg);
    if (!cls) return 0;
    let kind: Kind;
    let ttl: number;
    if (cls === "servfail") {
      if (this.opts.servfailMs === 0) return 0;
      kind = "denial";
      ttl = this.opts.servfailMs / 1000;
    } else {
      kind = cls;
      const tier = this.opts[kind];
      if (tier.disabledZones.length > 0 && matchZone(name, tier.disabledZones)) return 0;
      const msgTtl = minimalTtl(msg, kind);
      if (msgTtl === undefined) return 0;
      ttl = Math.min(Math.max(msgTtl, tier.minTtl), tier.maxTtl);
    }
    if (ttl <= 0) return 0;
    // A name that changed kind (an answer gone, say) must not leave its old entry behind.
    this.remove(key);
    const map = this.maps[kind];
    const capacity = this.opts[kind].capacity;
    if (map.size >= capacity) {
      const oldest = map.keys().next().value;
      if (oldest !== undefined) {
        this.remove(oldest);
        this.onEvict(kind);
      }
    }
    const now = this.now();
    const item: Item = {
      kind,
      // CoreDNS sets AA on cached replies: some clients drop non-authoritative ones.
      flags: (msg.flags & (Flag.RA | Flag.AD | 0xf | Flag.TC)) | Flag.AA,
      answers: [...msg.answers],
      authorities: [...msg.authorities],
      additionals: [...msg.additionals],
      storedAt: now,
      ttl,
      hits: 0,
      windowStart: now,
      prefetching: false,
      aged: undefined,
      agedTtl: -1,
    };
    map.set(key, item);
    this.entries.set(key, item);
    return ttl;
  }

  /** The entry under a key, expired or not (serve_stale decides what an expired one is worth). */
  get(key: string): Item | undefined {
    return this.entries.get(key);
  }

  /** Seconds an entry has left at `now` (negative once expired). */
  remaining(item: Item, now: number = this.now()): number {
    return item.ttl - (now - item.storedAt) / 1000;
  }

  lookup(key: string): { item: Item; remaining: number } | undefined {
    const item = this.entries.get(key);
    return item ? { item, remaining: this.remaining(item) } : undefined;
  }

  remove(key: string): void {
    if (!this.entries.delete(key)) return;
    this.maps.success.delete(key);
    this.maps.denial.delete(key);
  }

  /** The cached reply for a query, TTLs aged (or kept), with the query's id, flags and question. */
  toReply(item: Item, req: Request, remaining: number): Message {
    // As CoreDNS: every record carries the entry's remaining lifetime (its full one with keepttl).
    const ttl = this.opts.keepTtl ? Math.floor(item.ttl) : remaining > 0 ? Math.floor(remaining) : 0;
    let aged = item.aged;
    if (aged === undefined || item.agedTtl !== ttl) {
      aged = item.aged = wireSlot(
        withTtl(item.answers, ttl),
        withTtl(item.authorities, ttl),
        withTtl(item.additionals, ttl),
      );
      item.agedTtl = ttl;
    }
    const q = req.msg;
    // the shape of message.ts's reply() with the wire slot: the server sees one kind of object
    return {
      id: q.id ?? 0,
      type: "response",
      flags: item.flags | ((q.flags ?? 0) & QUERY_FLAGS),
      questions: [req.question],
      answers: aged.answers,
      authorities: aged.authorities,
      additionals: aged.additionals,
      wire: aged,
    };
  }

  /** Counts a hit; true when the entry should be refreshed ahead of expiry (prefetch). */
  shouldPrefetch(item: Item, remaining: number): boolean {
    const p = this.opts.prefetch;
    if (!p || item.prefetching) return false;
    const now = this.now();
    // Hits count while no gap between two of them exceeds DURATION (CoreDNS's freq).
    if (now - item.windowStart > p.durationMs) item.hits = 0;
    item.windowStart = now;
    item.hits++;
    if (item.hits < p.amount) return false;
    return remaining <= Math.max(1, (item.ttl * p.percentage) / 100);
  }
}

export const setup: Setup = (dirs, ctx) => {
  const opts = parseCache(dirs, ctx.zones);
  const m = ctx.runtime.metrics;
  const zonesLabel = opts.zones.join(" ");
  const labels = { server: ctx.server, zones: zonesLabel, view: "" };
  // Children bound once: label hashing per query costs more than the cache lookup.
  const requestsChild = localCounter(m.cacheRequests, labels);
  const missesChild = localCounter(m.cacheMisses, labels);
  const hitsSuccess = localCounter(m.cacheHits, {
    server: ctx.server,
    type: "success",
    zones: zonesLabel,
    view: "",
  });
  const hitsDenial = localCounter(m.cacheHits, {
    server: ctx.server,
    type: "denial",
    zones: zonesLabel,
    view: "",
  });
  const cache = new ResponseCache(opts, Date.now, (type) =>
    m.cacheEvictions.inc({ server: ctx.server, type, zones: zonesLabel, view: "" }),
  );
  const updateEntries = () => {
    m.cacheEntries.set(
      { server: ctx.server, type: "success", zones: zonesLabel, view: "" },
      cache.size("success"),
    );
    m.cacheEntries.set(
      { server: ctx.server, type: "denial", zones: zonesLabel, view: "" },
      cache.size("denial"),
    );
  };
  const fetchAndStore = async (
    req: Request,
    next: (r: Request) => Promise<Message>,
    key: string,
    name: string,
  ) => {
    const res = await next(req);
    const ttl = cache.store(key, name, res);
    updateEntries();
    if (ttl > 0 && classifyForCache(res) !== "servfail") {
      // The first reply already carries the capped TTL, so clients see no jump from 3600 to 30.
      const capped = Math.floor(ttl);
      res.answers = withTtl(res.answers, capped);
      res.authorities = withTtl(res.authorities, capped);
      res.additionals = withTtl(res.additionals, capped);
    }
    return res;
  };
  const refresh = (req: Request, next: (r: Request) => Promise<Message>, key: string, name: string) => {
    const copy: Request = { ...req, afterWrite: undefined, internal: true };
    fetchAndStore(copy, next, key, name).catch(() => {});
  };

  // `cache` with no zones (or `.`) caches every name: no zone walk per query
  const everyZone = opts.zones.includes(".");
  const prefetch = opts.prefetch !== undefined;

  const plugin: Plugin = {
    name: "cache",
    async serve(req, next) {
      if (!everyZone && !matchZone(fqdnCase(req.question.name).toLowerCase(), opts.zones)) return next(req);
      requestsChild.inc();
      const key = ResponseCache.key(req);
      const item = cache.get(key);
      const remaining = item === undefined ? 0 : cache.remaining(item);
      if (item !== undefined && remaining > 0) {
        if (item.kind === "success") hitsSuccess.inc();
        else hitsDenial.inc();
        if (prefetch && cache.shouldPrefetch(item, remaining)) {
          item.prefetching = true;
          m.cachePrefetch.inc(labels);
          refresh(req, next, key, fqdnCase(req.question.name).toLowerCase());
        }
        return cache.toReply(item, req, remaining);
      }
      const name = fqdnCase(req.question.name).toLowerCase();
      const stale =
        item !== undefined && opts.serveStale && -remaining * 1000 <= opts.serveStale.durationMs
          ? item
          : undefined;
      if (stale && opts.serveStale!.mode === "immediate") {
        m.cacheServedStale.inc(labels);
        refresh(req, next, key, name);
        return cache.toReply(stale, req, 0);
      }
      if (item !== undefined && !stale) cache.remove(key);
      missesChild.inc();
      try {
        const res = await fetchAndStore(req, next, key, name);
        if (stale && rcodeOf(res) === Rcode.SERVFAIL) {
          m.cacheServedStale.inc(labels);
          return cache.toReply(stale, req, 0);
        }
        return res;
      } catch (err) {
        if (stale) {
          m.cacheServedStale.inc(labels);
          return cache.toReply(stale, req, 0);
        }
        throw err instanceof Error ? err : new DnsError(Rcode.SERVFAIL, String(err));
      }
    },
  };
  return [plugin];
};
