import type { Directive } from "../../corefile/parse.ts";
import { argError, durationArg, pluginError } from "../../setup.ts";

export interface ReloadOptions {
  intervalMs: number;
  jitterMs: number;
}

/** `reload [INTERVAL] [JITTER]`: 30s and 15s by default; at least 2s and 1s; jitter ≤ interval/2. */
export function parseReload(dirs: Directive[]): ReloadOptions {
  if (dirs.length > 1) throw pluginError("reload", dirs[1]!, "plugin can only be used once per server block");
  const d = dirs[0]!;
  if (d.args.length > 2 || d.block) throw argError("reload", d);
  const intervalMs = d.args[0] !== undefined ? durationArg("reload", d, 0) : 30_000;
  let jitterMs = d.args[1] !== undefined ? durationArg("reload", d, 1) : 15_000;
  if (intervalMs < 2000)
    throw pluginError("reload", d.argTokens[0]!, "interval value must be greater or equal to 2s");
  if (jitterMs < 1000)
    throw pluginError("reload", d.argTokens[1] ?? d, "jitter value must be greater or equal to 1s");
  if (jitterMs > intervalMs / 2) jitterMs = intervalMs / 2;
  return { intervalMs, jitterMs };
}
