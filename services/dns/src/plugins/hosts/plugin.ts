import { readFileSync, statSync } from "node:fs";
import { isIP } from "node:net";
import { Rcode, fqdnCase, matchZone, reply, type Plugin } from "../../message.ts";
import type { Setup } from "../../setup.ts";
import { addressFromReverse } from "../../kubernetes/answer.ts";
import { canonicalIP } from "../../kubernetes/cluster.ts";
import { parseHosts } from "./parse.ts";

export interface HostsTable {
  v4: Map<string, string[]>;
  v6: Map<string, string[]>;
  /** IP → names, in file order. */
  reverse: Map<string, string[]>;
  size: number;
}

/** Parses hosts(5) text: `IP name [aliases...]`, `#` comments; names lower-cased FQDNs. */
export function parseHostsText(text: string, into: HostsTable = emptyTable()): HostsTable {
  for (const raw of text.split("\n")) {
    const line = raw.replace(/#.*/, "").trim();
    if (!line) continue;
    const [ip0, ...names] = line.split(/\s+/);
    const family = isIP(ip0!.replace(/%.*$/, ""));
    if (!family || names.length === 0) continue;
    const ip = canonicalIP(ip0!.replace(/%.*$/, ""));
    const map = family === 4 ? into.v4 : into.v6;
    for (const n of names) {
      const name = fqdnCase(n.toLowerCase());
      const list = map.get(name) ?? [];
      if (!list.includes(ip)) list.push(ip);
      map.set(name, list);
      const rev = into.reverse.get(ip) ?? [];
      if (!rev.includes(name)) rev.push(name);
      into.reverse.set(ip, rev);
      into.size++;
    }
  }
  return into;
}

function emptyTable(): HostsTable {
  return { v4: new Map(), v6: new Map(), reverse: new Map(), size: 0 };
}

export const setup: Setup = (dirs, ctx) => {
  const opts = parseHosts(dirs, ctx.zones);
  const m = ctx.runtime.metrics;
  let table = emptyTable();
  let fileStamp = "";
  const load = () => {
    let fileText = "";
    let stamp = "missing";
    try {
      const st = statSync(opts.path);
      stamp = `${st.mtimeMs}:${st.size}`;
      if (stamp === fileStamp) return;
      fileText = readFileSync(opts.path, "utf8");
    } catch {
      if (stamp === fileStamp) return;
    }
    fileStamp = stamp;
    const t = parseHostsText(fileText);
    parseHostsText(opts.inline.join("\n"), t);
    table = t;
    m.hostsEntries.set(t.size);
    m.hostsReloadTimestamp.set(Date.now() / 1000);
  };
  load();
  let timer: NodeJS.Timeout | undefined;
  if (opts.reloadMs > 0) {
    ctx.onStartup(() => {
      timer = setInterval(load, opts.reloadMs);
      timer.unref();
    });
  }
  ctx.onShutdown(() => clearInterval(timer));

  const plugin: Plugin = {
    name: "hosts",
    async serve(req, next) {
      const qname = fqdnCase(req.question.name);
      const name = qname.toLowerCase();
      if (!matchZone(name, opts.zones)) return next(req);
      const res = reply(req, Rcode.NOERROR, true);
      const type = req.question.type;
      if (type === "A" || type === "AAAA") {
        for (const ip of (type === "A" ? table.v4 : table.v6).get(name) ?? [])
          res.answers.push({ name: qname, type, ttl: opts.ttl, class: "IN", data: ip });
      } else if (type === "PTR" && !opts.noReverse) {
        const ip = addressFromReverse(name);
        for (const target of (ip && table.reverse.get(ip)) || [])
          res.answers.push({ name: qname, type: "PTR", ttl: opts.ttl, class: "IN", data: target });
      }
      if (res.answers.length > 0) return res;
      // A name with records of another type: NODATA. Only a name hosts lacks falls through.
      if (table.v4.has(name) || table.v6.has(name)) return res;
      if (opts.fallthrough && (opts.fallthrough.length === 0 || matchZone(name, opts.fallthrough)))
        return next(req);
      // Without a SOA there is no NXDOMAIN to give: CoreDNS answers SERVFAIL.
      res.flags = (res.flags & ~0xf) | Rcode.SERVFAIL;
      return res;
    },
  };
  return [plugin];
};
