/** What `klab scenario start | check | hint | reset` do to a lab. */
import { join } from "node:path";
import type { ConfigMap, Namespace, Node, Pod } from "@klab/api";
import { FAULTS_CONFIGMAP, FAULTS_NAMESPACE } from "@klab/dataplane/faults/controller.ts";
import type { Catalog, LoadedScenario } from "./catalog.ts";
import type { LabTarget } from "./lab.ts";
import type { CheckItem } from "./model.ts";
import { curlArgs, parseCurl, ProbeRunner, type ProbeResult } from "./probes.ts";
import {
  ensureExample,
  labSettings,
  reapplyObjects,
  restartCrashLoopingSystemPods,
  SYSTEM_PODS,
  systemObjects,
  uncordonNodes,
} from "./reset.ts";
import { deleteState, readState, writeState, type ScenarioState } from "./state.ts";

export type Progress = (line: string) => void;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Shell-quotes an argv the way a learner would type it. */
export function shellLine(argv: string[]): string {
  return argv.map((a) => (/^[-\w./:=,@+%]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`)).join(" ");
}

export const faultId = (scenarioId: string, n: number) => `scenario-${scenarioId}-${n + 1}`;

export interface CheckOutcome {
  item: CheckItem;
  result: ProbeResult;
}

export async function runChecks(lab: LabTarget, items: CheckItem[]): Promise<CheckOutcome[]> {
  const runner = new ProbeRunner(lab);
  const out: CheckOutcome[] = [];
  for (const item of items) out.push({ item, result: await runner.run(item) });
  return out;
}

/** Runs the checks until all pass or `waitSeconds` have passed; returns the last round. */
export async function checkUntil(
  lab: LabTarget,
  items: CheckItem[],
  waitSeconds: number,
  onRound?: (outcomes: CheckOutcome[]) => void,
): Promise<CheckOutcome[]> {
  const end = Date.now() + waitSeconds * 1000;
  for (;;) {
    const outcomes = await runChecks(lab, items);
    onRound?.(outcomes);
    if (outcomes.every((o) => o.result.ok) || Date.now() >= end) return outcomes;
    await sleep(Math.min(2000, Math.max(0, end - Date.now())));
  }
}

async function waitNamespacesGone(lab: LabTarget, names: string[], progress: Progress): Promise<void> {
  const end = Date.now() + 180_000;
  let said = "";
  for (;;) {
    const left: string[] = [];
    for (const n of names)
      if (await lab.client.get<Namespace>("v1", "namespaces", undefined, n)) left.push(n);
    if (left.length === 0) return;
    if (Date.now() > end) throw new Error(`namespaces still terminating after 3 minutes: ${left.join(", ")}`);
    if (left.join() !== said) progress(`waiting for namespace ${left.join(", ")} to finish terminating`);
    said = left.join();
    await sleep(2000);
  }
}

export async function start(lab: LabTarget, s: LoadedScenario, progress: Progress): Promise<void> {
  const active = await readState(lab.client);
  if (active && active.id !== s.id)
    throw new Error(`exercise ${active.id} is active: end it with \`klab scenario reset\` first`);
  await waitNamespacesGone(
    lab,
    (
      await Promise.all(
        s.namespaces.map(async (n) => {
          const ns = await lab.client.get<Namespace>("v1", "namespaces", undefined, n);
          return ns?.metadata.deletionTimestamp ? n : undefined;
        }),
      )
    ).filter((n): n is string => !!n),
    progress,
  );
  await writeState(lab.client, { id: s.id, started: new Date().toISOString(), hintsShown: 0 });
  for (const m of s.setup.manifests) {
    const r = await lab.kubectl(["apply", "-f", join(s.dir, m)], { timeoutMs: 120_000 });
    if (r.code !== 0) throw new Error(`setting up ${s.id}: kubectl apply -f ${m} failed: ${r.stderr.trim()}`);
    progress(`applied ${m}`);
  }
  for (const argv of s.setup.kubectl) {
    const r = await lab.kubectl(argv, { timeoutMs: 120_000 });
    if (r.code !== 0)
      throw new Error(`setting up ${s.id}: kubectl ${shellLine(argv)} failed: ${r.stderr.trim()}`);
  }
  const existing = await lab.client.get<ConfigMap>("v1", "configmaps", FAULTS_NAMESPACE, FAULTS_CONFIGMAP);
  for (const [i, argv] of s.setup.faults.entries()) {
    const id = faultId(s.id, i);
    if (existing?.data?.[id] !== undefined) continue;
    const r = await lab.klab(["fault", "inject", ...argv, "--id", id]);
    if (r.code !== 0)
      throw new Error(`setting up ${s.id}: klab fault inject ${shellLine(argv)} failed: ${r.stderr.trim()}`);
  }
  if (s.setup.ready.length) {
    progress("waiting for the exercise to be in place");
    const outcomes = await checkUntil(lab, s.setup.ready, 240);
    const bad = outcomes.filter((o) => !o.result.ok);
    if (bad.length)
      throw new Error(
        `setting up ${s.id}: still not in place after 4 minutes: ${bad.map((o) => o.result.detail).join("; ")}`,
      );
  }
}

export async function activeScenario(
  lab: LabTarget,
  catalog: Catalog,
): Promise<{ state: ScenarioState; scenario: LoadedScenario } | undefined> {
  const state = await readState(lab.client);
  if (!state) return undefined;
  const scenario = catalog.scenarios.find((x) => x.id === state.id);
  if (!scenario)
    throw new Error(`the active exercise ${state.id} is not in the catalog; \`klab scenario reset\` ends it`);
  return { state, scenario };
}

/** Shows one more hint; returns the hints shown so far (all of them when none are left). */
export async function nextHint(lab: LabTarget, state: ScenarioState, s: LoadedScenario): Promise<number> {
  const shown = Math.min(state.hintsShown + 1, s.hints.length);
  if (shown !== state.hintsShown) await writeState(lab.client, { ...state, hintsShown: shown });
  return shown;
}

/** A healthy lab: system pods Ready and, with the guide's example, web-service answering by name. */
export async function labHealth(lab: LabTarget): Promise<string[]> {
  const problems: string[] = [];
  const nodes = await lab.client.list<Node>("v1", "nodes");
  const readyNodes = nodes.items.filter((n) =>
    n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
  ).length;
  for (const sp of SYSTEM_PODS) {
    const pods = await lab.client.list<Pod>("v1", "pods", {
      namespace: sp.namespace,
      labelSelector: sp.selector,
    });
    const ready = pods.items.filter(
      (p) =>
        !p.metadata.deletionTimestamp &&
        p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
    ).length;
    const want = sp.want < 0 ? readyNodes : sp.want;
    if (ready < want) problems.push(`${sp.name} ${ready}/${want} Ready`);
  }
  if (problems.length) return problems;
  const web = await lab.client.get("v1", "services", "default", "web-service");
  if (!web) return problems;
  const runner = new ProbeRunner(lab);
  const r = await runner.from(
    { pod: { namespace: "default", selector: "app=web" } },
    ["curl", ...curlArgs("http://web-service/hostname", 5)],
    30_000,
  );
  const a = parseCurl(r);
  if (a.status !== 200) problems.push(`web-service from a pod: ${a.status ? `HTTP ${a.status}` : a.error}`);
  return problems;
}

export async function reset(lab: LabTarget, catalog: Catalog, progress: Progress): Promise<void> {
  const active = await readState(lab.client);
  const scenario = active && catalog.scenarios.find((s) => s.id === active.id);
  if (active) progress(`ending exercise ${active.id}`);
  for (const argv of scenario?.reset.kubectl ?? []) {
    const r = await lab.kubectl(argv, { timeoutMs: 120_000 });
    if (r.code !== 0) progress(`warning: kubectl ${shellLine(argv)}: ${r.stderr.trim()}`);
  }
  // Without a known active exercise, every exercise's namespaces go: reset must always end clean.
  const namespaces = [...new Set((scenario ? [scenario] : catalog.scenarios).flatMap((s) => s.namespaces))];
  const present: string[] = [];
  for (const n of namespaces) {
    if (!(await lab.client.get<Namespace>("v1", "namespaces", undefined, n))) continue;
    await lab.client.delete("v1", "namespaces", undefined, n);
    present.push(n);
    progress(`namespace/${n} deleted`);
  }
  const faults = await lab.client.get<ConfigMap>("v1", "configmaps", FAULTS_NAMESPACE, FAULTS_CONFIGMAP);
  const ours = Object.keys(faults?.data ?? {}).filter((k) => k.startsWith("scenario-"));
  if (ours.length) {
    const patch = { data: Object.fromEntries(ours.map((k) => [k, null])) };
    await lab.client.patch("v1", "configmaps", FAULTS_NAMESPACE, FAULTS_CONFIGMAP, patch);
    for (const k of ours) progress(`fault/${k} cleared`);
  }
  const settings = await labSettings(lab.client, lab.options?.proxyMode);
  for (const t of await reapplyObjects(lab.client, systemObjects(settings))) progress(t);
  const withExample = lab.options
    ? !lab.options.bare
    : !!(await lab.client.get("v1", "services", "default", "web-service"));
  if (withExample) for (const t of await ensureExample(lab.client)) progress(`${t} created`);
  for (const t of await uncordonNodes(lab.client)) progress(t);
  await deleteState(lab.client);
  await waitNamespacesGone(lab, present, progress);
  progress("waiting for the lab to be healthy (system pods Ready, web-service answering)");
  const end = Date.now() + 300_000;
  let nextRestart = 0;
  for (;;) {
    if (Date.now() >= nextRestart) {
      for (const p of await restartCrashLoopingSystemPods(lab.client))
        progress(`${p} restarted (it was crash-looping)`);
      nextRestart = Date.now() + 15_000;
    }
    const problems = await labHealth(lab).catch((err: Error) => [err.message]);
    if (problems.length === 0) return;
    if (Date.now() > end) throw new Error(`the lab is not healthy after 5 minutes: ${problems.join("; ")}`);
    await sleep(2000);
  }
}
