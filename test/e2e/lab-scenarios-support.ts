/**
 * One exercise of lab-scenarios/ as a learner goes through it, in a `klab up` lab: `klab scenario
 * start` → `check` fails naming a symptom → the documented solution typed with the real kubectl
 * (from the exercise's folder, where its files are) → `check --wait` passes → `reset` → the lab is
 * healthy again (system pods Ready, web-service answering by name from a pod).
 */
import { expect } from "vitest";
import type { LoadedScenario } from "../../packages/cli/src/scenarios/catalog.ts";
import type { Lab } from "../support/lab.ts";
import { until } from "../support/wait.ts";

export async function expectLabHealthy(lab: Lab): Promise<void> {
  await lab.waitReady("kube-system", "k8s-app=kube-proxy", 2);
  await lab.waitReady("kube-system", "k8s-app=kube-dns", 2);
  await lab.waitReady("ingress-nginx", "app.kubernetes.io/component=controller", 1);
  const web = await lab.waitReady("default", "app=web", 2);
  const names = new Set(web.map((p) => p.name));
  const answer = await until("web-service by name from a pod", 90_000, async () => {
    const r = await lab.exec("default", web[0]!.name, [
      "curl",
      "-s",
      "-m",
      "5",
      "http://web-service/hostname",
    ]);
    return r.code === 0 && names.has(r.stdout) ? r.stdout : undefined;
  });
  expect(names.has(answer)).toBe(true);
}

export async function walkThroughExercise(lab: Lab, s: LoadedScenario): Promise<void> {
  const klab = (args: string[], timeoutMs = 420_000) =>
    lab.klab(["scenario", ...args, "--name", lab.name], { timeoutMs });

  const started = await klab(["start", s.id]);
  expect(started.code, started.stdout + started.stderr).toBe(0);
  expect(started.stdout).toContain(s.story.trim().split("\n")[0]!);
  expect((await klab(["status"])).stdout).toContain(`exercise:  ${s.id}`);

  const failing = await klab(["check"]);
  expect(failing.code, failing.stdout + failing.stderr).toBe(1);
  const said = s.check.filter((c) => failing.stdout.includes(`  - ${c.says}`));
  expect(said.length, failing.stdout).toBeGreaterThan(0);

  const hint = await klab(["hint"]);
  expect(hint.stdout).toContain(`Hint 1/${s.hints.length}: `);

  for (const argv of s.solution.kubectl) await lab.kubectlOk(argv, { timeoutMs: 240_000, cwd: s.dir });

  const passing = await klab(["check", "--wait", "180", "--verbose"]);
  expect(passing.code, passing.stdout + passing.stderr).toBe(0);
  expect(passing.stdout).toContain(`all ${s.check.length} checks pass`);

  const reset = await klab(["reset"], 600_000);
  expect(reset.code, reset.stdout + reset.stderr).toBe(0);
  for (const ns of s.namespaces) expect((await lab.kubectl(["get", "namespace", ns])).code).not.toBe(0);
  expect((await klab(["status"])).stdout).toContain("No exercise is active");
  await expectLabHealthy(lab);
}
