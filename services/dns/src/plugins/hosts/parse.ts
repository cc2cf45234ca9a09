import { isIP } from "node:net";
import type { Directive } from "../../corefile/parse.ts";
import { argError, durationArg, intArg, normalizeZones, pluginError } from "../../setup.ts";

export interface HostsOptions {
  path: string;
  zones: string[];
  inline: string[];
  ttl: number;
  noReverse: boolean;
  reloadMs: number;
  fallthrough?: string[];
}

const P = "hosts";

/** `hosts [FILE [ZONES...]] { INLINE...; ttl; no_reverse; reload; fallthrough [ZONES...] }` */
export function parseHosts(dirs: Directive[], serverZones: string[]): HostsOptions {
  if (dirs.length > 1) throw pluginError(P, dirs[1]!, "this plugin can only be used once per Server Block");
  const d = dirs[0]!;
  const opts: HostsOptions = {
    path: d.args[0] ?? "/etc/hosts",
    zones: normalizeZones(d.args.slice(1), serverZones),
    inline: [],
    ttl: 3600,
    noReverse: false,
    reloadMs: 5000,
  };
  for (const o of d.block ?? []) {
    if (isIP(o.name)) {
      if (o.args.length === 0) throw pluginError(P, o, `no names given for address ${o.name}`);
      opts.inline.push([o.name, ...o.args].join(" "));
      continue;
    }
    switch (o.name) {
      case "ttl":
        if (o.args.length !== 1) throw argError(P, o);
        opts.ttl = intArg(P, o, 0, 1, 4294967295);
        break;
      case "no_reverse":
        if (o.args.length) throw argError(P, o);
        opts.noReverse = true;
        break;
      case "reload":
        if (o.args.length !== 1) throw argError(P, o);
        opts.reloadMs = durationArg(P, o, 0);
        break;
      case "fallthrough":
        opts.fallthrough = normalizeZones(o.args, []);
        break;
      default:
        throw pluginError(P, o, `unknown property '${o.name}'`);
    }
  }
  return opts;
}
