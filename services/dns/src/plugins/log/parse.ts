import type { Directive } from "../../corefile/parse.ts";
import { argError, normalizeZones, pluginError } from "../../setup.ts";

export const COMMON_FORMAT =
  '{remote}:{port} - {>id} "{type} {class} {name} {proto} {size} {>do} {>bufsize}" {rcode} {>rflags} {rsize} {duration}';
export const COMBINED_FORMAT = `${COMMON_FORMAT} "{>opcode}"`;

export type ResponseClass = "success" | "denial" | "error";

export interface LogRule {
  zones: string[];
  format: string;
  classes: Set<ResponseClass>;
}

/** `log [NAMES...] [FORMAT] { class success|denial|error|all }` (one rule per line). */
export function parseLog(dirs: Directive[], serverZones: string[]): LogRule[] {
  return dirs.map((d) => {
    let args = [...d.args];
    let format = COMMON_FORMAT;
    const last = args[args.length - 1];
    if (last !== undefined && (last.includes("{") || last === "{common}" || last === "{combined}")) {
      format = last === "{common}" ? COMMON_FORMAT : last === "{combined}" ? COMBINED_FORMAT : last;
      args = args.slice(0, -1);
    }
    const classes = new Set<ResponseClass>();
    for (const o of d.block ?? []) {
      if (o.name !== "class") throw pluginError("log", o, `unknown property '${o.name}'`);
      if (o.args.length === 0) throw argError("log", o);
      for (const c of o.args) {
        if (c === "all") ["success", "denial", "error"].forEach((x) => classes.add(x as ResponseClass));
        else if (c === "success" || c === "denial" || c === "error") classes.add(c);
        else if (c === "denial" || c === "error") classes.add(c);
        else throw pluginError("log", o, `unknown class: ${c}`);
      }
    }
    if (classes.size === 0) ["success", "denial", "error"].forEach((x) => classes.add(x as ResponseClass));
    return { zones: args.length > 0 ? normalizeZones(args, serverZones) : ["."], format, classes };
  });
}
