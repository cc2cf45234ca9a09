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
  /** ResponseCache.key of the query stored. */
  key: string;
  name: string;
  type: string;
  class: string;
  do: boolean;
  cd: boolean;
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

/**
 * What an entry is cached under, as CoreDNS's cache key (plugin/cache hash(qname, qtype, do, cd)):
 * the question (its name case-insensitive, and its class) and the query's DO and CD bits.
 */
export type CacheQuery = Pick<Request, "question" | "do"> & Partial<Pick<Request, "msg">>;

const checkingDisabled = (req: CacheQuery): boolean => ((req.msg?.flags ?? 0) & Flag.CD) !== 0;

/** The question's name as the cache holds it: lower case, no final dot (the root stays "."). */
function cacheName(name: string): string {
  const lower = name.toLowerCase();
  const n = lower.length;
  if (n === 0) return ".";
  return n > 1 && lower.charCodeAt(n - 1) === 46 ? lower.slice(0, n - 1) : lower;
}

/** Success and denial caches with CoreDNS's TTL clamping, prefetch and serve_stale. */
export class ResponseCache {
  /**
   * Every entry by its name, then type, class and DO among the few of that name: a hit hashes
   * the query's own name string and builds no key.
   */
  private readonly byName = new Map<string, Item[]>();
  /** Each kind's entries in the order stored: capacity and eviction are per kind. */
  private readonly maps: Record<Kind, Map<string, Item>> = { success: new Map(), denial: new Map() };
  constructor(
    readonly opts: CacheOptions,
    private readonly now: () => number = Date.now,
    private readonly onEvict: (kind: Kind) => void = () => {},
  ) {}

  /** The entry's key for the per-kind bookkeeping: name (case-insensitive), type, class, DO, CD. */
  static key(req: CacheQuery): string {
    const q = req.question;
    return `${cacheName(q.name)}|${q.type}|${q.class ?? "IN"}|${req.do ? 1 : 0}|${checkingDisabled(req) ? 1 : 0}`;
  }

  size(kind: Kind): number {
    return this.maps[kind].size;
  }

  /** Stores a response when its kind is cacheable for its name; returns the TTL it lives, or 0. */
  store(req: CacheQuery, msg: Message): number {
    const cls = classifyForCache(msg);
    if (!cls) return 0;
    const name = cacheName(req.question.name);
    let kind: Kind;
    let ttl: number;
    if (cls === "servfail") {
      if (this.opts.servfailMs === 0) return 0;
      kind = "denial";
      ttl = this.opts.servfailMs / 1000;
    } else {
      kind = cls;
      const tier = this.opts[kind];
      if (tier.disabledZones.length > 0 && matchZone(fqdnCase(name), tier.disabledZones)) return 0;
      const msgTtl = minimalTtl(msg, kind);
      if (msgTtl === undefined) return 0;
      ttl = Math.min(Math.max(msgTtl, tier.minTtl), tier.maxTtl);
    }
    if (ttl <= 0) return 0;
    // One entry per query: a name that changed kind (an answer gone, say) replaces its old one.
    // CoreDNS keeps the two kinds in two caches under one key and looks in the denial cache
    // first, so a live denial hides an answer there too; it differs only with serve_stale, where
    // an expired answer could still be served once the denial has expired.
    const old = this.find(req);
    if (old) this.remove(old);
    const map = this.maps[kind];
    const capacity = this.opts[kind].capacity;
    if (map.size >= capacity) {
      const oldest = map.values().next().value;
      if (oldest !== undefined) {
        this.remove(oldest);
        this.onEvict(kind);
      }
    }
    const now = this.now();
    const item: Item = {
      key: ResponseCache.key(req),
      name,
      type: req.question.type,
      class: req.question.class ?? "IN",
      do: req.do,
      cd: checkingDisabled(req),
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
    map.set(item.key, item);
    const bucket = this.byName.get(name);
    if (bucket) bucket.push(item);
    else this.byName.set(name, [item]);
    return ttl;
  }

  /** The entry for a query, expired or not (serve_stale decides what an expired one is worth). */
  find(req: CacheQuery): Item | undefined {
    const bucket = this.byName.get(cacheName(req.question.name));
    if (bucket === undefined) return undefined;
    const q = req.question;
    const cls = q.class ?? "IN";
    const cd = checkingDisabled(req);
    for (let i = 0; i < bucket.length; i++) {
      const item = bucket[i]!;
      if (item.type === q.type && item.class === cls && item.do === req.do && item.cd === cd) return item;
    }
    return undefined;
  }

  remove(item: Item): void {
    if (this.maps[item.kind].get(item.key) !== item) return;
    this.maps[item.kind].delete(item.key);
    const bucket = this.byName.get(item.name)!;
    if (bucket.length === 1) this.byName.delete(item.name);
    else bucket.splice(bucket.indexOf(item), 1);
  }

  /** Seconds an entry has left at `now` (negative once expired). */
  remaining(item: Item, now: number = this.now()): number {
    return item.ttl - (now - item.storedAt) / 1000;
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
  const fetchAndStore = async (req: Request, next: (r: Request) => Promise<Message>) => {
    const res = await next(req);
    const ttl = cache.store(req, res);
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
  const refresh = (req: Request, next: (r: Request) => Promise<Message>) => {
    const copy: Request = { ...req, afterWrite: undefined, internal: true };
    fetchAndStore(copy, next).catch(() => {});
  };

  // `cache` with no zones (or `.`) caches every name: no zone walk per query
  const everyZone = opts.zones.includes(".");
  const prefetch = opts.prefetch !== undefined;

  const plugin: Plugin = {
    name: "cache",
    async serve(req, next) {
      if (!everyZone && !matchZone(fqdnCase(req.question.name).toLowerCase(), opts.zones)) return next(req);
      requestsChild.inc();
      const item = cache.find(req);
      const remaining = item === undefined ? 0 : cache.remaining(item);
      if (item !== undefined && remaining > 0) {
        if (item.kind === "success") hitsSuccess.inc();
        else hitsDenial.inc();
        if (prefetch && cache.shouldPrefetch(item, remaining)) {
          item.prefetching = true;
          m.cachePrefetch.inc(labels);
          refresh(req, next);
        }
        return cache.toReply(item, req, remaining);
      }
      const stale =
        item !== undefined && opts.serveStale && -remaining * 1000 <= opts.serveStale.durationMs
          ? item
          : undefined;
      if (stale && opts.serveStale!.mode === "immediate") {
        m.cacheServedStale.inc(labels);
        refresh(req, next);
        return cache.toReply(stale, req, 0);
      }
      if (item !== undefined && !stale) cache.remove(item);
      missesChild.inc();
      try {
        const res = await fetchAndStore(req, next);
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
