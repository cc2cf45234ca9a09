import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import type { Directive } from "../../corefile/parse.ts";
import { argError, durationArg, intArg, normalizeZones, pluginError } from "../../setup.ts";
import { rcodeName } from "../../message.ts";

export interface UpstreamAddress {
  host: string;
  port: number;
}

export interface ForwardOptions {
  from: string;
  to: UpstreamAddress[];
  except: string[];
  forceTcp: boolean;
  preferUdp: boolean;
  expireMs: number;
  maxFails: number;
  policy: "random" | "round_robin" | "sequential";
  healthCheckMs: number;
  healthCheckRecursionDesired: boolean;
  healthCheckDomain: string;
  maxConcurrent: number;
  next: number[];
  failfastAllUnhealthy: boolean;
  readTimeoutMs: number;
}

const P = "forward";
const MAX_UPSTREAMS = 15;

/** `nameserver` lines of a resolv.conf(5), port 53. */
export function parseResolvConf(text: string): UpstreamAddress[] {
  const out: UpstreamAddress[] = [];
  for (const line of text.split("\n")) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (m && isIP(m[1]!.replace(/%.*$/, ""))) out.push({ host: m[1]!.replace(/%.*$/, ""), port: 53 });
  }
  return out;
}

/** `IP`, `IP:PORT`, `[IPv6]:PORT`, `dns://...`; anything else is a resolv.conf-style file. */
export function parseTo(
  text: string,
  readFile: (p: string) => string = (p) => readFileSync(p, "utf8"),
): UpstreamAddress[] {
  let t = text;
  const scheme = /^([a-z0-9+]+):\/\//i.exec(t);
  if (scheme) {
    if (scheme[1]!.toLowerCase() !== "dns")
      throw new Error(
        `unsupported protocol '${scheme[1]}://' for upstream ${text}: klab forwards over dns:// (UDP/TCP) only`,
      );
    t = t.slice(scheme[0].length);
  }
  if (isIP(t)) return [{ host: t, port: 53 }];
  const v6 = /^\[(.+)\](?::(\d+))?$/.exec(t);
  if (v6 && isIP(v6[1]!)) return [{ host: v6[1]!, port: v6[2] ? Number(v6[2]) : 53 }];
  const v4 = /^([\d.]+):(\d+)$/.exec(t);
  if (v4 && isIP(v4[1]!)) {
    const port = Number(v4[2]);
    if (port < 1 || port > 65535) throw new Error(`invalid port in ${text}`);
    return [{ host: v4[1]!, port }];
  }
  if (scheme || !t.includes("/")) throw new Error(`not an IP address or file: "${text}"`);
  let content: string;
  try {
    content = readFile(t);
  } catch (err) {
    throw new Error(`not an IP address or file: "${text}": ${(err as Error).message}`);
  }
  const list = parseResolvConf(content);
  if (list.length === 0) throw new Error(`no nameservers found in ${text}`);
  return list;
}

const rcodeByName = new Map(Array.from({ length: 11 }, (_, i) => [rcodeName(i), i] as const));

export function parseForward(d: Directive, readFile?: (p: string) => string): ForwardOptions {
  if (d.args.length < 2) throw argError(P, d);
  const opts: ForwardOptions = {
    from: normalizeZones([d.args[0]!], [])[0]!,
    to: [],
    except: [],
    forceTcp: false,
    preferUdp: false,
    expireMs: 10_000,
    maxFails: 2,
    policy: "random",
    healthCheckMs: 500,
    healthCheckRecursionDesired: true,
    healthCheckDomain: ".",
    maxConcurrent: 0,
    next: [],
    failfastAllUnhealthy: false,
    readTimeoutMs: 2000,
  };
  d.args.slice(1).forEach((a, i) => {
    try {
      opts.to.push(...parseTo(a, readFile));
    } catch (err) {
      throw pluginError(P, d.argTokens[i + 1]!, (err as Error).message);
    }
  });
  if (opts.to.length > MAX_UPSTREAMS)
    throw pluginError(P, d, `more than ${MAX_UPSTREAMS} TOs configured: ${opts.to.length}`);
  for (const o of d.block ?? []) {
    switch (o.name) {
      case "except":
        if (o.args.length === 0) throw argError(P, o);
        opts.except = normalizeZones(o.args, []);
        break;
      case "force_tcp":
        opts.forceTcp = true;
        break;
      case "prefer_udp":
        opts.preferUdp = true;
        break;
      case "expire":
        if (o.args.length !== 1) throw argError(P, o);
        opts.expireMs = durationArg(P, o, 0);
        break;
      case "max_fails":
        if (o.args.length !== 1) throw argError(P, o);
        opts.maxFails = intArg(P, o, 0, 0);
        break;
      case "max_idle_conns":
        intArg(P, o, 0, 0);
        break;
      case "policy":
        if (o.args.length !== 1) throw argError(P, o);
        if (o.args[0] !== "random" && o.args[0] !== "round_robin" && o.args[0] !== "sequential")
          throw pluginError(P, o, `unknown policy '${o.args[0]}'`);
        opts.policy = o.args[0];
        break;
      case "health_check": {
        if (o.args.length < 1) throw argError(P, o);
        opts.healthCheckMs = durationArg(P, o, 0);
        for (let i = 1; i < o.args.length; i++) {
          if (o.args[i] === "no_rec") opts.healthCheckRecursionDesired = false;
          else if (o.args[i] === "domain" && o.args[i + 1])
            opts.healthCheckDomain = normalizeZones([o.args[++i]!], [])[0]!;
          else throw pluginError(P, o, `health_check: unknown option ${o.args[i]}`);
        }
        break;
      }
      case "max_concurrent":
        if (o.args.length !== 1) throw argError(P, o);
        opts.maxConcurrent = intArg(P, o, 0, 0);
        break;
      case "next":
        if (o.args.length === 0) throw argError(P, o);
        for (const r of o.args) {
          const code = rcodeByName.get(r.toUpperCase());
          if (code === undefined) throw pluginError(P, o, `%s is not a valid rcode: ${r}`.replace("%s ", ""));
          opts.next.push(code);
        }
        break;
      case "failfast_all_unhealthy_upstreams":
        opts.failfastAllUnhealthy = true;
        break;
      case "tls":
      case "tls_servername":
        throw pluginError(P, o, `option '${o.name}' is not supported by klab (no DNS over TLS)`);
      default:
        throw pluginError(P, o, `unknown property '${o.name}'`);
    }
  }
  if (opts.forceTcp && opts.preferUdp)
    throw pluginError(P, d, "force_tcp and prefer_udp can not be used together");
  return opts;
}
