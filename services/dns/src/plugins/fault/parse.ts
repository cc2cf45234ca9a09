import type { Directive } from "../../corefile/parse.ts";
import { argError, durationArg, pluginError } from "../../setup.ts";

export interface FaultOptions {
  /** A directory holding the klab-faults ConfigMap as a volume (one file per key), or one YAML file. */
  path: string;
  reloadMs: number;
}

const P = "fault";

/** `fault PATH { reload DURATION }` */
export function parseFault(dirs: Directive[]): FaultOptions {
  if (dirs.length > 1) throw pluginError(P, dirs[1]!, "this plugin can only be used once per Server Block");
  const d = dirs[0]!;
  if (d.args.length !== 1) throw argError(P, d);
  const opts: FaultOptions = { path: d.args[0]!, reloadMs: 1000 };
  for (const o of d.block ?? []) {
    if (o.name !== "reload") throw pluginError(P, o, `unknown property '${o.name}'`);
    if (o.args.length !== 1) throw argError(P, o);
    opts.reloadMs = durationArg(P, o, 0);
    if (opts.reloadMs <= 0) throw pluginError(P, o, "reload must be positive");
  }
  return opts;
}
