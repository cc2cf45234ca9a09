import type { Directive } from "../../corefile/parse.ts";
import { pluginError } from "../../setup.ts";

export type LoadbalancePolicy = "round_robin";

/** `loadbalance [round_robin]` */
export function parseLoadbalance(dirs: Directive[]): LoadbalancePolicy {
  const d = dirs[0]!;
  if (dirs.length > 1)
    throw pluginError("loadbalance", dirs[1]!, "plugin can only be used once per server block");
  const policy = d.args[0] ?? "round_robin";
  if (policy !== "round_robin" || d.args.length > 1)
    throw pluginError("loadbalance", d, `unknown policy: ${d.args.join(" ")}`);
  return policy;
}
