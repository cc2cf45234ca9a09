/** Endpoint choice with state: round robin per upstream (ingress-nginx's default), sticky by cookie key, per-client rate buckets. */
import { createHash, randomBytes } from "node:crypto";
import type { Upstream, UpstreamEndpoint } from "../model.ts";
import { backendKey, pickEndpoint } from "../annotations/affinity.ts";
import { admit, type BucketState, type RateLimit } from "../annotations/limit-rps.ts";

export class Balancer {
  private readonly cursors = new Map<string, number>();

  /**
   * The next endpoint for `upstream` in round robin. A retry takes the next one too, without
   * skipping endpoints already tried, as ingress-nginx's Lua balancer does: with two endpoints a
   * request that fails everywhere goes to A, B, A.
   */
  next(upstream: Upstream): UpstreamEndpoint {
    const eps = upstream.endpoints;
    const cursor = this.cursors.get(upstream.name) ?? Math.floor(Math.random() * eps.length);
    this.cursors.set(upstream.name, (cursor + 1) % eps.length);
    return eps[cursor % eps.length];
  }

  /** Sticky choice: the cookie's key (or a new one) hashed onto the endpoints. */
  sticky(
    upstream: Upstream,
    key: string | undefined,
    exclude: ReadonlySet<string>,
  ): { endpoint: UpstreamEndpoint; cookieValue?: string } {
    const fresh = key === undefined;
    const k = key ?? createHash("md5").update(randomBytes(16)).digest("hex");
    const candidates = upstream.endpoints.filter((e) => !exclude.has(e.address));
    const endpoint = pickEndpoint(k, candidates.length ? candidates : upstream.endpoints)!;
    return { endpoint, cookieValue: fresh ? `${k}|${backendKey(upstream.name)}` : undefined };
  }
}

export class RateLimiter {
  private buckets = new Map<string, BucketState>();

  admit(key: string, limit: RateLimit, nowMs = Date.now()): boolean {
    const r = admit(this.buckets.get(key), nowMs, limit);
    if (r.ok) this.buckets.set(key, r.state);
    if (this.buckets.size > 100_000) this.sweep(nowMs);
    return r.ok;
  }

  /** Forget buckets idle long enough to have drained. */
  private sweep(nowMs: number): void {
    for (const [k, s] of this.buckets) if (nowMs - s.lastMs > 60_000) this.buckets.delete(k);
  }
}
