import type { Answer } from "dns-packet";
import type { Plugin } from "../../message.ts";
import type { Setup } from "../../setup.ts";
import { parseLoadbalance } from "./parse.ts";

/** Shuffles the A, AAAA and MX records of an answer; other records keep their place. */
export function shuffleAddresses(answers: Answer[], random = Math.random): Answer[] {
  const idx: number[] = [];
  answers.forEach((a, i) => {
    if (a.type === "A" || a.type === "AAAA" || a.type === "MX") idx.push(i);
  });
  if (idx.length < 2) return answers;
  const picked = idx.map((i) => answers[i]!);
  for (let i = picked.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [picked[i], picked[j]] = [picked[j]!, picked[i]!];
  }
  const out = [...answers];
  idx.forEach((pos, k) => (out[pos] = picked[k]!));
  return out;
}

export const setup: Setup = (dirs) => {
  parseLoadbalance(dirs);
  const plugin: Plugin = {
    name: "loadbalance",
    async serve(req, next) {
      const res = await next(req);
      res.answers = shuffleAddresses(res.answers);
      return res;
    },
  };
  return [plugin];
};
