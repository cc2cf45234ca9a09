// Label selector errors against the real parser: kubectl set selector --local parses with labels.Parse.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { describeWith } from "../../../../test/support/prereq.ts";
import { parseLabelSelector } from "./labels.ts";

const selectors = [
  "app=web,",
  "app in (a",
  "app in a",
  "app web",
  "a=b c",
  "=a",
  "a_=b",
  "a=b_",
  "a>x",
  "a<",
  "!",
  "!a=b",
  "a in (b,",
  "a in (b c)",
  "a notin",
  "a,,b",
  "a==",
  "a!=(b)",
  "a in ()x",
  "x/y/z=1",
  "example.com/=1",
  "-a=b",
  "a=" + "v".repeat(64),
  "k".repeat(64) + "=v",
  "a in (,)",
  "a=b,c in (d,e),!f",
  "a = b",
  "in=x",
  "a in (in, notin)",
  "a=(",
  "a)",
  "a=b)",
  "(a)",
  "a!b",
  "a=>b",
  "a=<b",
  "a<>b",
  "a>1,b<2",
];

describeWith({ tools: ["kubectl"] }, "label selector parsing as kubectl's labels.Parse", () => {
  const dir = mkdtempSync(join(tmpdir(), "klab-api-sel-"));
  const file = join(dir, "svc.yaml");
  writeFileSync(
    file,
    "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n  - port: 80\n",
  );
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("gives the same error, or none, for each selector", () => {
    for (const s of selectors) {
      let theirs = "";
      try {
        execFileSync("kubectl", ["set", "selector", "--local", "-f", file, "-o", "name", "--", s], {
          encoding: "utf8",
          stdio: ["ignore", "pipe", "pipe"],
        });
      } catch (e) {
        theirs = String((e as { stderr?: string }).stderr ?? "").trim();
      }
      const prefix = `error: couldn't parse the selector string ${JSON.stringify(s)}: `;
      let mine = "";
      try {
        parseLabelSelector(s);
      } catch (e) {
        mine = prefix + (e as Error).message;
      }
      // selectors that parse but use set operators are refused by set selector itself, after parsing
      if (!theirs.startsWith("error: couldn't parse")) theirs = "";
      expect(mine, s).toBe(theirs);
    }
    // ~40 kubectl runs in a row: seconds on a quiet machine, minutes on a loaded one.
  }, 600_000);
});
