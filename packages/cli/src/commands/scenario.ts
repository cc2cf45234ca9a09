import type { Command } from "commander";
import { findScenario, loadCatalog, type Catalog, type LoadedScenario } from "../scenarios/catalog.ts";
import {
  activeScenario,
  checkUntil,
  nextHint,
  reset,
  shellLine,
  start,
  type CheckOutcome,
} from "../scenarios/engine.ts";
import { openLab, type LabTarget } from "../scenarios/lab.ts";

// `klab scenario list | start ID | status | hint | check [--wait S] | solution | reset`: guided
// troubleshooting exercises from lab-scenarios/, the active one kept in kube-system/klab-scenario.

interface LabFlags {
  name: string;
  kubeconfig?: string;
}

const progress = (line: string) => process.stdout.write(`• ${line}\n`);

function catalog(): Catalog {
  const c = loadCatalog();
  for (const e of c.errors)
    process.stderr.write(`warning: skipping an exercise that does not load: ${e.message}\n`);
  return c;
}

async function withLab<T>(o: LabFlags, fn: (lab: LabTarget) => Promise<T>): Promise<T> {
  const lab = openLab(o);
  try {
    return await fn(lab);
  } finally {
    await lab.close();
  }
}

async function activeOrNamed(lab: LabTarget, c: Catalog, ref: string | undefined): Promise<LoadedScenario> {
  if (ref) return findScenario(c, ref);
  const active = await activeScenario(lab, c);
  if (!active)
    throw new Error("no exercise is active: start one with `klab scenario start ID` (klab scenario list)");
  return active.scenario;
}

export function formatTable(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)) + 3);
  return (
    rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("")).join("\n") +
    "\n"
  );
}

export function formatOutcomes(s: LoadedScenario, outcomes: CheckOutcome[], verbose: boolean): string {
  const failed = outcomes.filter((o) => !o.result.ok);
  const lines: string[] = [];
  if (failed.length === 0) lines.push(`✔ all ${outcomes.length} checks pass: ${s.title} is solved.`);
  else {
    lines.push(`✘ ${failed.length} of ${outcomes.length} checks fail:`);
    for (const o of failed) lines.push(`  - ${o.item.says}`);
  }
  if (verbose)
    for (const o of outcomes) lines.push(`    [${o.result.ok ? "ok" : "failing"}] ${o.result.detail}`);
  if (failed.length) lines.push("(klab scenario hint gives a hint)");
  return lines.join("\n") + "\n";
}

export function register(program: Command): void {
  const scenario = program
    .command("scenario")
    .description("troubleshooting exercises: break the lab on purpose, find the fault, fix it, check it");
  const common = (c: Command) =>
    c
      .option("--kubeconfig <path>", "kubeconfig (default: $KUBECONFIG, else the lab's)")
      .option("--name <name>", "the lab's name", "klab");

  scenario
    .command("list")
    .description("list the exercises")
    .option("--name <name>", "the lab's name (unused; accepted like the other subcommands)", "klab")
    .option("--kubeconfig <path>", "unused; accepted like the other subcommands")
    .action(() => {
      const c = catalog();
      const rows = [["ID", "DIFFICULTY", "TITLE"], ...c.scenarios.map((s) => [s.id, s.difficulty, s.title])];
      process.stdout.write(formatTable(rows));
    });

  common(
    scenario
      .command("start")
      .argument("<id>", "the exercise (klab scenario list)")
      .description("set an exercise up and tell its story"),
  ).action(async (id: string, o: LabFlags) => {
    const c = catalog();
    const s = findScenario(c, id);
    await withLab(o, (lab) => start(lab, s, progress));
    process.stdout.write(
      `\n${s.title} (${s.difficulty})\n\n${s.story.trimEnd()}\n\n` +
        "When you think it is fixed: klab scenario check. Stuck: klab scenario hint.\n",
    );
  });

  common(scenario.command("status").description("show the active exercise")).action(async (o: LabFlags) => {
    const c = catalog();
    await withLab(o, async (lab) => {
      const active = await activeScenario(lab, c);
      if (!active) {
        process.stdout.write("No exercise is active (klab scenario list, klab scenario start ID).\n");
        return;
      }
      const { state, scenario: s } = active;
      process.stdout.write(
        `exercise:  ${s.id} — ${s.title} (${s.difficulty})\nstarted:   ${state.started}\n` +
          `hints:     ${state.hintsShown}/${s.hints.length} shown\n\n${s.story.trimEnd()}\n`,
      );
    });
  });

  common(scenario.command("hint").description("show the next hint of the active exercise")).action(
    async (o: LabFlags) => {
      const c = catalog();
      await withLab(o, async (lab) => {
        const active = await activeScenario(lab, c);
        if (!active) throw new Error("no exercise is active: start one with `klab scenario start ID`");
        const { state, scenario: s } = active;
        const shown = await nextHint(lab, state, s);
        for (let i = 0; i < shown; i++)
          process.stdout.write(`Hint ${i + 1}/${s.hints.length}: ${s.hints[i]!.trimEnd()}\n`);
        if (shown === s.hints.length && state.hintsShown === shown)
          process.stdout.write("No more hints: klab scenario solution shows the answer.\n");
      });
    },
  );

  common(
    scenario
      .command("check")
      .argument("[id]", "the exercise (default: the active one)")
      .description("check whether the exercise is solved: exit 0 if so, 1 if not")
      .option("--wait <seconds>", "keep checking until it passes or this many seconds have passed", "0")
      .option("-v, --verbose", "show what each check saw"),
  ).action(async (id: string | undefined, o: LabFlags & { wait: string; verbose?: boolean }) => {
    const wait = Number(o.wait);
    if (!Number.isFinite(wait) || wait < 0) throw new Error(`--wait ${o.wait}: a number of seconds`);
    const c = catalog();
    const outcomes = await withLab(o, async (lab) => {
      const s = await activeOrNamed(lab, c, id);
      return { s, outcomes: await checkUntil(lab, s.check, wait) };
    });
    process.stdout.write(formatOutcomes(outcomes.s, outcomes.outcomes, !!o.verbose));
    process.exitCode = outcomes.outcomes.every((x) => x.result.ok) ? 0 : 1;
  });

  common(
    scenario
      .command("solution")
      .argument("[id]", "the exercise (default: the active one)")
      .description("show the solution and why the lab broke"),
  ).action(async (id: string | undefined, o: LabFlags) => {
    const c = catalog();
    const s = id ? findScenario(c, id) : await withLab(o, (lab) => activeOrNamed(lab, c, undefined));
    const cmds = s.solution.kubectl.map((a) => `  kubectl ${shellLine(a)}`).join("\n");
    process.stdout.write(
      `Solution — ${s.title}\n\n${s.solution.text.trimEnd()}\n\n${cmds}\n\nWhy\n\n${s.explanation.trimEnd()}\n\n` +
        `Guide: ${s.guide.join("; ")}\n`,
    );
  });

  common(
    scenario
      .command("reset")
      .description(
        "end the exercise and restore a clean lab (system add-ons, no exercise namespaces or faults)",
      ),
  ).action(async (o: LabFlags) => {
    const c = catalog();
    await withLab(o, (lab) => reset(lab, c, progress));
    process.stdout.write("The lab is clean.\n");
  });
}
