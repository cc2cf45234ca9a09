import type { Directive } from "../../corefile/parse.ts";
import { argError, pluginError } from "../../setup.ts";

export type MatchType = "exact" | "prefix" | "suffix" | "substring" | "regex";

export interface NameRule {
  field: "name";
  mode: "stop" | "continue";
  match: MatchType;
  from: string;
  to: string;
  regex?: RegExp;
  answerAuto: boolean;
  answerName?: { from: RegExp; to: string };
  answerValue?: { from: RegExp; to: string };
}

export interface TypeRule {
  field: "type" | "class";
  mode: "stop" | "continue";
  from: string;
  to: string;
}

export interface TtlRule {
  field: "ttl";
  mode: "stop" | "continue";
  match: MatchType;
  from: string;
  regex?: RegExp;
  min: number;
  max: number;
}

export type RewriteRule = NameRule | TypeRule | TtlRule;

const P = "rewrite";
const matchTypes = new Set(["exact", "prefix", "suffix", "substring", "regex"]);

function regexOf(d: Directive, text: string): RegExp {
  try {
    return new RegExp(text, "i");
  } catch (err) {
    throw pluginError(P, d, `invalid regex pattern in rule: ${text}: ${(err as Error).message}`);
  }
}

/** Go's `{1}` group references become JavaScript's `$1`. */
export function goReplacement(to: string): string {
  return to.replace(/\$/g, "$$$$").replace(/\{(\d+)\}/g, "$$$1");
}

const lowerFqdn = (s: string) => (s.endsWith(".") ? s.toLowerCase() : `${s.toLowerCase()}.`);

/** One rule per `rewrite` line: `rewrite [continue|stop] FIELD [MATCH] FROM TO [answer ...]`. */
export function parseRewrite(dirs: Directive[]): RewriteRule[] {
  return dirs.map((d) => {
    let args = [...d.args];
    let mode: "stop" | "continue" = "stop";
    if (args[0] === "stop" || args[0] === "continue") mode = args.shift() as "stop" | "continue";
    const field = args.shift();
    if (!field) throw argError(P, d);
    if (field === "type" || field === "class") {
      if (args.length !== 2) throw argError(P, d);
      return { field, mode, from: args[0]!.toUpperCase(), to: args[1]!.toUpperCase() };
    }
    if (field === "ttl") {
      const match = (matchTypes.has(args[0]!) && args.length === 3 ? args.shift() : "exact") as MatchType;
      if (args.length !== 2) throw argError(P, d);
      const m = /^(\d+)?(?:-(\d+)?)?$/.exec(args[1]!);
      if (!m || (m[1] === undefined && m[2] === undefined))
        throw pluginError(P, d, `invalid TTL '${args[1]}'`);
      const min = m[1] !== undefined ? Number(m[1]) : 0;
      const max = args[1]!.includes("-")
        ? m[2] !== undefined
          ? Number(m[2])
          : Number.MAX_SAFE_INTEGER
        : min;
      const from = match === "regex" ? args[0]! : lowerFqdn(args[0]!);
      return {
        field: "ttl",
        mode,
        match,
        from,
        regex: match === "regex" ? regexOf(d, from) : undefined,
        min,
        max,
      };
    }
    if (field !== "name") {
      throw pluginError(
        P,
        d,
        `rewrite of '${field}' is not supported by klab (name, type, class and ttl are)`,
      );
    }
    const match = (matchTypes.has(args[0]!) ? args.shift() : "exact") as MatchType;
    if (args.length < 2) throw argError(P, d);
    const [from, to] = [args.shift()!, args.shift()!];
    const rule: NameRule = {
      field: "name",
      mode,
      match,
      from: match === "regex" ? from : from.toLowerCase(),
      to,
      answerAuto: match !== "regex",
    };
    if (match === "regex") rule.regex = regexOf(d, from);
    if (match === "exact") {
      rule.from = lowerFqdn(from);
      rule.to = to.endsWith(".") ? to : `${to}.`;
    }
    while (args.length > 0) {
      if (args.shift() !== "answer") throw pluginError(P, d, "expected 'answer' after the rewrite target");
      const what = args.shift();
      if (what === "auto") {
        rule.answerAuto = true;
      } else if (what === "name" || what === "value") {
        if (args.length < 2) throw argError(P, d);
        const spec = { from: regexOf(d, args.shift()!), to: args.shift()! };
        if (what === "name") rule.answerName = spec;
        else rule.answerValue = spec;
      } else {
        throw pluginError(P, d, `unknown answer rewrite '${what ?? ""}': expected auto, name or value`);
      }
    }
    return rule;
  });
}
