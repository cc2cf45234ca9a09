/**
 * Exercises 01-08 of lab-scenarios/, each as a learner goes through it, in one `klab up` lab:
 * `klab scenario start` → `check` fails naming a symptom → the documented solution typed with the
 * real kubectl → `check --wait 120` passes → `reset` → the lab is healthy again (system pods Ready,
 * web-service answering by name from a pod), ready for the next exercise.
 */
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { findScenario, loadCatalog } from "../../packages/cli/src/scenarios/catalog.ts";
import { startLab, type Lab } from "../support/lab.ts";
import { describeWith } from "../support/prereq.ts";
import { until } from "../support/wait.ts";

const EXERCISES = [
  "selector-mismatch",
  "wrong-target-port",
  "readiness-never-passes",
  "netpol-blocks-frontend",
  "default-deny-egress-dns",
  "coredns-scaled-to-zero",
  "corefile-forward-loop",
  "ingress-wrong-pathtype",
];

const catalog = loadCatalog();
let lab: Lab;

async function labIsHealthy(): Promise<void> {
  await lab.waitReady("kube-system", "k8s-app=kube-proxy", 2);
  await lab.waitReady("kube-system", "k8s-app=kube-dns", 2);
  await lab.waitReady("ingress-nginx", "app.kubernetes.io/component=controller", 1);
  const web = await lab.waitReady("default", "app=web", 2);
  const names = new Set(web.map((p) => p.name));
  const answer = await until("web-service by name from a pod", 60_000, async () => {
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

describeWith(
  { root: true, tun: true, tools: ["ip", "kubectl", "curl", "dig"] },
  "troubleshooting exercises 01-08 (klab scenario start, check, solution, reset)",
  () => {
    beforeAll(async () => {
      lab = await startLab({ prefix: "kscn" });
    }, 420_000);

    afterAll(async () => {
      await lab?.down();
    }, 180_000);

    // An exercise that failed half-way must not keep the next one from starting.
    afterEach(async () => {
      if (!lab) return;
      const status = await lab.klab(["scenario", "status", "--name", lab.name]);
      if (status.stdout.startsWith("exercise:"))
        await lab.klab(["scenario", "reset", "--name", lab.name], { timeoutMs: 600_000 });
    }, 620_000);

    it("lists the exercises like kubectl lists objects", async () => {
      const r = await lab.klab(["scenario", "list", "--name", lab.name]);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^ID\s+DIFFICULTY\s+TITLE\n/);
      for (const id of EXERCISES)
        expect(r.stdout).toMatch(new RegExp(`^${id}\\s+(easy|medium|hard)\\s+\\S`, "m"));
    });

    for (const id of EXERCISES) {
      it(`${id}: start, a failing check, the solution with kubectl, a passing check, reset`, async () => {
        const s = findScenario(catalog, id);
        const klab = (args: string[], timeoutMs = 420_000) =>
          lab.klab(["scenario", ...args, "--name", lab.name], { timeoutMs });

        const started = await klab(["start", id]);
        expect(started.code, started.stderr).toBe(0);
        expect(started.stdout).toContain(s.story.trim().split("\n")[0]!);

        const status = await klab(["status"]);
        expect(status.stdout).toContain(`exercise:  ${id}`);

        const failing = await klab(["check"]);
        expect(failing.code, failing.stdout + failing.stderr).toBe(1);
        const said = s.check.filter((c) => failing.stdout.includes(`  - ${c.says}`));
        expect(said.length, failing.stdout).toBeGreaterThan(0);

        const hint = await klab(["hint"]);
        expect(hint.stdout).toContain(`Hint 1/${s.hints.length}: `);

        for (const argv of s.solution.kubectl) await lab.kubectlOk(argv, { timeoutMs: 120_000 });

        const passing = await klab(["check", "--wait", "120", "--verbose"]);
        expect(passing.code, passing.stdout + passing.stderr).toBe(0);
        expect(passing.stdout).toContain(`all ${s.check.length} checks pass`);

        const reset = await klab(["reset"], 600_000);
        expect(reset.code, reset.stdout + reset.stderr).toBe(0);
        for (const ns of s.namespaces) {
          const r = await lab.kubectl(["get", "namespace", ns]);
          expect(r.code).not.toBe(0);
        }
        expect((await klab(["status"])).stdout).toContain("No exercise is active");
        await labIsHealthy();
      }, 1_200_000);
    }

    it("reset alone repairs what an unsolved exercise broke in kube-system (Corefile, crash-looping CoreDNS)", async () => {
      const klab = (args: string[], timeoutMs = 600_000) =>
        lab.klab(["scenario", ...args, "--name", lab.name], { timeoutMs });
      const started = await klab(["start", "corefile-forward-loop"]);
      expect(started.code, started.stderr).toBe(0);
      expect((await klab(["check"])).code).toBe(1);
      const reset = await klab(["reset"]);
      expect(reset.code, reset.stdout + reset.stderr).toBe(0);
      expect(reset.stdout).toContain("configmap/coredns restored");
      const corefile = await lab.kubectlOk([
        "-n",
        "kube-system",
        "get",
        "configmap",
        "coredns",
        "-o",
        "jsonpath={.data.Corefile}",
      ]);
      expect(corefile).toContain("forward . /etc/resolv.conf");
      await labIsHealthy();
    }, 1_200_000);
  },
);
