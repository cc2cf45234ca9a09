/** The exercises on disk: lab-scenarios/<NN-id>/scenario.yaml and the manifests each names. */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { manifestNamespaces, parseManifest, parseScenario, ScenarioError, type Scenario } from "./model.ts";

export interface LoadedScenario extends Scenario {
  /** The folder (NN-id) and its absolute path. */
  folder: string;
  dir: string;
  /** Namespaces the setup manifests create. */
  namespaces: string[];
}

/** lab-scenarios/ at the root of the repository, or $KLAB_SCENARIOS. */
export function scenariosDir(env = process.env): string {
  return env.KLAB_SCENARIOS ?? resolve(import.meta.dirname, "../../../../lab-scenarios");
}

const folderPattern = /^\d{2,}-[a-z0-9-]+$/;

/** Reads and validates one exercise folder, manifests included; throws ScenarioError. */
export function loadScenario(dir: string): LoadedScenario {
  const folder = dir.split("/").filter(Boolean).pop()!;
  const file = join(dir, "scenario.yaml");
  if (!existsSync(file))
    throw new ScenarioError(file, ["missing: every exercise folder has a scenario.yaml"]);
  const s = parseScenario(readFileSync(file, "utf8"), file, folder);
  const namespaces: string[] = [];
  const problems: string[] = [];
  s.setup.manifests.forEach((m, i) => {
    const path = join(dir, m);
    if (!existsSync(path)) {
      problems.push(`setup.manifests[${i}]: ${m} does not exist in ${folder}/`);
      return;
    }
    try {
      namespaces.push(...manifestNamespaces(parseManifest(readFileSync(path, "utf8"), path)));
    } catch (err) {
      if (!(err instanceof ScenarioError)) throw err;
      problems.push(...err.problems.map((p) => `setup.manifests[${i}] (${m}): ${p}`));
    }
  });
  if (problems.length) throw new ScenarioError(file, problems);
  return { ...s, folder, dir, namespaces };
}

export interface Catalog {
  scenarios: LoadedScenario[];
  /** Folders that did not load, with why. */
  errors: ScenarioError[];
}

export function loadCatalog(root = scenariosDir()): Catalog {
  if (!existsSync(root)) throw new Error(`no exercises: ${root} does not exist (set KLAB_SCENARIOS)`);
  const scenarios: LoadedScenario[] = [];
  const errors: ScenarioError[] = [];
  for (const name of readdirSync(root).sort()) {
    const dir = join(root, name);
    if (!folderPattern.test(name) || !statSync(dir).isDirectory()) continue;
    try {
      scenarios.push(loadScenario(dir));
    } catch (err) {
      if (err instanceof ScenarioError) errors.push(err);
      else throw err;
    }
  }
  return { scenarios, errors };
}

/** Finds an exercise by id, by folder name or by its number ("1", "01"). */
export function findScenario(catalog: Catalog, ref: string): LoadedScenario {
  const found = catalog.scenarios.find(
    (s) =>
      s.id === ref ||
      s.folder === ref ||
      (/^\d+$/.test(ref) && Number(s.folder.split("-")[0]) === Number(ref)),
  );
  if (found) return found;
  const broken = catalog.errors.find((e) => e.file.includes(`/${ref}/`) || e.file.includes(`-${ref}/`));
  if (broken) throw broken;
  throw new Error(`no exercise "${ref}" (klab scenario list shows them)`);
}
