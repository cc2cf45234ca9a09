import { DnsError, Rcode, fqdnCase, type Plugin } from "../../message.ts";
import type { Setup } from "../../setup.ts";
import { parseErrors } from "./parse.ts";

const levelTag = { warning: "WARNING", error: "ERROR", info: "INFO", debug: "DEBUG" } as const;

/** Logs the errors plugins return: `[ERROR] plugin/errors: 2 example.org. A: <error>`. */
export const setup: Setup = (dirs, ctx) => {
  const opts = parseErrors(dirs);
  const out = ctx.runtime.out;
  const counts = opts.consolidate.map(() => 0);
  const timers: NodeJS.Timeout[] = [];
  ctx.onStartup(() => {
    opts.consolidate.forEach((c, i) => {
      const t = setInterval(() => {
        if (counts[i]! > 0)
          out(
            `[${levelTag[c.level]}] plugin/errors: ${counts[i]} errors like '${c.pattern.source}' occurred in last ${c.periodMs / 1000}s`,
          );
        counts[i] = 0;
      }, c.periodMs);
      t.unref();
      timers.push(t);
    });
  });
  ctx.onShutdown(() => timers.forEach(clearInterval));
  const plugin: Plugin = {
    name: "errors",
    async serve(req, next) {
      try {
        return await next(req);
      } catch (err) {
        const rcode = err instanceof DnsError ? err.rcode : Rcode.SERVFAIL;
        const text = err instanceof Error ? err.message : String(err);
        const i = opts.consolidate.findIndex((c) => c.pattern.test(text));
        if (i >= 0) {
          counts[i]!++;
          if (!(opts.consolidate[i]!.showFirst && counts[i] === 1)) throw err;
        }
        out(`[ERROR] plugin/errors: ${rcode} ${fqdnCase(req.question.name)} ${req.question.type}: ${text}`);
        if (opts.stacktrace && err instanceof Error && err.stack) out(err.stack);
        throw err;
      }
    },
  };
  return [plugin];
};
