/**
 * Exercises 09-15 of lab-scenarios/ (ingress classes and TLS, NodePort traffic policy, a
 * partitioned node, an overlay MTU black hole, stale kube-proxy rules, session affinity), each
 * walked through as a learner would in one `klab up` lab.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { findScenario, loadCatalog } from "../../packages/cli/src/scenarios/catalog.ts";
import { startLab, type Lab } from "../support/lab.ts";
import { describeWith } from "../support/prereq.ts";
import { walkThroughExercise } from "./lab-scenarios-support.ts";

const EXERCISES = [
  "ingress-class-unserved",
  "missing-tls-secret",
  "nodeport-local-policy",
  "session-affinity-load-test",
  "stale-endpoints",
  "overlay-mtu-blackhole",
  "node-partitioned",
];

const catalog = loadCatalog();
let lab: Lab;

describeWith(
  { root: true, tun: true, tools: ["ip", "kubectl", "curl", "openssl"] },
  "troubleshooting exercises 09-15 (klab scenario start, check, solution, reset)",
  () => {
    beforeAll(async () => {
      lab = await startLab({ prefix: "kscm" });
    }, 420_000);

    afterAll(async () => {
      await lab?.down();
    }, 180_000);

    it("every exercise folder loads", () => {
      expect(catalog.errors.map((e) => e.message)).toEqual([]);
    });

    for (const id of EXERCISES) {
      it(`${id}: start, a failing check, the solution with kubectl, a passing check, reset`, async () => {
        await walkThroughExercise(lab, findScenario(catalog, id));
      }, 1_200_000);
    }
  },
);
