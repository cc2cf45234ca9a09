import type { Answer, Question } from "dns-packet";
import { fqdnCase, rrOf, type Message, type Plugin } from "../../message.ts";
import type { Setup } from "../../setup.ts";
import { goReplacement, parseRewrite, type NameRule, type RewriteRule, type TtlRule } from "./parse.ts";

/** The rewritten name for `name` (FQDN), or undefined when the rule does not match. */
export function rewriteName(rule: NameRule, name: string): string | undefined {
  const lname = name.toLowerCase();
  switch (rule.match) {
    case "exact":
      return lname === rule.from ? rule.to : undefined;
    case "prefix":
      return lname.startsWith(rule.from) ? rule.to + name.slice(rule.from.length) : undefined;
    case "suffix":
      return lname.endsWith(rule.from) ? name.slice(0, name.length - rule.from.length) + rule.to : undefined;
    case "substring": {
      const i = lname.indexOf(rule.from);
      return i >= 0 ? name.slice(0, i) + rule.to + name.slice(i + rule.from.length) : undefined;
    }
    case "regex":
      return rule.regex!.test(name) ? fqdnCase(name.replace(rule.regex!, goReplacement(rule.to))) : undefined;
  }
}

function ttlMatches(rule: TtlRule, name: string): boolean {
  const l = name.toLowerCase();
  switch (rule.match) {
    case "exact":
      return l === rule.from;
    case "prefix":
      return l.startsWith(rule.from);
    case "suffix":
      return l.endsWith(rule.from);
    case "substring":
      return l.includes(rule.from.replace(/\.$/, ""));
    case "regex":
      return rule.regex!.test(name);
  }
}

const targetTypes = new Set(["CNAME", "PTR", "NS", "DNAME"]);

/** Name rewrites are undone in the reply: the client sees the name it asked for. */
function reverseAnswers(records: Answer[], original: string, rewritten: string, rule: NameRule): Answer[] {
  return records.map((r) => {
    let out = r;
    const rname = fqdnCase(r.name);
    if (rule.answerAuto && rname.toLowerCase() === rewritten.toLowerCase()) out = { ...out, name: original };
    if (rule.answerName && rule.answerName.from.test(rname))
      out = {
        ...out,
        name: fqdnCase(rname.replace(rule.answerName.from, goReplacement(rule.answerName.to))),
      };
    if (rule.answerValue) {
      const v = rule.answerValue;
      const data = rrOf(r).data;
      if (targetTypes.has(r.type) && typeof data === "string" && v.from.test(fqdnCase(data))) {
        out = { ...out, data: fqdnCase(fqdnCase(data).replace(v.from, goReplacement(v.to))) } as Answer;
      } else if (
        r.type === "SRV" &&
        typeof data === "object" &&
        data &&
        "target" in data &&
        v.from.test(fqdnCase(String(data.target)))
      ) {
        out = {
          ...out,
          data: {
            ...data,
            target: fqdnCase(fqdnCase(String(data.target)).replace(v.from, goReplacement(v.to))),
          },
        } as Answer;
      }
    }
    return out;
  });
}

export const setup: Setup = (dirs) => {
  const rules: RewriteRule[] = parseRewrite(dirs);
  const plugin: Plugin = {
    name: "rewrite",
    async serve(req, next) {
      const original: Question = req.question;
      let question = original;
      const undo: { rule: NameRule; from: string; to: string }[] = [];
      const ttlRules: TtlRule[] = [];
      for (const rule of rules) {
        let matched = false;
        if (rule.field === "name") {
          const from = fqdnCase(question.name);
          const to = rewriteName(rule, from);
          if (to !== undefined) {
            question = { ...question, name: to };
            undo.push({ rule, from, to });
            matched = true;
          }
        } else if (rule.field === "type" || rule.field === "class") {
          const current = rule.field === "type" ? question.type : (question.class ?? "IN");
          if (current === rule.from) {
            question = { ...question, [rule.field]: rule.to } as Question;
            matched = true;
          }
        } else if (rule.field === "ttl" && ttlMatches(rule, fqdnCase(question.name))) {
          ttlRules.push(rule);
          matched = true;
        }
        if (matched && rule.mode === "stop") break;
      }
      if (question === original && ttlRules.length === 0) return next(req);
      const rewritten = { ...req, question, msg: { ...req.msg, questions: [question] } };
      const res: Message = await next(rewritten);
      req.plugin = rewritten.plugin;
      // Response rewrites run in reverse order of the request rewrites.
      for (const u of undo.reverse()) {
        res.answers = reverseAnswers(res.answers, u.from, u.to, u.rule);
        res.authorities = reverseAnswers(res.authorities, u.from, u.to, u.rule);
        res.additionals = reverseAnswers(res.additionals, u.from, u.to, u.rule);
      }
      for (const t of ttlRules) {
        res.answers = res.answers.map(
          (r) => ({ ...r, ttl: Math.min(Math.max(rrOf(r).ttl ?? 0, t.min), t.max) }) as Answer,
        );
      }
      res.questions = [original];
      return res;
    },
  };
  return [plugin];
};
