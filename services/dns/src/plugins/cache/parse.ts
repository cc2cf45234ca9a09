import type { Directive } from "../../corefile/parse.ts";
import { argError, durationArg, intArg, normalizeZones, pluginError } from "../../setup.ts";

export interface CacheTier {
  capacity: number;
  maxTtl: number;
  minTtl: number;
  /** Zones where this kind of response is not cached (`disable`). */
  disabledZones: string[];
}

export interface CacheOptions {
  zones: string[];
  success: CacheTier;
  denial: CacheTier;
  servfailMs: number;
  prefetch: { amount: number; durationMs: number; percentage: number } | undefined;
  serveStale: { durationMs: number; mode: "immediate" | "verify" } | undefined;
  keepTtl: boolean;
}

const P = "cache";
const MIN_CAPACITY = 1024;

/** `cache [TTL] [ZONES...] { success|denial CAP [TTL] [MINTTL]; prefetch; serve_stale; servfail; disable; keepttl }` */
export function parseCache(dirs: Directive[], serverZones: string[]): CacheOptions {
  if (dirs.length > 1) throw pluginError(P, dirs[1]!, "plugin can only be used once per server block");
  const d = dirs[0]!;
  const opts: CacheOptions = {
    zones: serverZones,
    success: { capacity: 10_000, maxTtl: 3600, minTtl: 5, disabledZones: [] },
    denial: { capacity: 10_000, maxTtl: 1800, minTtl: 5, disabledZones: [] },
    servfailMs: 5000,
    prefetch: undefined,
    serveStale: undefined,
    keepTtl: false,
  };
  let args = d.args;
  if (args.length > 0 && /^\d+$/.test(args[0]!)) {
    const ttl = intArg(P, d, 0, 0);
    opts.success.maxTtl = opts.denial.maxTtl = ttl;
    if (ttl < 5) opts.success.minTtl = opts.denial.minTtl = ttl;
    args = args.slice(1);
  }
  if (args.length > 0) opts.zones = normalizeZones(args, serverZones);
  for (const o of d.block ?? []) {
    switch (o.name) {
      case "success":
      case "denial": {
        if (o.args.length < 1 || o.args.length > 3) throw argError(P, o);
        const tier = opts[o.name];
        tier.capacity = Math.max(MIN_CAPACITY, intArg(P, o, 0, 0));
        if (o.args[1] !== undefined) tier.maxTtl = intArg(P, o, 1, 0);
        if (o.args[2] !== undefined) tier.minTtl = intArg(P, o, 2, 0);
        if (tier.minTtl > tier.maxTtl) tier.minTtl = tier.maxTtl;
        break;
      }
      case "prefetch": {
        if (o.args.length < 1 || o.args.length > 3) throw argError(P, o);
        const amount = intArg(P, o, 0, 1);
        let durationMs = 60_000;
        let percentage = 10;
        for (let i = 1; i < o.args.length; i++) {
          const a = o.args[i]!;
          if (a.endsWith("%")) {
            percentage = Number(a.slice(0, -1));
            if (!Number.isInteger(percentage) || percentage < 0 || percentage > 100)
              throw pluginError(P, o, `percentage should fall in range [0, 100]: ${a}`);
          } else durationMs = durationArg(P, o, i);
        }
        opts.prefetch = { amount, durationMs, percentage };
        break;
      }
      case "serve_stale": {
        if (o.args.length > 2) throw argError(P, o);
        const durationMs = o.args[0] !== undefined ? durationArg(P, o, 0) : 3_600_000;
        const mode = o.args[1] ?? "immediate";
        if (mode !== "immediate" && mode !== "verify")
          throw pluginError(P, o, `invalid value for serve_stale refresh mode: ${mode}`);
        opts.serveStale = { durationMs, mode };
        break;
      }
      case "servfail": {
        if (o.args.length !== 1) throw argError(P, o);
        opts.servfailMs = durationArg(P, o, 0);
        if (opts.servfailMs > 300_000) throw pluginError(P, o, "maximum servfail duration is 5m");
        break;
      }
      case "disable": {
        if (o.args.length < 1) throw argError(P, o);
        const kind = o.args[0];
        if (kind !== "success" && kind !== "denial")
          throw pluginError(P, o, `cache type for disable must be "success" or "denial"`);
        opts[kind].disabledZones = normalizeZones(o.args.slice(1), opts.zones);
        break;
      }
      case "keepttl":
        if (o.args.length) throw argError(P, o);
        opts.keepTtl = true;
        break;
      default:
        throw pluginError(P, o, `unknown property '${o.name}'`);
    }
  }
  return opts;
}
