import type { Directive } from "../../corefile/parse.ts";
import { argError, pluginError } from "../../setup.ts";

export interface ReadyOptions {
  address: string;
  monitor: "until-ready" | "continuously";
}

/** `ready [ADDRESS] { monitor until-ready|continuously }`, ADDRESS defaults to `:8181`. */
export function parseReady(dirs: Directive[]): ReadyOptions {
  if (dirs.length > 1) throw pluginError("ready", dirs[1]!, "plugin can only be used once per server block");
  const d = dirs[0]!;
  if (d.args.length > 1) throw argError("ready", d);
  const opts: ReadyOptions = { address: d.args[0] ?? ":8181", monitor: "until-ready" };
  if (!/:\d+$/.test(opts.address))
    throw pluginError("ready", d.argTokens[0]!, `invalid address '${opts.address}': expected [HOST]:PORT`);
  for (const o of d.block ?? []) {
    if (o.name !== "monitor") throw pluginError("ready", o, `unknown property '${o.name}'`);
    if (o.args.length !== 1) throw argError("ready", o);
    if (o.args[0] !== "until-ready" && o.args[0] !== "continuously")
      throw pluginError("ready", o, `unknown monitor type '${o.args[0]}'`);
    opts.monitor = o.args[0];
  }
  return opts;
}
