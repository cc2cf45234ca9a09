import { describe, expect, it } from "vitest";
import type { DaemonSet, Node, Pod, ReplicaSet } from "@klab/api";
import { podsToDelete, replicaSetStatus, statusPatch, withReplicaFailure } from "./replicaset.ts";
import { daemonPod, planDaemonSet, templateHash } from "./daemonset.ts";

function pod(
  name: string,
  opts: { node?: string; phase?: string; ready?: boolean; created?: string } = {},
): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace: "default",
      creationTimestamp: opts.created ?? "2026-01-01T00:00:00Z",
      labels: { app: "web" },
    },
    spec: { containers: [{ name: "c" }], nodeName: opts.node },
    status: {
      phase: (opts.phase ?? "Running") as "Running",
      conditions: [
        { type: "Ready", status: opts.ready ? "True" : "False", lastTransitionTime: "2026-01-01T00:00:00Z" },
      ],
    },
  };
}

describe("ReplicaSet", () => {
  it("deletes unscheduled, then pending, then not-ready pods first", () => {
    const pods = [
      pod("ready", { node: "n", ready: true }),
      pod("unbound", { phase: "Pending" }),
      pod("notready", { node: "n" }),
      pod("pending", { node: "n", phase: "Pending" }),
    ];
    expect(podsToDelete(pods, 3).map((p) => p.metadata.name)).toEqual(["unbound", "pending", "notready"]);
  });

  it("counts replicas, ready and available pods, leaving out finished and deleted ones", () => {
    const rs: ReplicaSet = {
      apiVersion: "apps/v1",
      kind: "ReplicaSet",
      metadata: { name: "web", generation: 4 },
      spec: { replicas: 3, selector: {}, template: { metadata: { labels: { app: "web" } } } },
    };
    const gone = pod("gone", { ready: true });
    gone.metadata.deletionTimestamp = "2026-01-01T00:00:00Z";
    const s = replicaSetStatus(
      rs,
      [pod("a", { ready: true }), pod("b"), pod("c", { phase: "Failed" }), gone],
      Date.now(),
    );
    expect(s).toEqual({
      replicas: 2,
      fullyLabeledReplicas: 2,
      readyReplicas: 1,
      availableReplicas: 1,
      observedGeneration: 4,
    });
    expect(statusPatch({ replicas: 0, readyReplicas: 0 })).toEqual({ replicas: 0, readyReplicas: null });
    expect(statusPatch({ replicas: 1 }, ["replicas"], { replicas: 2, conditions: [] })).toEqual({
      replicas: 1,
      conditions: null,
    });
  });

  it("sets ReplicaFailure while pods cannot be created and clears it once they can", () => {
    const err = new Error('pods "web-x" is forbidden: exceeded quota');
    const failing = withReplicaFailure({ replicas: 0 }, { reason: "FailedCreate", err }, undefined);
    expect(failing.conditions).toEqual([
      {
        type: "ReplicaFailure",
        status: "True",
        lastTransitionTime: expect.any(String),
        reason: "FailedCreate",
        message: err.message,
      },
    ]);
    expect(
      withReplicaFailure({ replicas: 1, conditions: failing.conditions }, undefined, failing.conditions)
        .conditions,
    ).toBeUndefined();
  });
});

describe("DaemonSet", () => {
  const ds: DaemonSet = {
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: { name: "kube-proxy", namespace: "kube-system", uid: "ds-1", generation: 1 },
    spec: {
      selector: { matchLabels: { k8s: "kube-proxy" } },
      template: {
        metadata: { labels: { k8s: "kube-proxy" } },
        spec: { hostNetwork: true, containers: [{ name: "kube-proxy" }] },
      },
    },
  };
  const node = (name: string, taints: Node["spec"] = {}): Node => ({
    apiVersion: "v1",
    kind: "Node",
    metadata: { name },
    spec: taints,
  });

  it("pins its pod to the node and tolerates the node-condition taints", () => {
    const p = daemonPod(ds, "node-1");
    expect(
      p.spec!.affinity!.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution!.nodeSelectorTerms,
    ).toEqual([{ matchFields: [{ key: "metadata.name", operator: "In", values: ["node-1"] }] }]);
    const keys = p.spec!.tolerations!.map((t) => `${t.key}:${t.effect}`);
    expect(keys).toEqual([
      "node.kubernetes.io/not-ready:NoExecute",
      "node.kubernetes.io/unreachable:NoExecute",
      "node.kubernetes.io/disk-pressure:NoSchedule",
      "node.kubernetes.io/memory-pressure:NoSchedule",
      "node.kubernetes.io/pid-pressure:NoSchedule",
      "node.kubernetes.io/unschedulable:NoSchedule",
      "node.kubernetes.io/network-unavailable:NoSchedule",
    ]);
    expect(p.metadata.labels!["controller-revision-hash"]).toBe(templateHash(ds));
  });

  it("plans one pod per eligible node, skipping nodes with taints it does not tolerate", () => {
    const nodes = [
      node("a"),
      node("b", { unschedulable: true }),
      node("c", { taints: [{ key: "dedicated", effect: "NoSchedule" }] }),
    ];
    const plan = planDaemonSet(ds, nodes, [], Date.now());
    expect(plan.create).toEqual(["a", "b"]);
    expect(plan.status).toMatchObject({
      desiredNumberScheduled: 2,
      currentNumberScheduled: 0,
      numberReady: 0,
      numberMisscheduled: 0,
    });
  });

  it("keeps its pod on a node that became unreachable, but places no new one there", () => {
    const p = daemonPod(ds, "a");
    p.spec!.nodeName = "a";
    const unreachable = node("a", {
      taints: [
        { key: "node.kubernetes.io/unreachable", effect: "NoSchedule" },
        { key: "node.kubernetes.io/unreachable", effect: "NoExecute" },
      ],
    });
    const plan = planDaemonSet(
      ds,
      [unreachable, node("b", { taints: [{ key: "node.kubernetes.io/unreachable", effect: "NoSchedule" }] })],
      [p],
      Date.now(),
    );
    expect(plan.delete).toEqual([]);
    expect(plan.create).toEqual([]);
    expect(plan.status).toMatchObject({ desiredNumberScheduled: 0, numberMisscheduled: 1 });
  });

  it("replaces an outdated pod only when it is within maxUnavailable", () => {
    const current = daemonPod(ds, "a");
    current.spec!.nodeName = "a";
    current.status = { phase: "Running", conditions: [{ type: "Ready", status: "True" }] };
    const outdated = structuredClone(current);
    outdated.metadata.name = "old";
    outdated.spec!.nodeName = "b";
    outdated.metadata.labels!["controller-revision-hash"] = "other";
    const plan = planDaemonSet(ds, [node("a"), node("b")], [current, outdated], Date.now());
    expect(plan.delete.map((p) => p.metadata.name)).toEqual(["old"]);
    expect(plan.status).toMatchObject({
      desiredNumberScheduled: 2,
      updatedNumberScheduled: 1,
      numberAvailable: 2,
    });
  });
});
