import type { Directive } from "../../corefile/parse.ts";
import { argError, pluginError } from "../../setup.ts";
import { isIP } from "node:net";

/** `bind ADDRESS...`: the addresses the server block listens on. */
export function parseBind(dirs: Directive[]): string[] {
  const hosts: string[] = [];
  for (const d of dirs) {
    if (d.args.length === 0) throw argError("bind", d);
    d.args.forEach((a, i) => {
      if (!isIP(a)) throw pluginError("bind", d.argTokens[i]!, `not a valid IP address: ${a}`);
      hosts.push(a);
    });
  }
  return hosts;
}
