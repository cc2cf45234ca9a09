import type { Directive } from "../../corefile/parse.ts";
import { argError, durationArg, pluginError } from "../../setup.ts";

export interface Consolidate {
  periodMs: number;
  pattern: RegExp;
  level: "warning" | "error" | "info" | "debug";
  showFirst: boolean;
}

export interface ErrorsOptions {
  stacktrace: boolean;
  consolidate: Consolidate[];
}

/** `errors { stacktrace; consolidate DURATION REGEXP [LEVEL] [show_first] }` */
export function parseErrors(dirs: Directive[]): ErrorsOptions {
  if (dirs.length > 1) throw pluginError("errors", dirs[1]!, "plugin can only be used once per server block");
  const d = dirs[0]!;
  if (d.args.length > 0) throw argError("errors", d);
  const opts: ErrorsOptions = { stacktrace: false, consolidate: [] };
  for (const o of d.block ?? []) {
    if (o.name === "stacktrace") {
      opts.stacktrace = true;
    } else if (o.name === "consolidate") {
      if (o.args.length < 2 || o.args.length > 4) throw argError("errors", o);
      const periodMs = durationArg("errors", o, 0);
      let pattern: RegExp;
      try {
        pattern = new RegExp(o.args[1]!);
      } catch (err) {
        throw pluginError("errors", o.argTokens[1]!, `invalid regexp: ${(err as Error).message}`);
      }
      let level: Consolidate["level"] = "error";
      let showFirst = false;
      for (const extra of o.args.slice(2)) {
        if (extra === "show_first") showFirst = true;
        else if (extra === "warning" || extra === "error" || extra === "info" || extra === "debug")
          level = extra;
        else throw pluginError("errors", o, `unknown log level argument in consolidate: ${extra}`);
      }
      opts.consolidate.push({ periodMs, pattern, level, showFirst });
    } else {
      throw pluginError("errors", o, `unknown property '${o.name}'`);
    }
  }
  return opts;
}
