/**
 * The Prometheus metrics CoreDNS exports, by their CoreDNS names, in one registry per server
 * process (so several servers can live in one test process).
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";

export const COREDNS_VERSION = "1.12.0";

const durationBuckets = Array.from({ length: 16 }, (_, i) => 0.00025 * 2 ** i);
const sizeBuckets = [0, 100, 200, 300, 400, 511, 1023, 2047, 4095, 8291, 16e3, 32e3, 48e3, 64e3];

export function createMetrics(registry = new Registry()) {
  const r = [registry];
  const m = {
    registry,
    buildInfo: new Gauge({
      name: "coredns_build_info",
      help: "A metric with a constant '1' value labeled by version, revision, and goversion from which CoreDNS was built.",
      labelNames: ["version", "revision", "goversion"],
      registers: r,
    }),
    panics: new Counter({
      name: "coredns_panics_total",
      help: "A metrics that counts the number of panics.",
      registers: r,
    }),
    requests: new Counter({
      name: "coredns_dns_requests_total",
      help: "Counter of DNS requests made per zone, protocol and family.",
      labelNames: ["server", "zone", "view", "proto", "family", "type"],
      registers: r,
    }),
    requestDuration: new Histogram({
      name: "coredns_dns_request_duration_seconds",
      help: "Histogram of the time (in seconds) each request took per zone.",
      labelNames: ["server", "zone", "view", "type"],
      buckets: durationBuckets,
      registers: r,
    }),
    requestSize: new Histogram({
      name: "coredns_dns_request_size_bytes",
      help: "Size of the EDNS0 UDP buffer in bytes (64K for TCP) per zone and protocol.",
      labelNames: ["server", "zone", "view", "proto"],
      buckets: sizeBuckets,
      registers: r,
    }),
    responseSize: new Histogram({
      name: "coredns_dns_response_size_bytes",
      help: "Size of the returned response in bytes.",
      labelNames: ["server", "zone", "view", "proto"],
      buckets: sizeBuckets,
      registers: r,
    }),
    doRequests: new Counter({
      name: "coredns_dns_do_requests_total",
      help: "Counter of DNS requests with DO bit set per zone.",
      labelNames: ["server", "view", "zone"],
      registers: r,
    }),
    responses: new Counter({
      name: "coredns_dns_responses_total",
      help: "Counter of response status codes.",
      labelNames: ["server", "zone", "view", "rcode", "plugin"],
      registers: r,
    }),
    pluginEnabled: new Gauge({
      name: "coredns_plugin_enabled",
      help: "A metric that indicates whether a plugin is enabled on per server and zone basis.",
      labelNames: ["server", "zone", "view", "name"],
      registers: r,
    }),
    reloadFailed: new Counter({
      name: "coredns_reload_failed_total",
      help: "Counter of the number of failed reload attempts.",
      registers: r,
    }),
    reloadVersion: new Gauge({
      name: "coredns_reload_version_info",
      help: "A metric with a constant '1' value labeled by hash, and value which type of hash generated.",
      labelNames: ["hash", "value"],
      registers: r,
    }),
    cacheEntries: new Gauge({
      name: "coredns_cache_entries",
      help: "The number of elements in the cache.",
      labelNames: ["server", "type", "zones", "view"],
      registers: r,
    }),
    cacheRequests: new Counter({
      name: "coredns_cache_requests_total",
      help: "The count of cache requests.",
      labelNames: ["server", "zones", "view"],
      registers: r,
    }),
    cacheHits: new Counter({
      name: "coredns_cache_hits_total",
      help: "The count of cache hits.",
      labelNames: ["server", "type", "zones", "view"],
      registers: r,
    }),
    cacheMisses: new Counter({
      name: "coredns_cache_misses_total",
      help: "The count of cache misses. Deprecated, derive misses from cache hits/requests counters.",
      labelNames: ["server", "zones", "view"],
      registers: r,
    }),
    cachePrefetch: new Counter({
      name: "coredns_cache_prefetch_total",
      help: "The number of times the cache has prefetched a cached item.",
      labelNames: ["server", "zones", "view"],
      registers: r,
    }),
    cacheDrops: new Counter({
      name: "coredns_cache_drops_total",
      help: "The number responses that are not cached, because the reply is malformed.",
      labelNames: ["server", "zones", "view"],
      registers: r,
    }),
    cacheServedStale: new Counter({
      name: "coredns_cache_served_stale_total",
      help: "The number of requests served from stale cache entries.",
      labelNames: ["server", "zones", "view"],
      registers: r,
    }),
    cacheEvictions: new Counter({
      name: "coredns_cache_evictions_total",
      help: "The count of cache evictions.",
      labelNames: ["server", "type", "zones", "view"],
      registers: r,
    }),
    forwardRequests: new Counter({
      name: "coredns_forward_requests_total",
      help: "Counter of requests made per upstream.",
      labelNames: ["to"],
      registers: r,
    }),
    forwardResponses: new Counter({
      name: "coredns_forward_responses_total",
      help: "Counter of responses received per upstream.",
      labelNames: ["to", "rcode"],
      registers: r,
    }),
    forwardMaxConcurrentRejects: new Counter({
      name: "coredns_forward_max_concurrent_rejects_total",
      help: "Counter of the number of queries rejected because the concurrent queries were at maximum.",
      registers: r,
    }),
    proxyDuration: new Histogram({
      name: "coredns_proxy_request_duration_seconds",
      help: "Histogram of the time each request took.",
      labelNames: ["proxy_name", "to", "rcode"],
      buckets: durationBuckets,
      registers: r,
    }),
    proxyHealthcheckFailures: new Counter({
      name: "coredns_proxy_healthcheck_failures_total",
      help: "Counter of the number of failed healthchecks.",
      labelNames: ["proxy_name", "to"],
      registers: r,
    }),
    forwardHealthcheckBroken: new Counter({
      name: "coredns_forward_healthcheck_broken_total",
      help: "Counter of the number of complete failures of the healthchecks.",
      registers: r,
    }),
    healthDuration: new Histogram({
      name: "coredns_health_request_duration_seconds",
      help: "Histogram of the time (in seconds) each request took.",
      buckets: [0.00025, 0.0025, 0.05, 0.1, 0.2, 0.4, 0.8, 1, 1.6, 3.2, 6.4],
      registers: r,
    }),
    healthFailures: new Counter({
      name: "coredns_health_request_failures_total",
      help: "The number of times the health check failed.",
      registers: r,
    }),
    hostsEntries: new Gauge({
      name: "coredns_hosts_entries",
      help: "The combined number of entries in hosts and Corefile.",
      registers: r,
    }),
    hostsReloadTimestamp: new Gauge({
      name: "coredns_hosts_reload_timestamp_seconds",
      help: "The timestamp of the last reload of hosts file.",
      registers: r,
    }),
    kubernetesProgramming: new Histogram({
      name: "coredns_kubernetes_dns_programming_duration_seconds",
      help: "Histogram of the time (in seconds) it took to program a dns instance.",
      labelNames: ["service_kind"],
      buckets: [
        0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192,
        16.384, 32.768, 65.536, 131.072, 262.144, 524.288,
      ],
      registers: r,
    }),
  };
  m.buildInfo.set(
    { version: COREDNS_VERSION, revision: "klab", goversion: `node${process.versions.node}` },
    1,
  );
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;

const typeLabels = new Set([
  "A",
  "AAAA",
  "MX",
  "SOA",
  "CNAME",
  "PTR",
  "TXT",
  "NS",
  "SRV",
  "DS",
  "DNSKEY",
  "RRSIG",
  "NSEC",
  "NSEC3",
  "HTTPS",
  "IXFR",
  "AXFR",
  "ANY",
]);
export function typeLabel(type: string): string {
  return typeLabels.has(type) ? type : "other";
}

/**
 * prom-client hashes a label object on every call; per-query metrics instead keep the child for
 * each label combination, keyed by a string the caller builds cheaply.
 */
