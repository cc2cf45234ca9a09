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

interface Item {
  msg: Message;
  kind: Kind;
  storedAt: number;
  /** Seconds the entry lives; also the reference for prefetch's percentage. */
  ttl: number;
  hits: number;
  /** Time of the last hit. */
  windowStart: number;
  prefetching: boolean;
  /** The records at the TTL last served, shared by every reply in that second (and their encoding). */
  aged?: WireSlot & { ttl: number };
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

/** Success and denial caches with CoreDNS's TTL clamping, prefetch and serve_stale. */
export class ResponseCache {
  private readonly maps: Record<Kind, Map<string, Item>> = { success: new Map(), denial: new Map() };
  constructor(
    readonly opts: CacheOptions,
    private readonly now: () => number = Date.now,
    private readonly onEvict: (kind: Kind) => void = () => {},
  ) {}

  static key(req: Pick<Request, "question" | "do">): string {
    return `${fqdnCase(req.question.name).toLowerCase()}|${req.question.type}|${req.question.class ?? "IN"}|${req.do ? 1 : 0}`;
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
    const map = this.maps[kind];
    map.delete(key);
    const capacity = this.opts[kind].capacity;
    if (map.size >= capacity) {
      const oldest = map.keys().next().value;
      if (oldest !== undefined) {
        map.delete(oldest);
        this.onEvict(kind);
      }
    }
    const now = this.now();
    map.set(key, {
      msg: {
        ...msg,
        answers: [...msg.answers],
        authorities: [...msg.authorities],
        additionals: [...msg.additionals],
      },
      kind,
      storedAt: now,
      ttl,
      hits: 0,
      windowStart: now,
      prefetching: false,
    });
    return ttl;
  }

  lookup(key: string): { item: Item; remaining: number } | undefined {
    for (const kind of ["success", "denial"] as const) {
      const item = this.maps[kind].get(key);
      if (!item) continue;
      const remaining = item.ttl - (this.now() - item.storedAt) / 1000;
      return { item, remaining };
    }
    return undefined;
  }

  remove(key: string): void {
    this.maps.success.delete(key);
    this.maps.denial.delete(key);
  }

  /** The cached reply for a query, TTLs aged (or kept), with the query's id and flags. */
  toReply(item: Item, req: Request, remaining: number): Message {
    // As CoreDNS: every record carries the entry's remaining lifetime (its full one with keepttl).
    const ttl = this.opts.keepTtl ? Math.floor(item.ttl) : Math.max(0, Math.floor(remaining));
    const m = item.msg;
    let aged = item.aged;
    if (!aged || aged.ttl !== ttl) {
      const slot = wireSlot(
        withTtl(m.answers, ttl),
        withTtl(m.authorities, ttl),
        withTtl(m.additionals, ttl),
      );
      aged = item.aged = Object.assign(slot, { ttl });
    }
    // CoreDNS sets AA on cached replies: some clients drop non-authoritative ones.
    const flags =
      (m.flags & (Flag.RA | Flag.AD | 0xf | Flag.TC)) |
      Flag.AA |
      ((req.msg.flags ?? 0) & (Flag.RD | Flag.CD | 0x7800));
    return {
      ...m,
      id: req.msg.id ?? 0,
      flags,
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
  const hitsChild = {
    success: localCounter(m.cacheHits, { server: ctx.server, type: "success", zones: zonesLabel, view: "" }),
    denial: localCounter(m.cacheHits, { server: ctx.server, type: "denial", zones: zonesLabel, view: "" }),
  };
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

  const plugin: Plugin = {
    name: "cache",
    async serve(req, next) {
      const name = fqdnCase(req.question.name).toLowerCase();
      if (!matchZone(name, opts.zones)) return next(req);
      requestsChild.inc();
      const key = ResponseCache.key(req);
      const hit = cache.lookup(key);
      if (hit && hit.remaining > 0) {
        hitsChild[hit.item.kind].inc();
        if (cache.shouldPrefetch(hit.item, hit.remaining)) {
          hit.item.prefetching = true;
          m.cachePrefetch.inc(labels);
          refresh(req, next, key, name);
        }
        return cache.toReply(hit.item, req, hit.remaining);
      }
      const stale =
        hit && opts.serveStale && -hit.remaining * 1000 <= opts.serveStale.durationMs ? hit : undefined;
      if (stale && opts.serveStale!.mode === "immediate") {
        m.cacheServedStale.inc(labels);
        refresh(req, next, key, name);
        return cache.toReply(stale.item, req, 0);
      }
      if (hit && !stale) cache.remove(key);
      missesChild.inc();
      try {
        const res = await fetchAndStore(req, next, key, name);
        if (stale && rcodeOf(res) === Rcode.SERVFAIL) {
          m.cacheServedStale.inc(labels);
          return cache.toReply(stale.item, req, 0);
        }
        return res;
      } catch (err) {
        if (stale) {
          m.cacheServedStale.inc(labels);
          return cache.toReply(stale.item, req, 0);
        }
        throw err instanceof Error ? err : new DnsError(Rcode.SERVFAIL, String(err));
      }
    },
  };
  return [plugin];
};
