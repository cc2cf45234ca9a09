import {
  Flag,
  fqdnCase,
  inZone,
  rcodeName,
  rcodeOf,
  type Message,
  type Plugin,
  type Request,
} from "../../message.ts";
import type { Setup } from "../../setup.ts";
import { parseLog, type ResponseClass } from "./parse.ts";

export function classify(res: Message): ResponseClass {
  const rcode = rcodeOf(res);
  if (rcode === 3) return "denial";
  if (rcode === 0)
    return res.answers.length === 0 && res.authorities.some((a) => a.type === "SOA") ? "denial" : "success";
  return "error";
}

export function responseFlags(res: Message): string {
  const f = res.flags;
  const names: string[] = ["qr"];
  if (f & Flag.AA) names.push("aa");
  if (f & Flag.TC) names.push("tc");
  if (f & Flag.RD) names.push("rd");
  if (f & Flag.RA) names.push("ra");
  if (f & 0x40) names.push("z");
  if (f & Flag.AD) names.push("ad");
  if (f & Flag.CD) names.push("cd");
  return names.join(",");
}

/** Go's Duration.Seconds() printed with 'f', -1: no trailing zeros. */
export function formatSeconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(9))}s`.replace(/e-(\d+)s$/, (m) => m);
}

/** dns-packet says UNKNOWN_65280 where miekg/dns (and so CoreDNS) says TYPE65280. */
function goName(name: string, prefix: string): string {
  return name.startsWith("UNKNOWN_") ? `${prefix}${name.slice(8)}` : name;
}

const opcodes = ["QUERY", "IQUERY", "STATUS", "3", "NOTIFY", "UPDATE"];

/** One log line for a reply, CoreDNS's placeholders filled in. */
export function formatLine(
  format: string,
  req: Request,
  res: Message,
  rsize: number,
  durationMs: number,
  local = "",
): string {
  const remote = req.remote.family === 6 ? `[${req.remote.address}]` : req.remote.address;
  const seconds = (durationMs / 1000).toFixed(9).replace(/0+$/, "").replace(/\.$/, "");
  const values: Record<string, string> = {
    "{remote}": remote,
    "{port}": String(req.remote.port),
    "{>id}": String(req.msg.id ?? 0),
    "{type}": goName(req.question.type, "TYPE"),
    "{class}": goName(req.question.class ?? "IN", "CLASS"),
    "{name}": fqdnCase(req.question.name),
    "{proto}": req.proto,
    "{size}": String(req.size),
    "{>do}": String(req.do),
    "{>bufsize}": String(req.edns ? req.bufsize : 512),
    "{rcode}": rcodeName(rcodeOf(res)),
    "{>rflags}": responseFlags(res),
    "{rsize}": String(rsize),
    "{duration}": `${seconds}s`,
    "{>opcode}": opcodes[((req.msg.flags ?? 0) >> 11) & 0xf] ?? "QUERY",
    "{local}": local,
  };
  return format.replace(/\{[>a-z]+\}/g, (m) => values[m] ?? m);
}

export const setup: Setup = (dirs, ctx) => {
  const rules = parseLog(dirs, ctx.zones);
  const out = ctx.runtime.out;
  const plugin: Plugin = {
    name: "log",
    serve(req, next) {
      const name = fqdnCase(req.question.name).toLowerCase();
      const rule = rules.find((r) => r.zones.some((z) => inZone(name, z)));
      if (rule) {
        (req.afterWrite ??= []).push((res, size) => {
          if (!rule.classes.has(classify(res))) return;
          out(`[INFO] ${formatLine(rule.format, req, res, size, performance.now() - req.start)}`);
        });
      }
      return next(req);
    },
  };
  return [plugin];
};