export function childCache<C>(
  make: (labels: Record<string, string>) => C,
): (key: string, labels: () => Record<string, string>) => C {
  const children = new Map<string, C>();
  return (key, labels) => {
    let c = children.get(key);
    if (c === undefined) {
      c = make(labels());
      children.set(key, c);
    }
    return c;
  };
}

/** A counter for one label set that adds up in a plain number until the registry is read. */
export interface LocalCount {
  inc(n?: number): void;
}

type Collecting = { collect?: (this: unknown) => unknown };
const localCounts = new WeakMap<Counter<string>, Set<{ labels: Record<string, string>; n: number }>>();

/**
 * prom-client hashes the label set on every `inc` (even through `labels()`); on the query path
 * that costs more than the work being counted. These counts reach the counter when the registry
 * is read (`collect`), so a scrape sees every query.
 */
export function localCounter(counter: Counter<string>, labels: Record<string, string>): LocalCount {
  let set = localCounts.get(counter);
  if (!set) {
    const own = new Set<{ labels: Record<string, string>; n: number }>();
    set = own;
    localCounts.set(counter, own);
    const c = counter as unknown as Collecting;
    const previous = c.collect;
    c.collect = function (this: unknown) {
      for (const x of own)
        if (x.n > 0) {
          counter.inc(x.labels, x.n);
          x.n = 0;
        }
      return previous?.call(this);
    };
  }
  const entry = { labels, n: 0 };
  set.add(entry);
  return {
    inc(n = 1) {
      entry.n += n;
    },
  };
}
