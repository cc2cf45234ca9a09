import type { Setup } from "../../setup.ts";
import { parseReload } from "./parse.ts";

/**
 * Polls the Corefile (and its imports) and reloads when its SHA512 changes. A ConfigMap mounted
 * as a volume changes by a symlink swap, which a poll of the path sees. A bad Corefile is logged
 * and the running configuration keeps serving.
 */
export const setup: Setup = (dirs, ctx) => {
  const opts = parseReload(dirs);
  const { out, logger } = ctx.runtime;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let lastFailed = "";
  const schedule = () => {
    if (stopped) return;
    const delay = opts.intervalMs + (Math.random() * 2 - 1) * opts.jitterMs;
    timer = setTimeout(check, delay);
    timer.unref();
  };
  const check = async () => {
    if (stopped) return;
    let hash: string;
    try {
      hash = ctx.runtime.corefileHash();
    } catch (err) {
      logger.error({ err }, "reading the Corefile failed");
      return schedule();
    }
    if (hash === ctx.runtime.configHash() || hash === lastFailed) return schedule();
    out("[INFO] Reloading");
    try {
      await ctx.runtime.reload();
      out(`[INFO] plugin/reload: Running configuration SHA512 = ${ctx.runtime.configHash()}`);
      out("[INFO] Reloading complete");
    } catch (err) {
      lastFailed = hash;
      out(`[ERROR] Restart failed: ${(err as Error).message}`);
      schedule();
    }
  };
  ctx.onServing(() => {
    out(`[INFO] plugin/reload: Running configuration SHA512 = ${ctx.runtime.configHash()}`);
    schedule();
  });
  ctx.onShutdown(() => {
    stopped = true;
    clearTimeout(timer);
  });
  return [];
};
