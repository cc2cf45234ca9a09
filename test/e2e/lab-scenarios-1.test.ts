/**
 * Exercises 01-08 of lab-scenarios/, each as a learner goes through it, in one `klab up` lab:
 * `klab scenario start` → `check` fails naming a symptom → the documented solution typed with the
 * real kubectl → `check --wait` passes → `reset` → the lab is healthy again (system pods Ready,
 * web-service answering by name from a pod), ready for the next exercise.
 */
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { findScenario, loadCatalog } from "../../packages/cli/src/scenarios/catalog.ts";
import { startLab, type Lab } from "../support/lab.ts";
import { describeWith } from "../support/prereq.ts";
import { expectLabHealthy, walkThroughExercise } from "./lab-scenarios-support.ts";

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
        await walkThroughExercise(lab, findScenario(catalog, id));
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
      await expectLabHealthy(lab);
    }, 1_200_000);
  },
);
