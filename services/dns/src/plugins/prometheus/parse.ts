import type { Directive } from "../../corefile/parse.ts";
import { argError, pluginError } from "../../setup.ts";

/** `prometheus [ADDRESS]`, ADDRESS defaults to `localhost:9153`. */
export function parsePrometheus(dirs: Directive[]): string {
  if (dirs.length > 1)
    throw pluginError("prometheus", dirs[1]!, "plugin can only be used once per server block");
  const d = dirs[0]!;
  if (d.args.length > 1 || d.block) throw argError("prometheus", d);
  const address = d.args[0] ?? "localhost:9153";
  if (!/:\d+$/.test(address))
    throw pluginError("prometheus", d.argTokens[0]!, `invalid address '${address}': expected [HOST]:PORT`);
  return address;
}
