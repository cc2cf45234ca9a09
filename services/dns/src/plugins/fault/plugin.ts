/**
 * klab's own plugin (not in CoreDNS): the DNS faults of kube-system/klab-faults. It runs early
 * in the chain, before cache, so an injected SERVFAIL is not hidden by a cached answer and a
 * cleared fault is gone at the next query.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { faultsFromData, isDnsFault, namePattern, type Fault } from "@klab/dataplane/faults/model.ts";
import { Rcode, reply, type Plugin } from "../../message.ts";
import type { Setup } from "../../setup.ts";
import { parseFault } from "./parse.ts";

interface ActiveFault {
  fault: Fault;
  pattern: RegExp;
}

/** The ConfigMap's data as found at `path`: a volume directory, or a YAML file (a ConfigMap or a plain map). */
export function readFaultData(path: string): Record<string, string> {
  const data: Record<string, string> = {};
  if (statSync(path).isDirectory()) {
    // A ConfigMap volume: one file per key, plus kubelet's dot-named bookkeeping entries.
    for (const name of readdirSync(path))
      if (!name.startsWith(".")) data[name] = readFileSync(join(path, name), "utf8");
    return data;
  }
  const doc: unknown = parseYaml(readFileSync(path, "utf8")) ?? {};
  const map =
    (typeof doc === "object" && doc !== null && "data" in doc ? (doc as { data: unknown }).data : doc) ?? {};
  if (typeof map !== "object" || Array.isArray(map))
    throw new Error(`${path}: expected a map of fault id to fault`);
  for (const [k, v] of Object.entries(map as Record<string, unknown>))
    data[k] = typeof v === "string" ? v : stringifyYaml(v);
  return data;
}

export const setup: Setup = (dirs, ctx) => {
  const opts = parseFault(dirs);
  const log = ctx.runtime.logger;
  let active: ActiveFault[] = [];
  let lastText = "";
  const load = () => {
    let data: Record<string, string>;
    try {
      data = readFaultData(opts.path);
    } catch (err) {
      // No file yet means no faults; anything else is reported once per change.
      data = {};
      if ((err as NodeJS.ErrnoException).code !== "ENOENT" && lastText !== String(err)) {
        lastText = String(err);
        ctx.runtime.out(`[ERROR] plugin/fault: ${(err as Error).message}`);
      }
    }
    const text = JSON.stringify(data);
    if (text === lastText) return;
    lastText = text;
    const { faults, errors } = faultsFromData(data);
    for (const e of errors) ctx.runtime.out(`[ERROR] plugin/fault: ${e}`);
    active = faults.filter(isDnsFault).map((fault) => ({ fault, pattern: namePattern(fault.target.name!) }));
    log.info({ faults: active.map((a) => a.fault.id) }, "dns faults loaded");
  };
  load();
  let timer: NodeJS.Timeout | undefined;
  ctx.onStartup(() => {
    timer = setInterval(load, opts.reloadMs);
    timer.unref();
  });
  ctx.onShutdown(() => clearInterval(timer));
  const plugin: Plugin = {
    name: "fault",
    async serve(req, next) {
      for (const { fault, pattern } of active) {
        if (!pattern.test(req.question.name)) continue;
        if (fault.kind === "dns-servfail") return reply(req, Rcode.SERVFAIL);
        if (fault.kind === "dns-nxdomain") return reply(req, Rcode.NXDOMAIN);
        if (fault.kind === "dns-delay") {
          const ms = fault.delayMs! + (fault.jitterMs ? (Math.random() * 2 - 1) * fault.jitterMs : 0);
          await new Promise((r) => setTimeout(r, Math.max(0, ms)));
        }
      }
      return next(req);
    },
  };
  return [plugin];
};
