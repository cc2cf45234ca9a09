import type { Directive } from "../../corefile/parse.ts";
import { argError, durationArg, pluginError } from "../../setup.ts";

export interface HealthOptions {
  address: string;
  lameduckMs: number;
}

/** `health [ADDRESS] { lameduck DURATION }`, ADDRESS defaults to `:8080`. */
export function parseHealth(dirs: Directive[]): HealthOptions {
  if (dirs.length > 1) throw pluginError("health", dirs[1]!, "plugin can only be used once per server block");
  const d = dirs[0]!;
  if (d.args.length > 1) throw argError("health", d);
  const opts: HealthOptions = { address: d.args[0] ?? ":8080", lameduckMs: 0 };
  if (!/:\d+$/.test(opts.address))
    throw pluginError("health", d.argTokens[0]!, `invalid address '${opts.address}': expected [HOST]:PORT`);
  for (const o of d.block ?? []) {
    if (o.name !== "lameduck") throw pluginError("health", o, `unknown property '${o.name}'`);
    if (o.args.length !== 1) throw argError("health", o);
    opts.lameduckMs = durationArg("health", o, 0);
  }
  return opts;
}
